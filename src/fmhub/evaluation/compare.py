"""Comparing evaluation results side by side: which metrics they share, which value is best, and
the per-class (or per-entity-type) F1 of each, from results already read (no database here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MAX_COMPARED = 20
"""Most jobs one comparison shows."""

PER_CLASS_KEYS = ("per_class", "per_type")
"""Nested metrics with one ``{"f1", ...}`` entry per class (text classification) or entity type
(token classification)."""


def parse_job_ids(value: str | Sequence[str] | None) -> list[str]:
    """``"a,b"`` (or ``["a", "b,c"]``) -> ``["a", "b", "c"]``: stripped, without blanks and repeats."""
    parts = [value] if isinstance(value, str) else list(value or [])
    ids = [p.strip() for part in parts for p in str(part).split(",")]
    return list(dict.fromkeys(i for i in ids if i))


def is_number(value: Any) -> bool:
    """True for an int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def best_of(values: dict[str, Any], lower_is_better: bool = False) -> list[str]:
    """The keys (job ids) holding the best value; empty when fewer than two have a value or all
    values are equal (nothing stands out)."""
    numbers = {k: float(v) for k, v in values.items() if is_number(v)}
    if len(numbers) < 2 or len(set(numbers.values())) == 1:
        return []
    target = (min if lower_is_better else max)(numbers.values())
    return [k for k, v in numbers.items() if v == target]


def compare_results(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The side-by-side view of evaluation results.

    Args:
        results: One entry per job, in column order, each with ``job_id``, ``task`` and ``test``
            (the test metrics, None until the job completes).

    Returns:
        ``{"task", "metrics", "best", "texts", "per_class"}``: ``metrics`` the union of the numeric
        metric names in order of first appearance (``n``, the row count, left out); ``best`` metric
        name -> the job ids with the best value (higher is better, lower for a loss; empty where
        fewer than two jobs have a value or all are equal); ``texts`` the text metrics (sacreBLEU
        signatures); ``per_class`` as :func:`per_class_f1`.
    """
    metrics: list[str] = []
    texts: list[str] = []
    for r in results:
        for name, value in (r["test"] or {}).items():
            if name == "n" or value is None:
                continue
            target = metrics if is_number(value) else texts if isinstance(value, str) else None
            if target is not None and name not in target:
                target.append(name)
    best = {name: best_of({r["job_id"]: (r["test"] or {}).get(name) for r in results}, name.endswith("loss"))
            for name in metrics}
    tasks = [r["task"] for r in results if r["task"]]
    return {"task": tasks[0] if tasks else None, "metrics": metrics, "best": best, "texts": texts,
            "per_class": per_class_f1(results)}


def per_class_f1(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Per-class F1 side by side: ``{"key", "labels", "f1": {label: {job_id: f1}}, "best": {label:
    [job_id]}}``, None when no result has any."""
    for key in PER_CLASS_KEYS:
        labels: list[str] = []
        f1: dict[str, dict[str, float]] = {}
        for r in results:
            for label, scores in ((r["test"] or {}).get(key) or {}).items():
                if isinstance(scores, dict) and is_number(scores.get("f1")):
                    if label not in f1:
                        labels.append(label)
                    f1.setdefault(label, {})[r["job_id"]] = float(scores["f1"])
        if labels:
            return {"key": key, "labels": labels, "f1": f1, "best": {lab: best_of(f1[lab]) for lab in labels}}
    return None
