"""Request limits of ``fmhub serve``, as pure ASGI middleware (:class:`BodyLimitMiddleware`).

- Body size: every route takes at most ``max_body_bytes`` (``fmhub serve --max-body-mb``); the
  upload route (``PUT /api/v1/data/{name}/upload``) takes at most ``max_upload_bytes``
  (``--max-upload-mb``) and streams to disk. A ``Content-Length`` over the limit is answered 413
  before any of the body is read; a body without one (chunked) is counted as it streams and answered
  413 at the limit, so the server never holds more than the limit in memory.
- Headers: ``fmhub serve`` parses HTTP with h11 and at most :data:`MAX_HEADER_BYTES` of request line
  and headers, so a never-ending header is refused instead of held in memory.
- JSON nesting: a JSON body (or a body without a ``Content-Type``, which the API reads as JSON, or
  any body of a scoring route, which reads it as JSON whatever its type)
  nested deeper than ``max_json_depth`` arrays and objects is answered 422 before it is parsed (a
  deep body would otherwise exhaust Python's recursion limit).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fmhub.api.errors import error_response
from fmhub.api.security import refusal, replaying
from fmhub.services.serving import MAX_BODY_BYTES as SCORING_MAX_BODY_BYTES

MIB = 1024 * 1024
DEFAULT_MAX_BODY_MB = 4
"""Largest request body but uploads, in MiB (JSON bodies, UI forms, scoring requests)."""

DEFAULT_MAX_UPLOAD_MB = 512
"""Largest data file upload, in MiB."""

MAX_HEADER_BYTES = 64 * 1024
"""Largest request line plus headers, in bytes; the server reads requests with h11, which answers 400
past it (uvicorn's default parser, httptools, buffers headers of any size)."""

MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects accepted in a JSON body."""

UPLOAD_ROUTES = (("PUT", re.compile(r"^/api/v1/data/[^/]+/upload$")),)
"""Routes whose body is a file streamed to disk: the upload limit applies and the body is not JSON."""

JSON_ANY_TYPE_PREFIX = "/endpoints/"
"""Routes that parse their body as JSON whatever its ``Content-Type`` (scoring): the nesting check
applies to every body they get."""

_STRING_OR_BRACKET = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.S)
"""A JSON string (its closing quote optional: an unterminated string runs to the end of the body,
so every match succeeds where it starts and the scan stays linear) or one bracket."""


@dataclass(frozen=True)
class RequestLimits:
    """Sizes the server accepts.

    Attributes:
        max_body_bytes: Largest body of any route but uploads (default 4 MiB, ``--max-body-mb``).
        max_upload_bytes: Largest upload (default 512 MiB, ``--max-upload-mb``).
        max_json_depth: Deepest nesting of arrays and objects in a JSON body (default 32).
    """

    max_body_bytes: int = DEFAULT_MAX_BODY_MB * MIB
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * MIB
    max_json_depth: int = MAX_JSON_DEPTH

    @classmethod
    def from_mb(cls, max_body_mb: float = DEFAULT_MAX_BODY_MB,
                max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB) -> "RequestLimits":
        """Limits from sizes in MiB (the ``fmhub serve`` flags)."""
        return cls(max_body_bytes=int(max_body_mb * MIB), max_upload_bytes=int(max_upload_mb * MIB))


def json_too_deep(body: bytes, max_depth: int) -> bool:
    """True when ``body`` nests arrays and objects deeper than ``max_depth`` (brackets inside JSON
    strings do not count). Linear in the body's size; no recursion.

    A body in UTF-16 or UTF-32 (which ``json.loads`` accepts) is scanned as UTF-8: read byte by
    byte, a character such as U+2200 holds a ``"`` byte that would hide brackets from the scan."""
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False
    encoding = json.detect_encoding(body)
    if encoding not in ("utf-8", "utf-8-sig"):
        body = body.decode(encoding, errors="replace").encode("utf-8")
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(body):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def _size(n: int) -> str:
    """``4 MiB``, ``1.5 MiB``, ``95,367,431,640,625 MiB``, ``512 bytes``."""
    if n < MIB:
        return f"{n} bytes"
    return f"{n / MIB:,.1f}".removesuffix(".0") + " MiB"


class BodyLimitMiddleware:
    """Answers 413 to bodies over the limit (before reading them) and 422 to JSON nested too deep.

    Args:
        app: The wrapped ASGI app.
        limits: The sizes (see :class:`RequestLimits`).
    """

    def __init__(self, app: ASGIApp, limits: RequestLimits) -> None:
        self.app = app
        self.limits = limits

    @staticmethod
    def _too_large(scope: Scope, upload: bool, size: int | None, limit: int) -> Response:
        """The 413 answer naming the size, the route's limit and the flag that raises it."""
        path = scope.get("path", "")
        said = f"is {_size(size)}" if size is not None else "goes on past the limit"
        flag = "--max-upload-mb" if upload else "--max-body-mb"
        if path.startswith(JSON_ANY_TYPE_PREFIX):
            return refusal(scope, 413, "payload_too_large",
                           f"the request body {said}; {path} accepts at most {_size(limit)}",
                           "send fewer or shorter inputs per request")
        where = ("send fewer or smaller items per request; upload data files with "
                 "`PUT /api/v1/data/{name}/upload`" if not upload else "split the file or leave out columns")
        return refusal(scope, 413, "payload_too_large",
                       f"the request body {said}; {path} accepts at most {_size(limit)}",
                       f"{where}; the server's operator can raise the limit with `fmhub serve {flag}`")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        method, path = scope.get("method", ""), scope.get("path", "")
        upload = any(method == m and rx.match(path) for m, rx in UPLOAD_ROUTES)
        limit = self.limits.max_upload_bytes if upload else self.limits.max_body_bytes
        if path.startswith(JSON_ANY_TYPE_PREFIX):  # scoring routes take less (named in the 413)
            limit = min(limit, SCORING_MAX_BODY_BYTES)
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                await error_response(400, "invalid_request", f"Content-Length '{length}' is not a number",
                                     "send the body's size in bytes")(scope, receive, send)
                return
            if int(length) > limit:
                await self._too_large(scope, upload, int(length), limit)(scope, receive, send)
                return
        has_body = (length is not None and int(length) > 0) or "transfer-encoding" in headers
        if not has_body:
            await self.app(scope, receive, send)
            return
        content_type = headers.get("content-type", "").lower()
        # scoring routes read their body as JSON whatever its Content-Type
        if not upload and ("json" in content_type or not content_type or path.startswith(JSON_ANY_TYPE_PREFIX)):
            await self._json(scope, receive, send, limit)
            return
        await self._counted(scope, receive, send, limit, upload)

    async def _json(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Read the (bounded) body, check its nesting, and replay it to the app."""
        chunks: list[bytes] = []
        size = 0
        final: Message | None = None
        while True:
            message = await receive()
            if message["type"] != "http.request":
                final = message
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(scope, False, None, limit)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if json_too_deep(body, self.limits.max_json_depth):
            depth = self.limits.max_json_depth
            await refusal(scope, 422, "invalid_request",
                          f"the JSON body nests arrays and objects deeper than {depth} levels",
                          f"flatten the body: this server reads at most {depth} levels of nesting",
                          [{"field": "body", "value": None,
                            "message": f"nested deeper than {depth} levels"}])(scope, receive, send)
            return
        await self.app(scope, replaying(body, receive, final), send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, limit: int, upload: bool) -> None:
        """Pass the body through as it streams; at the limit, stop and answer 413 instead of the app."""
        state = {"size": 0, "over": False, "started": False}

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["size"] += len(message.get("body", b""))
                if state["size"] > limit:
                    state["over"] = True
                    from starlette.exceptions import HTTPException

                    raise HTTPException(413, "request body over the limit")
            return message

        async def guarded_send(message: Message) -> None:
            if state["over"]:
                return  # the app's answer to the aborted body is replaced by the 413 below
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not state["over"]:
                raise
        if state["over"] and not state["started"]:
            await self._too_large(scope, upload, None, limit)(scope, receive, send)
