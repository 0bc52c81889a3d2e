"""The body of a chat request, checked: the OpenAI Chat Completions layout
(``POST /endpoints/{name}/v1/chat/completions``) and the cloud catalogs' layout at ``/score``
(``{"input_data": {"input_string": [messages...], "parameters": {...}}}``).

Every problem is a :class:`ChatRequestError` naming the field (``messages[2].role``). Fields the
OpenAI API knows that only tune or label a request (``frequency_penalty``, ``user``, ``logit_bias``
...) and unknown fields are ignored, as OpenAI ignores unknown fields; fields that ask for something
the answer would silently lack (:data:`UNSUPPORTED`: log-probabilities, tool calls, a JSON response
format) are refused with 422, so a client never reads a reply that ignored them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from fmhub.errors import FmhubError, PayloadTooLargeError, SpecError

MAX_MESSAGES = 2048
"""Messages per conversation at most; more answer 413."""

MAX_STOP = 4
"""Stop strings at most (as OpenAI)."""

ROLES = ("system", "developer", "user", "assistant")
"""Roles a conversation may use (``developer`` is OpenAI's newer name for ``system``, and is sent as it)."""


class ChatRequestError(SpecError):
    """A chat request the endpoint refuses (422 unless ``http_status`` says otherwise).

    Attributes:
        param: The field at fault (``messages[2].role``), or None.
        openai_code: The OpenAI error code (``invalid_value``, ``context_length_exceeded`` ...).
    """

    def __init__(self, message: str, param: str | None = None, openai_code: str = "invalid_value",
                 hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.param = param
        self.openai_code = openai_code


@dataclass
class ChatRequest:
    """A checked OpenAI chat request.

    Attributes:
        messages: ``[{"role", "content"}]`` (content as one string).
        sampling: ``max_tokens``, ``temperature``, ``top_p``, ``stop``, ``seed`` (those given).
        stream: Answer with server-sent events.
        include_usage: ``stream_options.include_usage``: a last chunk with the usage.
        model: The ``model`` the client named (not used to route).
    """

    messages: list[dict[str, str]]
    sampling: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    include_usage: bool = False
    model: str | None = None


def load_json(body: bytes) -> dict[str, Any]:
    """The body as a JSON object.

    Raises:
        ChatRequestError: not JSON, or not an object.
    """
    try:
        data = json.loads(body or b"null")
    except RecursionError:
        raise ChatRequestError("the request body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        where = f" at line {exc.lineno}, column {exc.colno}" if hasattr(exc, "lineno") else ""
        raise ChatRequestError(f"the request body is not valid JSON{where}",
                               hint='send {"messages": [{"role": "user", "content": "..."}]}') from None
    if not isinstance(data, dict):
        raise ChatRequestError("the request body must be a JSON object",
                               hint='send {"messages": [{"role": "user", "content": "..."}]}')
    return data


UNSUPPORTED = {
    "logprobs": lambda v: v is True,
    "top_logprobs": lambda v: v not in (None, 0),
    "tools": lambda v: bool(v),
    "functions": lambda v: bool(v),
    "tool_choice": lambda v: v not in (None, "none", "auto"),
    "response_format": lambda v: v is not None and not (isinstance(v, dict) and v.get("type") == "text"),
}
"""OpenAI fields this endpoint cannot honour, with the values that ask for them (``tools: []`` or
``response_format: {"type": "text"}`` ask for nothing and pass)."""


def parse_chat_request(body: bytes) -> ChatRequest:
    """Check an OpenAI Chat Completions body.

    Raises:
        ChatRequestError: a malformed field (422, naming it), ``n`` other than 1 (422), a field of
            :data:`UNSUPPORTED` that asks for what the reply cannot give (422).
        PayloadTooLargeError: more than :data:`MAX_MESSAGES` messages (413).
    """
    data = load_json(body)
    if "messages" not in data:
        raise ChatRequestError("messages is missing", "messages",
                               hint='send {"messages": [{"role": "user", "content": "..."}]}')
    for key, asks in UNSUPPORTED.items():
        if key in data and asks(data[key]):
            raise ChatRequestError(f"{key} is not supported by this endpoint (a local model's plain text reply)",
                                   key, openai_code="unsupported_parameter",
                                   hint=f"leave {key} out; the reply would not honour it")
    messages = check_messages(data["messages"], "messages")
    sampling = check_sampling(data, "")
    n = data.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, float)) or n != 1):  # 1 and 1.0
        raise ChatRequestError(f"n is {json.dumps(n)}; this endpoint answers one choice per request (n=1)", "n",
                               hint="leave n out, or send n parallel requests")
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise ChatRequestError("stream must be true or false", "stream")
    options = data.get("stream_options")
    include_usage = False
    if options is not None:
        if not isinstance(options, dict):
            raise ChatRequestError("stream_options must be an object", "stream_options")
        include_usage = options.get("include_usage") is True
    model = data.get("model")
    return ChatRequest(messages, sampling, bool(stream), include_usage, model if isinstance(model, str) else None)


def check_messages(raw: Any, where: str) -> list[dict[str, str]]:
    """A conversation's messages as ``[{"role", "content"}]`` (text parts joined into one string).

    Raises:
        ChatRequestError: not a non-empty list, or a message with an unknown role or content that
            is not text (the field named: ``messages[2].role``).
        PayloadTooLargeError: more than :data:`MAX_MESSAGES` messages.
    """
    if not isinstance(raw, list) or not raw:
        raise ChatRequestError(f"{where} must be a non-empty list of messages", where,
                               hint='e.g. [{"role": "user", "content": "Hello"}]')
    if len(raw) > MAX_MESSAGES:
        raise PayloadTooLargeError(f"{where} has {len(raw)} messages; at most {MAX_MESSAGES} per conversation",
                                   hint="shorten the conversation (drop or summarise early turns)")
    out = []
    for i, message in enumerate(raw):
        name = f"{where}[{i}]"
        if not isinstance(message, dict):
            raise ChatRequestError(f"{name} must be an object with role and content", name)
        role = message.get("role")
        if role not in ROLES:
            shown = json.dumps(role) if role is None or isinstance(role, (str, int, float, bool)) else "an object"
            raise ChatRequestError(f"{name}.role is {shown}; a role is one of {', '.join(ROLES)}", f"{name}.role",
                                   hint="tool and function messages are not supported by this endpoint"
                                   if role in ("tool", "function") else "")
        content = _content(message.get("content"), f"{name}.content", role)
        out.append({"role": "system" if role == "developer" else role, "content": content})
    return out


def _content(value: Any, name: str, role: str) -> str:
    if isinstance(value, str):
        _check_text(value, name)
        return value
    if value is None and role == "assistant":
        return ""
    if isinstance(value, list):
        parts = []
        for j, part in enumerate(value):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ChatRequestError(f"{name}[{j}] must be a text part {{\"type\": \"text\", \"text\": \"...\"}}; "
                                       "this endpoint serves a text model", f"{name}[{j}]")
            _check_text(part["text"], f"{name}[{j}].text")
            parts.append(part["text"])
        return "\n".join(parts)
    raise ChatRequestError(f"{name} must be a string (or a list of text parts)", name)


def _check_text(text: str, name: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ChatRequestError(f"{name} holds text that is not Unicode (an unpaired surrogate)", name) from None


def _number(data: dict[str, Any], key: str, prefix: str, low: float, high: float) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise ChatRequestError(f"{prefix}{key} is {json.dumps(value) if isinstance(value, (int, float, str, bool)) else 'not a number'}; "
                               f"it must be a number from {low:g} to {high:g}", f"{prefix}{key}")
    return float(value)


def _integer(data: dict[str, Any], key: str, prefix: str, low: int) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if type(value) is not int or value < low:
        raise ChatRequestError(f"{prefix}{key} is {json.dumps(value) if isinstance(value, (int, float, str, bool)) else 'not an integer'}; "
                               f"it must be an integer of at least {low}", f"{prefix}{key}")
    return value


def check_sampling(data: dict[str, Any], prefix: str, tokens_keys: tuple[str, ...] = ("max_completion_tokens",
                                                                                    "max_tokens")) -> dict[str, Any]:
    """The generation settings of a request: ``max_tokens`` (the first of ``tokens_keys`` given),
    ``temperature`` (0-2), ``top_p`` (0-1), ``stop`` (a string or up to 4), ``seed``.

    Raises:
        ChatRequestError: a value of the wrong type or out of range, naming ``prefix + key``.
    """
    out: dict[str, Any] = {}
    for key in tokens_keys:
        value = _integer(data, key, prefix, 1)
        if value is not None:
            out["max_tokens"] = value
            break
    temperature = _number(data, "temperature", prefix, 0.0, 2.0)
    if temperature is not None:
        out["temperature"] = temperature
    top_p = _number(data, "top_p", prefix, 0.0, 1.0)
    if top_p is not None:
        out["top_p"] = top_p
    stop = data.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or len(stops) > MAX_STOP or \
                not all(isinstance(s, str) and s for s in stops):
            raise ChatRequestError(f"{prefix}stop must be a non-empty string or a list of at most {MAX_STOP} of them",
                                   f"{prefix}stop")
        out["stop"] = stops
    if data.get("seed") is not None:
        seed = data["seed"]
        if type(seed) is not int or not -(2 ** 63) <= seed < 2 ** 64:
            raise ChatRequestError(f"{prefix}seed must be an integer", f"{prefix}seed")
        out["seed"] = seed % (2 ** 63)
    return out


CLOUD_PARAMETERS = ("max_new_tokens", "max_tokens", "temperature", "top_p", "do_sample", "stop", "seed")
"""Parameters of the cloud layout at ``/score`` for a chat deployment."""


def parse_cloud_chat(body: bytes) -> tuple[list[list[dict[str, str]]], dict[str, Any], bool]:
    """The cloud catalogs' chat layout at ``/score``:
    ``{"input_data": {"input_string": [messages...], "parameters": {...}}}``. ``input_string`` is
    one conversation (a list of messages) or several (a list of such lists, of ``{"messages": [...]}``
    objects, or of texts, each one user message); ``{"input_data": [...], "params": {...}}`` is
    read the same way.

    Returns:
        (the conversations, the sampling settings, whether one conversation was sent).

    Raises:
        ChatRequestError: a malformed body, naming the field. PayloadTooLargeError: a conversation
            of more than :data:`MAX_MESSAGES` messages.
    """
    data = load_json(body)
    hint = 'send {"input_data": {"input_string": [{"role": "user", "content": "..."}], "parameters": {...}}}'
    unknown = sorted(set(data) - {"input_data", "inputs", "params", "parameters"})
    if unknown:
        raise ChatRequestError(f"unknown field(s) {', '.join(unknown)}", unknown[0], hint=hint)
    key = "input_data" if "input_data" in data else "inputs"
    payload = data.get(key)
    parameters: dict[str, Any] = {}
    for name in ("params", "parameters"):
        if data.get(name) is not None:
            if not isinstance(data[name], dict):
                raise ChatRequestError(f"{name} must be an object", name)
            parameters.update(data[name])
    if isinstance(payload, dict):
        extra = sorted(set(payload) - {"input_string", "parameters"})
        if extra or "input_string" not in payload:
            raise ChatRequestError(f"{key} must hold input_string (and parameters)", key, hint=hint)
        if payload.get("parameters") is not None:
            if not isinstance(payload["parameters"], dict):
                raise ChatRequestError(f"{key}.parameters must be an object", f"{key}.parameters")
            parameters.update(payload["parameters"])
        raw, where = payload["input_string"], f"{key}.input_string"
    else:
        raw, where = payload, key
    if isinstance(raw, str):  # one text: one user message
        raw = [{"role": "user", "content": raw}]
    if not isinstance(raw, list) or not raw:
        raise ChatRequestError(f"{where} must be a list of messages (one conversation) or of conversations",
                               where, hint=hint)
    single = isinstance(raw[0], dict) and "role" in raw[0]
    conversations = [check_messages(raw, where)] if single else \
        [check_messages(_conversation(c), f"{where}[{i}]") for i, c in enumerate(raw)]
    bad = sorted(set(parameters) - set(CLOUD_PARAMETERS))
    if bad:
        raise ChatRequestError(f"parameters.{bad[0]} is not a parameter of a chat deployment",
                               f"parameters.{bad[0]}", hint=f"parameters: {', '.join(CLOUD_PARAMETERS)}")
    sampling = check_sampling(parameters, "parameters.", ("max_new_tokens", "max_tokens"))
    do_sample = parameters.get("do_sample")
    if do_sample is not None and not isinstance(do_sample, bool):
        raise ChatRequestError("parameters.do_sample must be true or false", "parameters.do_sample")
    if do_sample is False:
        sampling["temperature"] = 0.0
    return conversations, sampling, single


def _conversation(value: Any) -> Any:
    """A conversation of the cloud layout: a list of messages, ``{"messages": [...]}``, or a text
    (one user message)."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        return value["messages"]
    return value


def openai_error(exc: FmhubError) -> dict[str, Any]:
    """The OpenAI error body of an error: ``{"error": {"message", "type", "param", "code"}}``."""
    status = exc.http_status
    kind = ("invalid_request_error" if status in (400, 404, 413, 422) else
            "authentication_error" if status == 401 else
            "rate_limit_error" if status == 429 else "server_error")
    message = exc.message + (f" ({exc.hint})" if exc.hint else "")
    return {"error": {"message": message, "type": kind, "param": getattr(exc, "param", None),
                      "code": getattr(exc, "openai_code", None) or exc.code}}


__all__ = ["CLOUD_PARAMETERS", "ChatRequest", "ChatRequestError", "MAX_MESSAGES", "UNSUPPORTED", "check_messages",
           "check_sampling", "openai_error", "parse_chat_request", "parse_cloud_chat"]
