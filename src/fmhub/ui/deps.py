"""Dependencies of the UI's routes."""

from __future__ import annotations

from fastapi import Request

from fmhub.services.context import Context


def get_ctx(request: Request) -> Context:
    """The service context the app was built with."""
    return request.app.state.ctx


def requires_key(request: Request) -> bool:
    """The server requires API keys (code samples and ``curl`` commands then send one)."""
    return getattr(request.app.state, "key_checker", None) is not None
