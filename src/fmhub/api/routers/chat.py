"""The OpenAI-compatible routes of a chat endpoint: ``POST /endpoints/{name}/v1/chat/completions``
and ``GET /endpoints/{name}/v1/models`` (the endpoint key as bearer token; errors in OpenAI's
shape ``{"error": {"message", "type", "param", "code"}}``)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from fmhub.errors import FmhubError, PayloadTooLargeError
from fmhub.services.chat_request import openai_error
from fmhub.services.chat_serving import chat_completion, list_models
from fmhub.services.serving import MAX_BODY_BYTES

router = APIRouter(prefix="/endpoints", tags=["chat"])


def _error(exc: FmhubError) -> JSONResponse:
    return JSONResponse(openai_error(exc), status_code=exc.http_status, headers=exc.headers)


async def _body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLargeError(f"request body over {MAX_BODY_BYTES} bytes",
                                       hint="send a shorter conversation")
    return bytes(body)


async def _disconnected(request: Request) -> None:
    """Return when the client goes away (the body was read already)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


@router.post("/{name}/v1/chat/completions", summary="Chat completion (OpenAI-compatible)")
async def chat_completions(name: str, request: Request) -> Any:
    """The OpenAI Chat Completions API for a chat endpoint: ``messages``, ``max_tokens``
    (or ``max_completion_tokens``), ``temperature`` (0-2), ``top_p``, ``stop`` (up to 4), ``seed``,
    ``n`` (1), ``stream`` (server-sent events of ``chat.completion.chunk``, ending ``data: [DONE]``;
    ``stream_options.include_usage`` adds a usage chunk); ``model`` and unknown fields are ignored.
    Send ``Authorization: Bearer <endpoint key>``. Errors: 401, 404, 413 (body over 1 MiB or more
    than 2048 messages), 422 (naming the field: ``messages[2].role``; ``max_tokens`` over the
    model's context), 429 (Retry-After), 503, 504. A client that disconnects frees its slot."""
    try:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            raise PayloadTooLargeError(f"request body is {length} bytes; the limit is {MAX_BODY_BYTES}",
                                       hint="send a shorter conversation")
        body = await _body(request)
        answer = await chat_completion(request.app.state.runtime, name, body, request.headers.get("authorization"),
                                       request.headers.get("x-fmhub-deployment"))
    except FmhubError as exc:
        return _error(exc)
    headers = {"x-fmhub-deployment": answer.deployment}
    if answer.request.stream:
        return StreamingResponse(answer.events(), media_type="text/event-stream",
                                 headers={**headers, "cache-control": "no-cache", "x-accel-buffering": "no"})
    work = asyncio.ensure_future(answer.collect())
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if not work.done():  # the client went away: free the slot
        work.cancel()
        answer.close()
        return JSONResponse({}, status_code=499)
    try:
        return JSONResponse(work.result(), headers=headers)
    except FmhubError as exc:
        return _error(exc)


@router.get("/{name}/v1/models", summary="Models of a chat endpoint (OpenAI-compatible)")
async def models(name: str, request: Request) -> Any:
    """``{"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}``: the model of
    each deployment of the endpoint. Send ``Authorization: Bearer <endpoint key>``."""
    try:
        return await list_models(request.app.state.runtime, name, request.headers.get("authorization"))
    except FmhubError as exc:
        return _error(exc)
