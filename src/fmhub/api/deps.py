"""Shared route dependencies: the service context of the running app."""

from __future__ import annotations

from fastapi import Request

from fmhub.services.context import Context


def get_ctx(request: Request) -> Context:
    """The app's service context (set by :func:`fmhub.api.app.create_app`)."""
    return request.app.state.ctx
