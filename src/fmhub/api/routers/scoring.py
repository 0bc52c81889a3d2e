"""``POST /endpoints/{name}/score``: the scoring URL of an online endpoint (its own keys)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from fmhub.errors import PayloadTooLargeError
from fmhub.services.serving import FORWARDED_HEADER, MAX_BODY_BYTES

router = APIRouter(prefix="/endpoints", tags=["scoring"])


class ScoreRequest(BaseModel):
    """A scoring request (``inputs`` is accepted as an alias of ``input_data``, ``parameters`` of ``params``).

    Per task, an input is: text classification, a string or ``[text, text_pair]``; token
    classification, a string or a list of words; question answering, ``{"question", "context"}``;
    the text-to-text tasks, a string. Also accepted: ``{"inputs": "text"}`` (one input),
    ``{"input_data": {"input_string": [...], "parameters": {...}}}``, and a pandas frame in split
    orientation ``{"input_data": {"columns": [...], "index": [...], "data": [[...], ...]}}`` (one
    input per row; one text column, two for a text pair, ``question`` and ``context`` columns).
    """

    input_data: list[Any] | str | dict[str, Any] = Field(
        description="The inputs, at most 1024: a list, one string (under inputs), "
                    "{input_string, parameters} or a split-orientation frame {columns, index, data}.")
    params: dict[str, Any] = Field(default_factory=dict, description="top_k (text classification); "
                                   "num_beams, max_new_tokens (text-to-text tasks).")


class ScoreResponse(BaseModel):
    """One prediction per input, in order, and who answered.

    A prediction is: text classification ``{"label", "score", "top_k"?, "truncated"}``; token
    classification ``{"entities": [{"type", "text", "start", "end", "score"}], "tags", "tokens",
    "truncated"}``; question answering ``{"answer", "score", "start", "end", "truncated"}`` (empty
    answer: unanswerable); the text-to-text tasks ``{"generated_text", "truncated"}``.
    """

    deployment: str
    model: str
    task: str
    predictions: list[Any]


@router.post("/{name}/score", response_model=ScoreResponse, summary="Score inputs",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": ScoreRequest.model_json_schema()}}}})
async def score(name: str, request: Request) -> Any:
    """Send ``Authorization: Bearer <endpoint key>``; ``x-fmhub-deployment: NAME`` picks a deployment
    instead of the traffic split. Errors: 401 key, 404 endpoint, 413 body over 1 MiB, 422 shape
    (naming the field), or an input the model could not score (naming it, ``input_data[3]``; the
    other requests of its batch are answered), 429 queue full (Retry-After), 503 nothing ready,
    504 timeout. Each error answer is written to the endpoint's log."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"request body is {length} bytes; the limit is {MAX_BODY_BYTES}",
                                   hint="send fewer or shorter inputs per request")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLargeError(f"request body over {MAX_BODY_BYTES} bytes",
                                       hint="send fewer or shorter inputs per request")
    result = await request.app.state.runtime.score(name, bytes(body), request.headers.get("authorization"),
                                                   request.headers.get("x-fmhub-deployment"),
                                                   forwarded=FORWARDED_HEADER in request.headers)
    return JSONResponse(result, headers={"x-fmhub-deployment": result["deployment"]})


@router.get("/{name}/health", summary="Is the endpoint ready")
def health(name: str, request: Request) -> Any:
    """200 when every deployment taking traffic has loaded its model, else 503."""
    from fmhub.services.endpoints import get_endpoint

    endpoint = get_endpoint(request.app.state.ctx, name)
    status = request.app.state.runtime.status(name)
    serving = [d.name for d in endpoint.deployments if d.traffic > 0]
    ready = bool(serving) and all((status.get(n) or {}).get("state") == "ready" for n in serving)
    return JSONResponse({"status": "ready" if ready else "not_ready",
                         "deployments": {n: (status.get(n) or {}).get("state", "stopped") for n in serving}},
                        status_code=200 if ready else 503)
