"""Per-group metrics (``--group-by``) in the terminal: one row per group, and several results
(fine-tuned vs zero-shot, or several models) side by side."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

ZERO_SHOT = "test_zero_shot"
LABELS = {"test": "fine-tuned", ZERO_SHOT: "zero-shot"}
"""Column labels of a fine-tune's test metrics beside its base model's zero-shot metrics."""


def grouped(results: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{result name: {group: metrics}}`` of the results that have per-group metrics."""
    return {name: m["groups"] for name, m in results.items()
            if isinstance(m, dict) and isinstance(m.get("groups"), dict) and m["groups"]}


def scalar_names(groups: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """The numeric metrics of the groups (``n`` left out), in order of first appearance."""
    names: list[str] = []
    for per_group in groups.values():
        for metrics in per_group.values():
            for key, value in metrics.items():
                if key != "n" and isinstance(value, (int, float)) and not isinstance(value, bool) \
                        and key not in names:
                    names.append(key)
    return names


def print_group_comparison(console: Console, results: dict[str, Any]) -> None:
    """Per-group metrics as a table: for each group (and ``overall``) a row per result, next to each
    other (``fine-tuned`` and ``zero-shot`` for a fine-tune's ``test`` and ``test_zero_shot``; else
    the result's name, e.g. a model reference); a column per metric.

    Args:
        console: Where to print.
        results: ``{name: metrics}``; results without ``groups`` are left out (nothing is printed
            when none has them).
    """
    groups = grouped(results)
    if not groups:
        return
    names = list(groups)
    labels = {n: LABELS.get(n, n) if set(names) <= set(LABELS) else n for n in names}
    metrics = scalar_names(groups)
    several = len(names) > 1
    title = "Metrics per group" + (": " + " vs ".join(labels[n] for n in names) if several else "")
    table = Table(title=title, show_edge=False)
    table.add_column("group", overflow="fold")
    if several:
        table.add_column("model", overflow="fold")
    table.add_column("rows", justify="right")
    for metric in metrics:
        table.add_column(metric, justify="right")
    values = list(dict.fromkeys(g for per_group in groups.values() for g in per_group))

    def cell(m: dict[str, Any] | None, key: str) -> str:
        value = (m or {}).get(key)
        return f"{value:.4f}" if isinstance(value, float) else "-" if value is None else str(value)

    rows = [(value, {n: groups[n].get(value) for n in names}) for value in values]
    rows.append(("overall", {n: results[n] for n in names}))
    for i, (value, per_result) in enumerate(rows):
        for j, n in enumerate(names):
            m = per_result[n]
            first = [value if j == 0 else ""] + ([labels[n]] if several else [])
            table.add_row(*first, cell(m, "n"), *(cell(m, k) for k in metrics),
                          end_section=several and j == len(names) - 1 and i < len(rows) - 1)
    console.print(table)
