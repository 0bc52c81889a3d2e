"""Cut over-long text inputs before they are tokenized (:func:`clip_input`).

A tokenizer reads a whole text before it truncates it to the model's limit: one 800 KB string took
over a second of an instance's time, and memory that stayed allocated, to keep 512 tokens. A token
covers at most :data:`MAX_CHARS_PER_TOKEN` characters in practice (WordPiece turns a longer word into
one ``[UNK]``; BPE vocabularies hold no such tokens), so the characters past ``limit *
MAX_CHARS_PER_TOKEN`` never reach the model and are cut first; the prediction then says
``truncated``.
"""

from __future__ import annotations

from typing import Any

MAX_CHARS_PER_TOKEN = 64
"""Characters kept per token of the model's limit."""


def clip_input(value: Any, max_tokens: int) -> tuple[Any, bool]:
    """``value`` with each text cut to ``max_tokens * MAX_CHARS_PER_TOKEN`` characters.

    Cuts a string, each string of a list (a ``[text, text_pair]`` pair, a word list: the number of
    words is kept) and a question answering input's ``question`` (its ``context`` is read window by
    window, whole). Other values are returned as they are.

    Args:
        value: One decoded input, in the form ``task.predict`` takes.
        max_tokens: The model's limit in tokens.

    Returns:
        (the input, whether anything was cut).
    """
    most = max(1, max_tokens) * MAX_CHARS_PER_TOKEN
    if isinstance(value, str):
        return (value[:most], True) if len(value) > most else (value, False)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        cut = [clip_input(v, max_tokens) for v in value]
        return [v for v, _ in cut], any(c for _, c in cut)
    if isinstance(value, dict) and isinstance(value.get("question"), str):
        question, cut_q = clip_input(value["question"], max_tokens)
        return {**value, "question": question}, cut_q
    return value, False
