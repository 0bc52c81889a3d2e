"""Text-to-text with a decoder-only causal LM (Llama, SmolLM2, GPT-2 ...): the source and the
target are joined in one prompt, the loss is computed on the target tokens only, and prediction
generates after the prompt.

The prompt is the model's chat template when its tokenizer has one (instruct models), with one user
message ``"{instruction}\\n\\n{source}"``; otherwise ``"{instruction}\\n\\n{source}\\n\\n{answer_tag}"``.
The target is followed by the tokenizer's end-of-sequence token so the model learns to stop.
"""

from __future__ import annotations

from typing import Any

IGNORE_INDEX = -100  # positions the loss skips (transformers' convention)


def is_causal_lm(config: Any) -> bool:
    """True for a decoder-only model config (``is_encoder_decoder`` false)."""
    return not getattr(config, "is_encoder_decoder", False)


def ensure_pad_token(tokenizer: Any) -> None:
    """Give a tokenizer without a padding token its end-of-sequence token as padding (the padded
    positions are masked, so the choice does not change results)."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.sep_token


def eos_token_id(tokenizer: Any) -> int:
    """The id that ends a target: ``eos_token_id``, else ``sep_token_id`` (BERT-style vocabularies)."""
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    if eos is None:
        raise ValueError("the tokenizer has no end-of-sequence token")
    return int(eos)


def truncate_source(tokenizer: Any, source: str, max_tokens: int) -> tuple[str, bool]:
    """Cut ``source`` to its first ``max_tokens`` tokens.

    Returns:
        (text, truncated).
    """
    ids = tokenizer(source, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_tokens:
        return source, False
    return tokenizer.decode(ids[:max_tokens], skip_special_tokens=True), True


def build_prompt(tokenizer: Any, instruction: str, source: str, answer_tag: str) -> str:
    """The prompt text for one source (chat template when the tokenizer has one)."""
    content = f"{instruction}\n\n{source}"
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                             add_generation_prompt=True)
    return f"{content}\n\n{answer_tag}"


def encode_pair(tokenizer: Any, prompt: str, target: str, max_target_length: int) -> dict[str, list[int]]:
    """Token ids of prompt + target + end token, with ``labels`` masked (-100) on the prompt.

    Returns:
        ``{"input_ids", "attention_mask", "labels"}``, each ``[seq_len]``.
    """
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if not getattr(tokenizer, "chat_template", None) and tokenizer.bos_token_id is not None:
        prompt_ids = [tokenizer.bos_token_id, *prompt_ids]
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"][:max_target_length]
    target_ids = [*target_ids, eos_token_id(tokenizer)]
    ids = prompt_ids + target_ids
    return {"input_ids": ids, "attention_mask": [1] * len(ids),
            "labels": [IGNORE_INDEX] * len(prompt_ids) + target_ids}


def generate(model: Any, tokenizer: Any, prompts: list[str], generation: dict[str, Any]) -> list[str]:
    """Generate after each prompt (left-padded batch) and return only the new text.

    Args:
        prompts: ``[batch]`` prompt strings.
        generation: ``generate`` keyword arguments (``num_beams``, ``max_new_tokens``, ...).

    Returns:
        ``[batch]`` generated strings, special tokens removed, stripped.
    """
    ensure_pad_token(tokenizer)
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        texts = prompts
        if not getattr(tokenizer, "chat_template", None) and tokenizer.bos_token is not None:
            texts = [tokenizer.bos_token + p for p in prompts]
        enc = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    finally:
        tokenizer.padding_side = side
    enc = enc.to(next(model.parameters()).device)
    enc.pop("token_type_ids", None)
    ids = model.generate(**enc, **generation, eos_token_id=eos_token_id(tokenizer),
                         pad_token_id=tokenizer.pad_token_id)
    new = ids[:, enc["input_ids"].shape[1]:]
    return [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
