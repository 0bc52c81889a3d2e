"""The Ray connection fails fast and clearly: no address, a malformed one, a port nobody answers."""

from __future__ import annotations

import socket
import time

import pytest

from fmhub import raycluster
from fmhub.errors import ComputeUnavailableError


def test_no_address_configured_names_the_setting(monkeypatch):
    from fmhub.config import get_settings

    monkeypatch.delenv("FMHUB_RAY_ADDRESS", raising=False)
    get_settings.cache_clear()
    with pytest.raises(ComputeUnavailableError) as err:
        raycluster.connect()
    assert "FMHUB_RAY_ADDRESS" in err.value.message and "ray start --head" in err.value.hint
    assert err.value.http_status == 503


def test_malformed_address_is_refused():
    with pytest.raises(ComputeUnavailableError, match="not HOST:PORT"):
        raycluster.connect("nonsense")


def test_a_port_nobody_listens_on_fails_in_seconds_not_minutes():
    with socket.socket() as s:  # a free port, closed again: nobody listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(ComputeUnavailableError, match=f"127.0.0.1:{port} does not answer"):
        raycluster.connect(f"127.0.0.1:{port}")
    assert time.monotonic() - t0 < 10
