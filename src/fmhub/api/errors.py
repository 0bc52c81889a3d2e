"""The API's error body ``{"error": {"code", "message", "hint"}}`` for every failure."""

from __future__ import annotations

import logging
import math
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from fmhub.errors import FmhubError
from fmhub.ui.errors import error_page, wants_html

log = logging.getLogger("fmhub.api")


def error_response(status: int, code: str, message: str, hint: str = "", details: Any = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON error response in the shared error body."""
    body: dict[str, Any] = {"code": code, "message": message, "hint": hint}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def _unknown_key(request: Request, loc: tuple[Any, ...]) -> dict[str, Any]:
    """The problem for an unknown body key, naming the nearest known key as the spec loader does."""
    from fmhub.services.specs import fields_at, nearest_key

    key = str(loc[-1]) if loc else ""
    known: list[str] = []
    body_field = getattr(request.scope.get("route"), "body_field", None)
    if loc and loc[0] == "body" and body_field is not None:
        known = fields_at(getattr(body_field.field_info, "annotation", None), loc[1:-1])
    close = nearest_key(key, known)
    message = f"unknown key '{key}'" + (f"; did you mean '{close}'?" if close else "")
    if known and not close:
        message += f"; known keys: {', '.join(known)}"
    return {"field": _field(loc), "message": message, "value": None}


def install_error_handlers(app: FastAPI) -> None:
    """Map ``FmhubError`` to its status, request validation to 422 naming the fields, HTTP errors
    to their status, and anything else to 500 with a reference to the server log."""

    @app.exception_handler(FmhubError)
    async def _fmhub(request: Request, exc: FmhubError) -> Response:
        if wants_html(request):
            body = exc.to_dict()["error"]
            return error_page(request, exc.http_status, body["code"], body["message"], body.get("hint", ""),
                              body.get("details"))
        return JSONResponse(exc.to_dict(), status_code=exc.http_status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for e in exc.errors():
            if e.get("type") == "json_invalid":
                position = e.get("loc", ("body", "?"))[-1]
                problems.append({"field": "body", "value": None,
                                 "message": f"not valid JSON (at character {position}): {e.get('ctx', {}).get('error', '')}"
                                 .rstrip(": ")})
                continue
            value = e.get("input")
            if e.get("type") == "extra_forbidden":
                problems.append(_unknown_key(request, tuple(e.get("loc", ()))))
                continue
            if not (isinstance(value, (str, int, bool)) or (isinstance(value, float) and math.isfinite(value))):
                value = None if value is None or not isinstance(value, float) else str(value)
            problems.append({"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg", ""), "value": value})
        if any(p["field"] == "body" and "dictionary" in p["message"] for p in problems):
            problems.append({"field": "content-type", "value": request.headers.get("content-type"),
                             "message": "send the body as JSON with `Content-Type: application/json`"})
        message = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:10])
        if wants_html(request):
            return error_page(request, 422, "invalid_request", message, "fix the named fields", problems)
        return error_response(422, "invalid_request", message or "invalid request",
                              "fix the named fields; see /docs for the schema", details=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                413: "payload_too_large"}.get(exc.status_code, "http_error")
        hint = "see /docs for the API's routes" if exc.status_code in (404, 405) else ""
        if wants_html(request):
            return error_page(request, exc.status_code, code, str(exc.detail),
                              "go back to the catalog" if exc.status_code == 404 else "")
        return error_response(exc.status_code, code, str(exc.detail), hint, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        ref = uuid.uuid4().hex[:8]
        log.exception("unexpected error %s on %s %s", ref, request.method, request.url.path)
        if wants_html(request):
            return error_page(request, 500, "internal", f"unexpected error (reference {ref})",
                              "the server log has the traceback under this reference")
        return error_response(500, "internal", f"unexpected error (reference {ref})",
                              "the server log has the traceback under this reference")
