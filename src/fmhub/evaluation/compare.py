"""Comparing evaluation results side by side: which metrics they share, which value is best, the
per-class (or per-entity-type) F1 and the per-group metrics of each, and a fine-tuned model's test
metrics beside its base model's zero-shot ones, from results already read (no database here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MAX_COMPARED = 20
"""Most jobs one comparison shows."""

GROUPS_KEY = "groups"
"""Nested metrics with one entry of the same metrics per value of a group column (``--group-by``)."""

ZERO_SHOT_SPLIT = "test_zero_shot"
"""The split a fine-tune records its base model's metrics on the test data under, before training."""

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
        ``{"task", "metrics", "best", "texts", "per_class", "per_group"}``: ``metrics`` the union of
        the numeric metric names in order of first appearance (``n``, the row count, left out);
        ``best`` metric name -> the job ids with the best value (higher is better, lower for a
        loss; empty where fewer than two jobs have a value or all are equal); ``texts`` the text
        metrics (sacreBLEU signatures); ``per_class`` as :func:`per_class_f1`; ``per_group`` as
        :func:`per_group_metrics`.
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
            "per_class": per_class_f1(results), "per_group": per_group_metrics(results)}


def numeric_names(metrics: dict[str, Any] | None) -> list[str]:
    """The numeric metric names of one result, in order (``n`` left out)."""
    return [k for k, v in (metrics or {}).items() if k != "n" and is_number(v)]


def per_group_metrics(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The metrics of each group value side by side (results with a ``groups`` entry).

    Args:
        results: As :func:`compare_results` takes them.

    Returns:
        ``{"groups": [value, ...], "metrics": [name, ...], "values": {group: {metric: {job_id:
        value}}}, "n": {group: {job_id: rows}}, "best": {group: {metric: [job_id]}}}`` (groups and
        metrics in order of first appearance), or None when no result has per-group metrics.
    """
    groups: list[str] = []
    names: list[str] = []
    values: dict[str, dict[str, dict[str, float]]] = {}
    counts: dict[str, dict[str, Any]] = {}
    for r in results:
        for group, metrics in ((r["test"] or {}).get(GROUPS_KEY) or {}).items():
            if not isinstance(metrics, dict):
                continue
            group = str(group)
            if group not in values:
                groups.append(group)
            for name in numeric_names(metrics):
                if name not in names:
                    names.append(name)
                values.setdefault(group, {}).setdefault(name, {})[r["job_id"]] = float(metrics[name])
            values.setdefault(group, {})
            counts.setdefault(group, {})[r["job_id"]] = metrics.get("n")
    if not groups:
        return None
    best = {g: {m: best_of(values[g].get(m, {}), m.endswith("loss")) for m in names} for g in groups}
    return {"groups": groups, "metrics": names, "values": values, "n": counts, "best": best}


def zero_shot_comparison(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """A fine-tune's test metrics beside those of its base model before training (zero-shot).

    Args:
        metrics: A fine-tune's metrics per split (``{"validation", "test", "test_zero_shot"}``).

    Returns:
        ``{"rows": [row], "groups": [{"group", "rows": [row]}]}`` where a row is ``{"metric",
        "zero_shot", "finetuned", "delta", "better"}`` (``delta`` = fine-tuned minus zero-shot, None
        where one is missing; ``better`` True when the fine-tuned value is better (lower for a
        loss, higher for the others), False when worse, None when equal or missing), over the metrics either
        side has; ``groups`` per value of the group column (empty without ``--group-by``). None
        when the metrics have no test or no zero-shot entry.
    """
    metrics = metrics or {}
    tuned, base = metrics.get("test"), metrics.get(ZERO_SHOT_SPLIT)
    if not isinstance(tuned, dict) or not isinstance(base, dict):
        return None

    def rows(after: dict[str, Any], before: dict[str, Any]) -> list[dict[str, Any]]:
        names = list(dict.fromkeys(numeric_names(before) + numeric_names(after)))
        out = []
        for name in names:
            b, a = before.get(name), after.get(name)
            delta = float(a) - float(b) if is_number(a) and is_number(b) else None
            out.append({"metric": name, "zero_shot": b if is_number(b) else None,
                        "finetuned": a if is_number(a) else None, "delta": delta,
                        "better": None if delta is None or delta == 0 else (delta < 0) == name.endswith("loss")})
        return out

    tuned_groups = tuned.get(GROUPS_KEY) if isinstance(tuned.get(GROUPS_KEY), dict) else {}
    base_groups = base.get(GROUPS_KEY) if isinstance(base.get(GROUPS_KEY), dict) else {}
    groups = [{"group": str(g), "n": (tuned_groups.get(g) or base_groups.get(g) or {}).get("n"),
               "rows": rows(tuned_groups.get(g) or {}, base_groups.get(g) or {})}
              for g in dict.fromkeys([*base_groups, *tuned_groups])]
    return {"rows": rows(tuned, base), "groups": groups, "n": tuned.get("n")}


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
