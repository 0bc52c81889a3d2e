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
        batch_size: Prompts decoded together (left-padded, longest first).
        max_seq_length: Longest prompt in tokens (a longer one keeps its last tokens).
        options: ``max_new_tokens``, ``do_sample``, ``temperature``, ``top_p`` (others ignored).

    Returns:
        Per input ``{"generated_text", "finish_reason": "stop" | "length", "truncated"}``.
    """
    import torch

    from fmhub.tasks.batching import length_sorted_batches

    options = options or {}
    if not inputs:
        return []
    ensure_chat_template(tokenizer)
    stop_ids = generation_stop_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
    generation = generation_kwargs(options)
    prompts: list[list[int]] = []
    cut: list[bool] = []
    for messages in inputs:
        text = render(tokenizer, prompt_messages(messages), add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        cut.append(len(ids) > max_seq_length)
        prompts.append(ids[-max_seq_length:] if max_seq_length > 0 else ids)
    device = next(model.parameters()).device
    model.eval()
    out: list[Any] = [None] * len(inputs)
    stops = set(stop_ids)
    with torch.inference_mode():
        for idx in length_sorted_batches([len(p) for p in prompts], batch_size):
            width = max(len(prompts[i]) for i in idx)
            ids = torch.tensor([[pad_id] * (width - len(prompts[i])) + prompts[i] for i in idx], device=device)
            mask = torch.tensor([[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in idx],
                                device=device)
            generated = model.generate(input_ids=ids, attention_mask=mask, eos_token_id=stop_ids,
                                       pad_token_id=pad_id, use_cache=True, **generation)
            for row, i in enumerate(idx):
                new = generated[row, width:].tolist()
                end = next((k for k, t in enumerate(new) if t in stops), None)
                text = tokenizer.decode(new if end is None else new[:end], skip_special_tokens=True)
                out[i] = {"generated_text": text.strip(), "finish_reason": "length" if end is None else "stop",
                          "truncated": cut[i]}
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
    """The model generation config's eos ids followed by the chat template's end-of-turn ids."""
    config = getattr(model, "generation_config", None)
    current = getattr(config, "eos_token_id", None)
    existing = [] if current is None else ([int(x) for x in current] if isinstance(current, (list, tuple))
                                           else [int(current)])
    return list(dict.fromkeys([*existing, *end_of_turn_ids(tokenizer)]))


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
