"""Generating chat replies: the prompt from the chat template, batched greedy (or sampled)
decoding with a KV cache, stopping at the end-of-turn tokens (:mod:`fmhub.tasks.chat_template`)."""

from __future__ import annotations

from typing import Any

from fmhub.data.problems import shorten_value
from fmhub.tasks.chat_template import ROLES, end_of_turn_ids, ensure_chat_template, plain_messages, render

DEFAULT_MAX_NEW_TOKENS = 128
"""Tokens generated per reply unless the request, the job or the model card says otherwise."""


def generate_replies(model: Any, tokenizer: Any, inputs: list[list[dict[str, Any]]], *, batch_size: int = 64,
                     max_seq_length: int = 1024, options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The next assistant reply per message list (see ``ChatCompletion.predict``).

    Args:
        inputs: Message lists; a final assistant message is dropped (it is the reference).
        batch_size: Replies decoded together at most (continuous batching: a finished reply's place
            goes to the next prompt, longest prompts first).
        max_seq_length: Longest prompt in tokens (a longer one keeps its last tokens).
        options: ``max_new_tokens``, ``do_sample``, ``temperature``, ``top_p`` (others ignored).

    Returns:
        Per input ``{"generated_text", "finish_reason": "stop" | "length", "truncated"}``.
    """
    from fmhub.tasks.chat_engine import ChatEngine, Sampling

    options = options or {}
    if not inputs:
        return []
    ensure_chat_template(tokenizer)
    stop_ids = generation_stop_ids(model, tokenizer)
    generation = generation_kwargs(options)
    prompts: list[list[int]] = []
    cut: list[bool] = []
    for messages in inputs:
        text = render(tokenizer, prompt_messages(messages), add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        cut.append(len(ids) > max_seq_length)
        prompts.append(ids[-max_seq_length:] if max_seq_length > 0 else ids)
    model.eval()
    max_new = generation["max_new_tokens"]
    longest = max(len(p) for p in prompts)
    # Continuous batching: a reply that ends leaves the batch and the next prompt takes its place,
    # so no row decodes past its own end (``generate`` runs a batch until its longest reply ends).
    engine = ChatEngine(model, tokenizer, max_batch=batch_size, context_tokens=longest + max_new, end_ids=stop_ids)
    sampling = Sampling(max_tokens=max_new, temperature=generation.get("temperature") or 0.0,
                        top_p=generation.get("top_p") or 1.0, seed=options.get("seed"))
    for i in sorted(range(len(prompts)), key=lambda k: -len(prompts[k])):  # longest first: fewer pad columns
        engine.add(i, prompts[i], max_new, sampling)
    texts: dict[int, list[str]] = {i: [] for i in range(len(prompts))}
    out: list[Any] = [None] * len(inputs)
    while engine.has_work():
        for event in engine.step():
            texts[event.id].append(event.delta)
            if event.finish_reason is not None:
                out[event.id] = {"generated_text": "".join(texts[event.id]).strip(),
                                 "finish_reason": event.finish_reason, "truncated": cut[event.id]}
    return out


def prompt_messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The messages a reply is generated after: all but a final assistant message, role and content only."""
    messages = plain_messages(messages)
    return messages[:-1] if messages and messages[-1]["role"] == "assistant" else messages


def check_messages(value: list[Any]) -> list[dict[str, str]]:
    """Check a request's message list (roles, non-empty text contents).

    Raises:
        ValueError: ``messages[i].role`` / ``messages[i].content`` named, with the value.
    """
    out: list[dict[str, str]] = []
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise ValueError(f"messages[{i}]: expected an object {{\"role\", \"content\"}}")
        role = m.get("role")
        if role not in ROLES:
            raise ValueError(f"messages[{i}].role: unknown role {shorten_value(role)} (expected system, user or "
                             "assistant)")
        content = m.get("content")
        if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
            content = "".join(str(p.get("text", "")) for p in content)
        if not isinstance(content, str):
            raise ValueError(f"messages[{i}].content: expected a string")
        if role == "system" and i > 0:
            raise ValueError(f"messages[{i}].role: a system message must come first")
        out.append({"role": role, "content": content})
    if not prompt_messages(out):
        raise ValueError("messages: nothing to reply to (give at least one user message)")
    return out


def generation_stop_ids(model: Any, tokenizer: Any) -> list[int]:
    """The tokens that end a reply: the model generation config's ``eos_token_id`` (an id or a
    list), then the tokenizer's end-of-sequence token and the chat template's end-of-turn tokens."""
    config = getattr(model, "generation_config", None)
    current = getattr(config, "eos_token_id", None)
    existing = [] if current is None else ([int(x) for x in current] if isinstance(current, (list, tuple))
                                           else [int(current)])
    eos = [tokenizer.eos_token_id] if isinstance(tokenizer.eos_token_id, int) else []
    return list(dict.fromkeys([*existing, *eos, *end_of_turn_ids(tokenizer)]))


def generation_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """``generate`` arguments from the options: ``max_new_tokens``, and sampling settings when
    ``do_sample`` is true (or ``temperature`` > 0 without ``do_sample``)."""
    max_new = options.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS
    temperature = options.get("temperature")
    do_sample = options.get("do_sample")
    if do_sample is None:
        do_sample = bool(temperature)
    kwargs: dict[str, Any] = {"max_new_tokens": int(max_new), "do_sample": bool(do_sample)}
    if do_sample:
        kwargs["temperature"] = float(temperature) if temperature else 1.0
        kwargs["top_p"] = float(options.get("top_p") or 1.0)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    return kwargs
