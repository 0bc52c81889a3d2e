"""API-key authentication: ``Authorization: Bearer <key>`` on every call but the probes, the API docs,
static files and the endpoints' scoring URLs (``/endpoints/...``, which check their own endpoint keys)."""

from __future__ import annotations

import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

from fmhub.api.errors import error_response
from fmhub.services.keys import KeyChecker

OPEN_PATHS = frozenset({"/health", "/ready", "/docs", "/openapi.json", "/ui/login", "/favicon.ico"})
"""Paths without a key: liveness and readiness probes, the API's documentation, the UI's sign-in and
its icon."""

KEY_COOKIE = "fmhub_api_key"
"""The UI keeps the API key it was given at sign-in in this cookie (HttpOnly, SameSite=Strict)."""


MAX_COOKIE_VALUE_CHARS = 1024
"""Longest cookie value read; fmhub's own cookies (keys, CSRF tokens) are under 100 characters."""


def cookie_value(headers: dict[bytes, bytes], name: str) -> str:
    """The value of cookie ``name`` in the raw ASGI ``headers``, or ``""`` (also for a malformed or
    over-long value).

    A linear split on ``;`` and the first ``=`` (RFC 6265's cookie-string); a double-quoted value
    loses its quotes but is not unescaped: fmhub's cookies hold URL-safe tokens only. (The standard
    library's ``SimpleCookie`` unquotes backslash escapes in time quadratic in the value on some
    Python versions, which let one header block the server.)
    """
    raw = headers.get(b"cookie", b"").decode("latin-1")
    for pair in raw.split(";"):
        key, sep, value = pair.partition("=")
        if not sep or key.strip() != name:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if len(value) > MAX_COOKIE_VALUE_CHARS or '"' in value or "\\" in value:
            return ""
        return value
    return ""


def is_loopback(host: str) -> bool:
    """True for ``127.0.0.1``, ``::1``, ``localhost`` and the rest of 127.0.0.0/8."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ApiKeyMiddleware:
    """Refuses calls without an active key (401, with the error body and ``WWW-Authenticate``).

    Args:
        app: The wrapped ASGI app.
        checker: Checks keys against the stored hashes.
    """

    def __init__(self, app: ASGIApp, checker: KeyChecker) -> None:
        self.app = app
        self.checker = checker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path") or ""
        if scope["type"] != "http" or path in OPEN_PATHS or path.startswith(("/endpoints/", "/static/")):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        header = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        if not header and (cookie := cookie_value(headers, KEY_COOKIE)):
            scheme, token = "bearer", cookie  # the UI's session: the key given at sign-in
        is_page = scope.get("method") == "GET" and (path == "/" or path.startswith("/ui"))
        if is_page and (scheme.lower() != "bearer" or not self.checker.check(token.strip())):
            from urllib.parse import quote

            from starlette.responses import RedirectResponse

            await RedirectResponse(f"/ui/login?next={quote(path)}", status_code=303)(scope, receive, send)
            return
        if scheme.lower() != "bearer" or not token.strip():
            response = error_response(401, "unauthorized", "this server requires an API key",
                                      "send `Authorization: Bearer <key>`; create one with `fmhub keys create`",
                                      headers={"WWW-Authenticate": "Bearer"})
        elif not self.checker.check(token.strip()):
            response = error_response(401, "unauthorized", "the API key is not valid or was revoked",
                                      "create a new one with `fmhub keys create`",
                                      headers={"WWW-Authenticate": "Bearer"})
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)
