"""Fixtures of the Ray tests: the test Ray head on 127.0.0.1.

``scripts/test-services.sh start`` starts it (loopback only, no dashboard, small object store) and
``eval "$(scripts/test-services.sh env)"`` sets ``FMHUB_TEST_RAY_ADDRESS`` (``127.0.0.1:56379``).
Tests marked ``ray`` take the address from :func:`ray_address`; without it they are skipped, saying
how to start it, and with ``FMHUB_REQUIRE_SERVICES=1`` (CI) they fail instead.
"""

from __future__ import annotations

import os

import pytest

RAY_ADDRESS = os.environ.get("FMHUB_TEST_RAY_ADDRESS", "")
REQUIRE_SERVICES = os.environ.get("FMHUB_REQUIRE_SERVICES", "") == "1"


@pytest.fixture(scope="session")
def ray_address() -> str:
    """The test Ray head's ``HOST:PORT`` (skips, or fails under CI, when it is not running)."""
    if not RAY_ADDRESS:
        reason = "no test Ray head (FMHUB_TEST_RAY_ADDRESS is not set)"
        if REQUIRE_SERVICES:
            pytest.fail(f"{reason} (FMHUB_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(f'{reason}: start it with `scripts/test-services.sh start` and '
                    f'`eval "$(scripts/test-services.sh env)"` (needs fmhub[ray])')
    return RAY_ADDRESS


@pytest.fixture()
def ray_env(ray_address, monkeypatch) -> str:
    """``FMHUB_RAY_ADDRESS`` set to the test head for this test (settings re-read); returns it."""
    from fmhub.config import get_settings

    monkeypatch.setenv("FMHUB_RAY_ADDRESS", ray_address)
    get_settings.cache_clear()
    yield ray_address
    get_settings.cache_clear()
