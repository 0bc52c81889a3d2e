"""The instance process of a chat deployment: loads the causal LM once and runs a
:class:`~fmhub.tasks.chat_engine.ChatEngine` (or vLLM's engine, runtime ``vllm``), taking
conversations and cancellations from the server between decode steps and streaming text back.

Pipe protocol (on top of the classic one of :mod:`fmhub.serving.instance`, which chat instances do
not use):

- server -> instance: ``{"id", "chat": {"messages": [...], "sampling": {...}}}`` (a conversation),
  ``{"cancel": id}`` (its client went away), ``None`` (stop).
- instance -> server: ``{"type": "accepted", "id", "prompt_tokens"}`` once the conversation is
  checked against the context, or ``{"type": "rejected", "id", "error", "param"}`` (the request's
  own fault: 422) or ``{"type": "result", "id", "error"}`` (the instance's: 503); then
  ``{"type": "chunks", "batch", "events": [{"id", "delta", "finish_reason"?, "usage"?}]}`` after
  each step (``batch``: conversations that step decoded).
"""

from __future__ import annotations

import os
import time
from typing import Any

from fmhub.tasks.chat_engine import ChatEngine, PromptRejected, Sampling
from fmhub.tasks.chat_generation import generation_stop_ids


def context_tokens(model: Any) -> int:
    """The model's context in tokens (``max_position_embeddings``; 2048 when it names none)."""
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(model.config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return 2048


def load_chat(config: dict[str, Any]) -> tuple[Any, str]:
    """Load a chat deployment's engine.

    Args:
        config: ``model_path``, ``base_model_path`` (the base's folder when the model is a LoRA
            adapter), ``device``, ``runtime`` (``pytorch`` or ``vllm``), ``max_batch_size``.

    Returns:
        (the engine, a description of the runtime).
    """
    if (config.get("runtime") or "pytorch") == "vllm":
        from fmhub.serving.vllm_engine import VllmChatEngine

        engine = VllmChatEngine(config)
        return engine, engine.description
    import torch
    from transformers import AutoTokenizer

    from fmhub.devices import choose_device
    from fmhub.tasks.adapters import load_causal_lm

    device = choose_device(config.get("device") or "auto")
    dtype = torch.bfloat16 if device.is_cuda else None
    model = load_causal_lm(config["model_path"], config.get("base_model_path"), dtype=dtype)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(config["model_path"])
    if device.is_cuda:
        model = model.to(device.device)
        description = f"pytorch (bf16, {device.device}, continuous batching)"
    else:
        threads = torch.get_num_threads()
        description = f"pytorch (fp32, cpu, {threads} thread{'' if threads == 1 else 's'}, continuous batching)"
    render = _renderer(tokenizer)
    engine = ChatEngine(model, tokenizer, int(config.get("max_batch_size") or 32), context_tokens(model),
                        generation_stop_ids(model, tokenizer), render)
    return engine, description


def _renderer(tokenizer: Any) -> Any:
    """``messages -> prompt text``: the tokenizer's chat template (a model without one gets the
    task's default ChatML template, as fine-tuning gives it)."""
    from fmhub.tasks.chat_template import ensure_chat_template, render

    ensure_chat_template(tokenizer)
    return lambda messages: render(tokenizer, messages, add_generation_prompt=True)


def reject_control_text(tokenizer: Any, messages: list[dict[str, str]]) -> None:
    """Refuse a message whose content holds a special token's text (``<|im_start|>``,
    ``<|im_end|>`` ...): rendered into the prompt, the tokenizer would read it as a turn marker, and a
    user could forge a system or assistant turn. Run before a conversation is queued, on either engine.

    Raises:
        PromptRejected: naming ``messages[i].content`` and the token (code ``invalid_value``).
    """
    from fmhub.tasks.chat_template import find_control_text, special_token_texts

    hit = find_control_text(messages, special_token_texts(tokenizer))
    if hit is not None:
        i, marker = hit
        raise PromptRejected(f"messages[{i}].content holds {marker!r}, a control token of this model's chat "
                             "template; message text may not contain it", f"messages[{i}].content",
                             code="invalid_value")


def serve_chat(conn: Any, config: dict[str, Any]) -> None:
    """The chat instance's main loop: runs until the pipe closes or ``None`` arrives."""
    t0 = time.perf_counter()
    try:
        engine, runtime = load_chat(config)
    except Exception as exc:  # reported to the server, which marks the deployment failed
        conn.send({"type": "failed", "error": f"{type(exc).__name__}: {exc}"})
        return
    conn.send({"type": "ready", "runtime": runtime, "pid": os.getpid(), "load_s": round(time.perf_counter() - t0, 2),
               "max_tokens": engine.context_tokens})
    while True:
        # Idle: block on the pipe. Busy: take what arrived, then run a step.
        try:
            if not engine.has_work():
                conn.poll(None)
            while conn.poll(0):
                message = conn.recv()
                if message is None:
                    return
                _take(conn, engine, message)
        except (EOFError, OSError):
            return
        if not engine.has_work():
            continue
        try:
            events = engine.step()
        except Exception as exc:  # noqa: BLE001 - a failed step fails its conversations, not the instance
            failed = engine.fail_all()
            for request_id in failed:
                conn.send({"type": "result", "id": request_id, "error": f"{type(exc).__name__}: {exc}"})
            continue
        if events:
            conn.send({"type": "chunks", "batch": engine.active_last_step, "steps": engine.steps,
                       "max_step_batch": engine.max_step_batch,
                       "events": [{"id": e.id, "delta": e.delta,
                                   **({"finish_reason": e.finish_reason, "usage": e.usage}
                                      if e.finish_reason else {})} for e in events]})


def _take(conn: Any, engine: Any, message: dict[str, Any]) -> None:
    """Handle one message from the server: a conversation to check and queue, or a cancellation."""
    if "cancel" in message:
        engine.cancel(message["cancel"])
        return
    request_id = message.get("id")
    try:
        chat = message["chat"]
        sampling = Sampling(**chat.get("sampling") or {})
        reject_control_text(engine.tokenizer, chat["messages"])
        prompt, limit = engine.prepare(chat["messages"], sampling)
    except PromptRejected as exc:
        conn.send({"type": "rejected", "id": request_id, "error": str(exc), "param": exc.param, "code": exc.code})
        return
    except Exception as exc:  # noqa: BLE001 - e.g. a chat template that refuses these roles
        conn.send({"type": "rejected", "id": request_id, "error": f"the model's chat template could not render "
                   f"the conversation: {type(exc).__name__}: {exc}", "param": "messages", "code": "invalid_value"})
        return
    conn.send({"type": "accepted", "id": request_id, "prompt_tokens": len(prompt)})
    engine.add(request_id, prompt, limit, sampling)


__all__ = ["context_tokens", "load_chat", "serve_chat"]
