"""Browser-facing guards of ``fmhub serve``, as pure ASGI middleware.

- :class:`HostCheckMiddleware`: every request's ``Host`` must be one of the server's own names (the
  loopback names, the address it listens on, the address the connection came in on, and the
  ``--allowed-host`` entries), else 421. This stops DNS rebinding: a page on ``evil.example`` whose
  name was re-pointed to 127.0.0.1 still sends ``Host: evil.example``.
- :class:`SameOriginMiddleware`: every state-changing request (POST, PUT, PATCH, DELETE) that a
  browser sends must come from the server's own origin (``Origin``, else ``Referer``, and
  ``Sec-Fetch-Site``), else 403; the UI's own posts (``/ui/...``) and requests signed in with the UI's
  key cookie must also carry the CSRF token of the page (form field ``csrf_token`` or header
  ``X-CSRF-Token``), else 403. Clients that send no cookie (the CLI, the Python client, ``curl``)
  need no token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
import socket
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fmhub.api.auth import KEY_COOKIE, cookie_value
from fmhub.api.errors import error_response

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
"""Names every server answers to."""

CSRF_COOKIE = "fmhub_csrf"
"""The browser's CSRF session (random, HttpOnly, SameSite=Strict); a page's token is derived from it."""

CSRF_FIELD = "csrf_token"
"""Form field carrying the page's CSRF token."""

CSRF_HEADER = "x-csrf-token"
"""Header carrying the page's CSRF token (htmx and the UI's ``fetch`` calls send it)."""

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{32,128}$")
_ANY_ADDRESS = ("0.0.0.0", "::", "")
_HOST_SYNTAX = re.compile(r"^(?:\[[0-9a-z:.%]+\]|[a-z0-9_.-]+)(?::[0-9]{0,5})?$", re.I)
"""A well-formed ``Host``: a name or IPv4 address, or a bracketed IPv6 address, then an optional port
(RFC 9110 section 7.2); anything else (``user@name``, ``name:80@other``, ``[::1]other``) is 400."""


def refusal(scope: Scope, status: int, code: str, message: str, hint: str, details: object = None) -> Response:
    """The error response of a guard: an error page (or htmx fragment) for UI requests, else the API's
    ``{"error": {"code", "message", "hint"}}`` body."""
    from fmhub.ui.errors import error_page, wants_html

    request = Request(scope)
    if wants_html(request):
        return error_page(request, status, code, message, hint, details)
    return error_response(status, code, message, hint, details)


def split_host(value: str) -> tuple[str, int | None]:
    """``"[::1]:8000"`` -> ``("::1", 8000)``; ``"Example.org."`` -> ``("example.org", None)``.

    Args:
        value: A ``Host`` header or the network location of a URL.

    Returns:
        The lower-cased host name (IPv6 without brackets, no trailing dot) and the port, or None
        when the value names none (or an invalid one).
    """
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        host, rest = (value[1:end], value[end + 1:]) if end > 0 else (value, "")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, ""  # a name, or a bare IPv6 address
    return host.rstrip("."), int(port) if port.isdigit() else None


@dataclass(frozen=True)
class SecurityOptions:
    """Who the server is, for the host and origin checks.

    Attributes:
        bound_host: The address ``fmhub serve --host`` listens on (default ``127.0.0.1``). On an
            any-address (``0.0.0.0``, ``::``) the machine's host name, its fully qualified name and
            their addresses are accepted too.
        allowed_hosts: More names the server answers to (``--allowed-host``, repeatable), with or
            without a port; ``*`` accepts any name (behind a proxy that checks names itself).
        csrf_secret: Key of the CSRF tokens (default: random per server start, so a page opened
            before a restart must be reloaded before it can post).
    """

    bound_host: str = "127.0.0.1"
    allowed_hosts: tuple[str, ...] = ()
    csrf_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    def host_names(self) -> frozenset[str]:
        """The host names (lower case, no port) this server answers to, ``*`` meaning any."""
        names = {*LOOPBACK_NAMES, split_host(self.bound_host)[0]}
        names.update(split_host(h)[0] if h.strip() != "*" else "*" for h in self.allowed_hosts)
        if split_host(self.bound_host)[0] in _ANY_ADDRESS:
            names.update(_machine_names())
        names.discard("")
        return frozenset(names)


def _machine_names() -> set[str]:
    """The machine's host name, fully qualified name and the addresses they resolve to."""
    names = {socket.gethostname().lower(), socket.getfqdn().lower()}
    for name in list(names):
        try:
            names.update(str(info[4][0]).lower() for info in socket.getaddrinfo(name, None))
        except OSError:
            continue
    return names


class CsrfTokens:
    """Derives and checks the CSRF token of a browser session (HMAC-SHA256 of the session cookie).

    Args:
        secret: The server's key (see :attr:`SecurityOptions.csrf_secret`).
    """

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def token(self, session: str) -> str:
        """The token that pages served to ``session`` carry (URL-safe, 43 characters)."""
        digest = hmac.new(self._secret, session.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")

    def valid(self, session: str, token: str) -> bool:
        """True when ``token`` was made for ``session`` by this server (constant-time compare)."""
        return bool(session and token) and hmac.compare_digest(self.token(session), token.strip())


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


FRAME_HEADERS = ((b"x-frame-options", b"DENY"), (b"content-security-policy", b"frame-ancestors 'none'"),
                 (b"x-content-type-options", b"nosniff"))
"""Sent with every answer: no other site may show the UI in a frame (a framed page's own clicks would
pass the origin and token checks), and browsers take content types as given."""


class HostCheckMiddleware:
    """Answers 421 to a request whose ``Host`` is not one of the server's names, and adds
    :data:`FRAME_HEADERS` to every answer.

    Args:
        app: The wrapped ASGI app.
        options: The server's names.
    """

    def __init__(self, app: ASGIApp, options: SecurityOptions) -> None:
        self.app = app
        self.names = options.host_names()

    def allowed(self, host_header: str, scope: Scope) -> bool:
        """True when ``host_header`` names this server (see :meth:`SecurityOptions.host_names`); an IP
        address equal to the one the connection came in on is accepted too."""
        if "*" in self.names:
            return True
        host, _ = split_host(host_header)
        if not host:
            return False
        if host in self.names:
            return True
        server = scope.get("server") or ()
        return bool(server) and _is_ip(host) and host == str(server[0]).lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http":
            inner_send = send

            async def send(message: Message) -> None:  # noqa: F811 - the same send, with FRAME_HEADERS
                if message["type"] == "http.response.start":
                    names = {k.lower() for k, _ in message.get("headers", [])}
                    extra = [(k, v) for k, v in FRAME_HEADERS if k not in names]
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
                await inner_send(message)
        hosts = Headers(scope=scope).getlist("host")
        host_header = hosts[0] if hosts else ""
        if len(hosts) > 1 or (host_header.strip() and not _HOST_SYNTAX.match(host_header.strip())):
            shown = " and ".join(f"'{h}'" for h in hosts[:2])
            await error_response(400, "invalid_request", f"the request's Host header is malformed: {shown}",
                                 "send one Host header holding a host name or address and an optional "
                                 "port")(scope, receive, send)
            return
        if self.allowed(host_header, scope):
            await self.app(scope, receive, send)
            return
        name = split_host(host_header)[0]
        if not name:
            await error_response(400, "invalid_request", "the request has no Host header",
                                 "send the server's name in `Host` (HTTP/1.1 requires it)")(scope, receive, send)
            return
        shown = ", ".join(sorted(n for n in self.names if n in LOOPBACK_NAMES))
        response = error_response(
            421, "unknown_host", f"this server does not answer to the host name '{name}' (it answers to "
            f"{shown} and the names it was started with)",
            f"open the server by one of its names; if '{name}' is a name of this machine, start the server "
            f"with `fmhub serve --allowed-host {name}`")
        await response(scope, receive, send)


def _same_origin(url: str, host_header: str) -> bool:
    """True when ``url`` (an ``Origin`` or ``Referer``) is on the host and port of ``host_header``."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    default = 443 if parts.scheme == "https" else 80
    if "@" in parts.netloc:  # browsers never send user info in Origin or Referer
        return False
    origin_host, origin_port = split_host(parts.netloc)
    host, port = split_host(host_header)
    return origin_host == host and (origin_port or default) == (port or default)


def _is_ui(path: str) -> bool:
    return path == "/" or path == "/ui" or path.startswith("/ui/")


class SameOriginMiddleware:
    """Refuses cross-site state-changing requests (403) and keeps the browser's CSRF session.

    Sets the ``fmhub_csrf`` cookie on UI responses of a browser that has none, and exposes the page's
    token to the templates as ``request.state.csrf_token``.

    Args:
        app: The wrapped ASGI app.
        tokens: Derives and checks tokens.
    """

    def __init__(self, app: ASGIApp, tokens: CsrfTokens) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        raw = dict(scope.get("headers") or [])
        path = scope.get("path") or ""
        session = cookie_value(raw, CSRF_COOKIE)
        session = session if _SESSION_RE.match(session) else ""
        new_session = "" if session or not _is_ui(path) else secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf_token"] = self.tokens.token(session or new_session) \
            if (session or new_session) else ""
        if scope.get("method") in UNSAFE_METHODS:
            problem = self._cross_site(headers)
            # as ApiKeyMiddleware reads it: the last Authorization header, the cookie when it is empty
            cookie_signed_in = bool(cookie_value(raw, KEY_COOKIE)) and not raw.get(b"authorization", b"").strip()
            if problem is None and (_is_ui(path) or cookie_signed_in):
                token = headers.get(CSRF_HEADER, "")
                if not token and headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                    token, receive = await _form_token(receive)
                if not self.tokens.valid(session, token):
                    problem = ("the form's CSRF token is missing or out of date" if session else
                               "the request carries no CSRF session cookie")
            if problem is not None:
                response = refusal(
                    scope, 403, "forbidden", f"refused a state-changing request that may come from another site: {problem}",
                    "use the fmhub web UI itself (reload the page if the server restarted); scripts and the CLI "
                    "send no cookies and an `Authorization` header instead")
                await response(scope, receive, send)
                return
        if not new_session:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookie = f"{CSRF_COOKIE}={new_session}; Path=/; HttpOnly; SameSite=Strict"
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    @staticmethod
    def _cross_site(headers: Headers) -> str | None:
        """Why the request looks cross-site, or None (no ``Origin``/``Referer``: not a browser's)."""
        host = headers.get("host", "")
        site = headers.get("sec-fetch-site")
        if site and site not in ("same-origin", "none"):
            return f"Sec-Fetch-Site is '{site}'"
        origin = headers.get("origin")
        if origin is not None:
            return None if _same_origin(origin, host) else f"Origin '{origin}' is not this server's"
        referer = headers.get("referer")
        if referer and not _same_origin(referer, host):
            return f"Referer '{urlsplit(referer).netloc}' is not this server"
        return None


async def _form_token(receive: Receive) -> tuple[str, Receive]:
    """Read a form body (its size is bounded by the body limit outside) for its ``csrf_token``; return
    the token and a ``receive`` that replays the body to the app."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    values = parse_qs(body.decode("utf-8", errors="replace")).get(CSRF_FIELD) or [""]
    return values[0], replaying(body, receive)


def replaying(body: bytes, receive: Receive, final: Message | None = None) -> Receive:
    """A ``receive`` that hands the app a body a guard has already read, then carries on.

    Args:
        body: The whole request body, as read by the guard.
        receive: The server's ``receive``.
        final: A non-body message the guard met while reading (e.g. ``http.disconnect``), handed on
            after the body instead of waiting for the next one.
    """
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return final if final is not None else await receive()

    return replay
