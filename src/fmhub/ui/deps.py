"""Dependencies of the UI's routes."""

from __future__ import annotations

from fastapi import Request

from fmhub.services.context import Context


def get_ctx(request: Request) -> Context:
    """The service context the app was built with."""
    return request.app.state.ctx
