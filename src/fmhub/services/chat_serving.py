"""Chat endpoints: the OpenAI Chat Completions API (``/endpoints/{name}/v1/chat/completions``, also
streamed as server-sent events), ``/v1/models``, and the cloud layout at ``/score`` for chat
deployments, over a :class:`~fmhub.services.serving.EndpointRuntime`.

A conversation runs on a chat deployment's instances (continuous batching,
:mod:`fmhub.tasks.chat_engine`); one that asks too much of the model's context is refused (422)
before it takes a slot, and one whose client goes away is dropped from the batch.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fmhub.errors import FmhubError, OverloadedError, PayloadTooLargeError, ScoringTimeoutError, UnavailableError
from fmhub.serving.base import InstanceGone, NoInstance, QueueFull
from fmhub.serving.chat_dispatch import ChatStream, PromptRejected, serves_conversations
from fmhub.services.chat_request import ChatRequest, ChatRequestError, parse_chat_request, parse_cloud_chat


@dataclass
class ChatAnswer:
    """An accepted conversation: stream its chunks (:meth:`events`) or wait for the whole reply
    (:meth:`collect`); :meth:`close` drops it (the client went away).

    Attributes:
        id: ``chatcmpl-...``; ``model``: the deployment's model; ``deployment``: its name.
    """

    request: ChatRequest
    stream: ChatStream
    model: str
    deployment: str
    id: str = field(default_factory=lambda: "chatcmpl-" + uuid.uuid4().hex[:24])
    created: int = field(default_factory=lambda: int(time.time()))

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None, usage: Any = None,
               choices: bool = True) -> str:
        body: dict[str, Any] = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                                "model": self.model, "system_fingerprint": None,
                                "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                             "finish_reason": finish_reason}] if choices else []}
        if self.request.include_usage:
            body["usage"] = usage
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    async def events(self) -> AsyncIterator[str]:
        """Server-sent events: a role chunk, content chunks, a chunk with the finish reason, a usage
        chunk when ``stream_options.include_usage``, then ``data: [DONE]``. An error after the first
        chunk ends the stream with an ``error`` event (the HTTP status is sent by then)."""
        try:
            yield self._chunk({"role": "assistant", "content": ""})
            async for text in self.stream.deltas():
                yield self._chunk({"content": text})
            yield self._chunk({}, self.stream.finish_reason)
            if self.request.include_usage:
                yield self._chunk({}, usage=self.stream.usage, choices=False)
            yield "data: [DONE]\n\n"
        except (InstanceGone, RuntimeError) as exc:
            error = {"error": {"message": f"the deployment failed while answering: {exc}", "type": "server_error",
                               "param": None, "code": "unavailable"}}
            yield f"data: {json.dumps(error)}\n\n"
        finally:
            self.stream.close()  # a client gone mid-stream frees its slot here

    async def collect(self) -> dict[str, Any]:
        """The whole reply as a ``chat.completion`` object.

        Raises:
            UnavailableError: the instance ended or failed while answering (503).
        """
        try:
            text = "".join([t async for t in self.stream.deltas()])
        except (InstanceGone, RuntimeError) as exc:
            raise UnavailableError(f"deployment '{self.deployment}' failed while answering: {exc}",
                                   hint="retry; the endpoint log says more", headers={"Retry-After": "1"}) from None
        finally:
            self.stream.close()
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "system_fingerprint": None,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                             "logprobs": None, "finish_reason": self.stream.finish_reason}],
                "usage": self.stream.usage}

    def close(self) -> None:
        """Drop the conversation (frees its slot on the instance)."""
        self.stream.close()


async def _open(runtime: Any, live: Any, endpoint: str, messages: list[dict[str, str]],
                sampling: dict[str, Any]) -> ChatStream:
    """Open a conversation on ``live`` and wait until its instance accepted it.

    Raises:
        ChatRequestError (422: too long for the context), OverloadedError (429), UnavailableError
        (503), ScoringTimeoutError (504: not accepted within ``request_timeout_ms``).
    """
    record = live.record
    chat = getattr(live.backend, "chat", None)
    if chat is None:
        raise UnavailableError(f"deployment '{record.name}' runs on backend {record.backend}, which does not serve "
                               "chat", hint="redeploy it with backend local")
    try:
        stream = chat(record.endpoint, record.name, {"messages": messages, "sampling": sampling})
    except QueueFull:
        raise OverloadedError(f"endpoint '{endpoint}' is at capacity ({record.max_queue} conversations waiting "
                              f"beyond {record.max_batch_size} per instance)",
                              hint="retry after the time in Retry-After, or add instances",
                              headers={"Retry-After": "1"}) from None
    except (InstanceGone, NoInstance) as exc:
        raise UnavailableError(f"deployment '{record.name}' cannot answer now: {exc}",
                               hint="retry in a few seconds; the endpoint log says more",
                               headers={"Retry-After": "2"}) from None
    try:
        await asyncio.wait_for(stream.accepted(), record.request_timeout_ms / 1000.0)
    except PromptRejected as exc:
        hint = ("shorten the conversation or lower max_tokens" if exc.code == "context_length_exceeded"
                else "remove the control token's text from the message")
        raise ChatRequestError(str(exc), exc.param, exc.code or "invalid_value", hint=hint) from None
    except asyncio.TimeoutError:
        stream.close()
        raise ScoringTimeoutError(f"the conversation was not taken within {record.request_timeout_ms:.0f} ms",
                                  hint="retry, or raise request_timeout_ms") from None
    except (InstanceGone, RuntimeError) as exc:
        raise UnavailableError(f"deployment '{record.name}' cannot answer now: {exc}",
                               hint="retry in a few seconds; the endpoint log says more",
                               headers={"Retry-After": "2"}) from None
    except BaseException:
        stream.close()
        raise
    return stream


async def _chat_deployment(runtime: Any, endpoint: str, authorization: str | None, deployment: str | None) -> Any:
    """Check the key and route to a chat deployment running here.

    Raises:
        UnauthorizedError, NotFoundError, UnavailableError, ChatRequestError (404: not a chat endpoint).
    """
    await asyncio.to_thread(runtime._check_key, endpoint, authorization)
    record, live, lease = await runtime._route(endpoint, deployment, False)
    if not serves_conversations(record.task):
        error = ChatRequestError(f"endpoint '{endpoint}' serves {record.task}, not conversations", None,
                                 "model_not_found", hint=f"score it at /endpoints/{endpoint}/score")
        error.http_status = 404
        raise error
    if live is None:
        owner = getattr(lease, "owner_url", None)
        raise UnavailableError(f"deployment '{record.name}' of endpoint '{endpoint}' runs on another server"
                               + (f" ({owner})" if owner else ""),
                               hint=f"send chat requests to {owner}/endpoints/{endpoint}/v1/chat/completions"
                               if owner else "retry in a few seconds", headers={"Retry-After": "2"})
    return live


async def chat_completion(runtime: Any, endpoint: str, body: bytes, authorization: str | None,
                          deployment: str | None = None) -> ChatAnswer:
    """Check an OpenAI chat request and start it; every error answer is written to the endpoint's log.

    Args:
        runtime: The server's :class:`~fmhub.services.serving.EndpointRuntime`.
        endpoint: Endpoint name.
        body: The raw JSON body.
        authorization: The ``Authorization`` header (the endpoint key as bearer token).
        deployment: The ``x-fmhub-deployment`` header (route there, not by traffic).

    Returns:
        The accepted conversation (see :class:`ChatAnswer`).

    Raises:
        FmhubError: 401, 404, 413, 422 (naming the field), 429, 503, 504.
    """
    return await _logged(runtime, endpoint, _start(runtime, endpoint, body, authorization, deployment))


async def _start(runtime: Any, endpoint: str, body: bytes, authorization: str | None,
                 deployment: str | None) -> ChatAnswer:
    live = await _chat_deployment(runtime, endpoint, authorization, deployment)
    request = parse_chat_request(body)
    stream = await _open(runtime, live, endpoint, request.messages, request.sampling)
    return ChatAnswer(request, stream, live.record.model, live.record.name)


async def _logged(runtime: Any, endpoint: str, work: Any) -> Any:
    from fmhub.errors import NotFoundError

    try:
        return await work
    except FmhubError as exc:
        if not isinstance(exc, NotFoundError):  # an unknown endpoint has no log
            runtime.note(endpoint, " ".join(f"chat request answered {exc.http_status} {exc.code}: {exc.message}"
                                            .splitlines())[:1000], "request")
        raise


async def score_chat(runtime: Any, live: Any, endpoint: str, body: bytes) -> dict[str, Any]:
    """The cloud layout at ``/score`` for a chat deployment: every conversation of ``input_string``
    answered (together, in one batch), as ``predictions`` ``[{"generated_text", "finish_reason",
    "usage"}]``; one conversation also gets ``output`` (its text), as the cloud catalogs answer.

    Raises:
        FmhubError: 413 (also: more conversations than the deployment takes at once, its instances
            times ``max_batch_size`` plus ``max_queue``), 422 (naming the field), 429, 503, 504.
    """
    conversations, sampling, single = parse_cloud_chat(body)
    record = live.record
    capacity = record.instances * record.max_batch_size + record.max_queue
    if len(conversations) > capacity:  # could never be taken at once: a 429 would be retried in vain
        raise PayloadTooLargeError(
            f"input_data.input_string has {len(conversations)} conversations; deployment '{record.name}' takes at "
            f"most {capacity} at once ({record.instances} instance(s) x max_batch_size {record.max_batch_size} "
            f"+ max_queue {record.max_queue})",
            hint="send them in several requests, or redeploy with more --instances or a larger --max-queue")
    streams: list[ChatStream] = []
    try:
        for i, messages in enumerate(conversations):
            try:
                streams.append(await _open(runtime, live, endpoint, messages, sampling))
            except ChatRequestError as exc:
                if exc.param == "max_tokens":  # the engine's name for the layout's own parameter
                    key = next((k for k in ("max_new_tokens", "max_tokens") if k in _parameters(body)), "max_new_tokens")
                    exc.param = f"parameters.{key}"
                    exc.message = exc.message.replace("max_tokens", key, 1)
                if not single:
                    exc.message = f"input_data.input_string[{i}]: {exc.message}"
                raise
        texts = await asyncio.gather(*(_text(s) for s in streams))
    except (InstanceGone, RuntimeError) as exc:
        raise UnavailableError(f"deployment '{live.record.name}' failed while answering: {exc}",
                               hint="retry; the endpoint log says more", headers={"Retry-After": "1"}) from None
    finally:
        for s in streams:
            s.close()
    predictions = [{"generated_text": t, "finish_reason": s.finish_reason, "usage": s.usage}
                   for t, s in zip(texts, streams)]
    out = {"deployment": live.record.name, "model": live.record.model, "task": live.record.task,
           "predictions": predictions}
    if single:
        out["output"] = predictions[0]["generated_text"]
    return out


def _parameters(body: bytes) -> dict[str, Any]:
    """The ``parameters`` of a cloud-layout body already checked by ``parse_cloud_chat`` (top level or
    under ``input_data``)."""
    data = json.loads(body)
    params: dict[str, Any] = {}
    for part in (data.get("params"), data.get("parameters"), data.get("input_data"), data.get("inputs")):
        if isinstance(part, dict):
            params.update(part.get("parameters") or {} if "input_string" in part else part)
    return params


async def _text(stream: ChatStream) -> str:
    return "".join([t async for t in stream.deltas()])


def is_chat_task(task: str | None) -> bool:
    """True when deployments of ``task`` answer conversations (the chat routes, the chat playground)."""
    return bool(task) and serves_conversations(task)


async def list_models(runtime: Any, endpoint: str, authorization: str | None) -> dict[str, Any]:
    """``GET /v1/models``: one entry per deployment of the endpoint (``id``: its model reference).

    Raises:
        UnauthorizedError (401), NotFoundError (404).
    """
    await asyncio.to_thread(runtime._check_key, endpoint, authorization)
    targets = await runtime._targets(endpoint)
    created = int(time.time())
    data = [{"id": d.model, "object": "model", "created": int(d.created_at.timestamp()) if d.created_at else created,
             "owned_by": "fmhub", "deployment": d.name, "task": d.task, "traffic": d.traffic} for d, _ in targets]
    return {"object": "list", "data": data}


__all__ = ["ChatAnswer", "chat_completion", "list_models", "score_chat"]
