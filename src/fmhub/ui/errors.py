"""Errors on UI pages: a page (or, for htmx requests, a fragment) with the message, the hint and the
fields concerned, instead of the API's JSON body."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from fmhub.ui.templating import render

API_PREFIXES = ("/api/", "/endpoints/", "/static/", "/health", "/ready", "/docs", "/openapi.json")


def wants_html(request: Request) -> bool:
    """True for UI pages and the fragments they fetch (not the REST API or scoring URLs)."""
    path = request.url.path
    if path.startswith(API_PREFIXES):
        return False
    return path == "/" or path.startswith("/ui")


def error_page(request: Request, status: int, code: str, message: str, hint: str = "",
               details: Any = None) -> HTMLResponse:
    """The error as a page, or as a fragment for an htmx request (``HX-Request`` header).

    Fragments carry the field errors as ``data-field-errors`` JSON; ``app.js`` shows each message
    next to the form field of the same name.
    """
    fields = [d for d in details if isinstance(d, dict) and d.get("field")] if isinstance(details, list) else []
    context = {"status": status, "code": code, "message": message, "hint": hint, "details": details,
               "field_errors": fields}
    if request.headers.get("hx-request"):
        return render(request, "_error.html", context, status_code=status)
    return render(request, "error.html", context, status_code=status, title=f"Error {status}")
