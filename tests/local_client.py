"""In-process clients of the app that pass its Host and CSRF checks, as a browser on the same origin would."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

BASE_URL = "http://localhost"
"""The app answers only to its own names; TestClient's default host ``testserver`` is not one."""

SESSION = "t" * 43
"""The CSRF session cookie of the test client."""


def local_client(app: Any, **kwargs: Any) -> TestClient:
    """A ``TestClient`` on ``http://localhost`` whose posts carry the UI's CSRF cookie and token.

    Args:
        app: The app from :func:`fmhub.api.app.create_app`.
        **kwargs: Passed to ``TestClient`` (e.g. ``raise_server_exceptions=False``).
    """
    client = TestClient(app, base_url=BASE_URL, **kwargs)
    client.cookies.set("fmhub_csrf", SESSION)
    client.headers["X-CSRF-Token"] = app.state.csrf.token(SESSION)
    return client
