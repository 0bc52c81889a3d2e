"""IOB2 tag helpers: tag order, entity spans from tags, list cells from CSV/TSV."""

from __future__ import annotations

import json
from typing import Any


def tag_sort_key(tag: str) -> tuple[int, str, int]:
    """``O`` first, then by entity type, ``B-`` before ``I-`` (other tags after, alphabetically)."""
    if tag == "O":
        return (0, "", 0)
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BIES":
        return (1, tag[2:], "BIES".index(tag[0]))
    return (2, tag, 0)


def entity_spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """Entities as ``(type, first word, last word + 1)`` from IOB2 tags.

    An ``I-X`` that does not continue an ``X`` entity starts a new one (lenient reading, used for
    displaying predictions; metrics use seqeval's strict mode).
    """
    spans: list[tuple[str, int, int]] = []
    current: list[Any] | None = None
    for i, tag in enumerate(tags):
        prefix, _, kind = tag.partition("-")
        if tag == "O" or not kind:
            current = None
            continue
        if prefix == "B" or current is None or current[0] != kind:
            current = [kind, i, i + 1]
            spans.append(current)  # type: ignore[arg-type]
        else:
            current[2] = i + 1
    return [tuple(s) for s in spans]  # type: ignore[misc]


def parse_list_cell(value: Any) -> tuple[list[Any] | None, str | None]:
    """A list value, or a JSON array written in a CSV/TSV cell.

    Returns:
        (the list, None) or (None, what is wrong).
    """
    if isinstance(value, list):
        return value, None
    if isinstance(value, tuple):
        return list(value), None
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("["):
            return None, "expected a JSON array such as [\"EU\", \"rejects\"]"
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            return None, f"not a valid JSON array ({exc.msg} at character {exc.pos + 1})"
        if not isinstance(parsed, list):
            return None, "expected a JSON array"
        return parsed, None
    if value is None:
        return None, "missing value"
    return None, f"expected a list, got {type(value).__name__}"
