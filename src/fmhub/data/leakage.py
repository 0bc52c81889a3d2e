"""Leakage between splits: rows of validation or test that are exact duplicates of rows of an
earlier split (after label normalisation, :func:`fmhub.data.labels.row_key`)."""

from __future__ import annotations

import json
from typing import Any

from fmhub.data.labels import lines_text, row_key
from fmhub.data.problems import Problem, shorten_value

EXAMPLES_LISTED = 5
"""Duplicate rows listed per pair of splits in the report at most (all are counted)."""


def cross_split_duplicates(splits: dict[str, tuple[str, list[dict[str, Any]], list[int]]]
                           ) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Find rows that occur in two splits.

    Args:
        splits: Split name -> (file, rows, 1-based lines), in order train, validation, test.

    Returns:
        (one entry per pair of splits that share rows: ``{"splits": [earlier, later], "rows": N
        rows of the later split that occur in the earlier one, "distinct": N distinct rows,
        "examples": [{"value": row text, earlier: {"file", "lines"}, later: {"file", "lines"}}]}``
        with the first five rows, and one warning per such pair naming the later split's file, the
        first line and the row).
    """
    index: dict[str, dict[str, list[int]]] = {}
    for name, (_, rows, lines) in splits.items():
        keys: dict[str, list[int]] = {}
        for row, line in zip(rows, lines):
            keys.setdefault(row_key(row), []).append(line)
        index[name] = keys
    names = list(splits)
    found: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for i, earlier in enumerate(names):
        for later in names[i + 1:]:
            shared = [k for k in index[later] if k in index[earlier]]
            if not shared:
                continue
            rows = sum(len(index[later][k]) for k in shared)
            examples = [{"value": shorten_value(_row_text(k)),
                         earlier: {"file": splits[earlier][0], "lines": index[earlier][k][:EXAMPLES_LISTED]},
                         later: {"file": splits[later][0], "lines": index[later][k][:EXAMPLES_LISTED]}}
                        for k in shared[:EXAMPLES_LISTED]]
            found.append({"splits": [earlier, later], "rows": rows, "distinct": len(shared), "examples": examples})
            first = shared[0]
            later_lines = sorted(line for k in shared for line in index[later][k])
            problems.append(Problem(
                f"{rows} {later} row(s) also occur in the {earlier} data (exact duplicates) on "
                f"{lines_text(later_lines)}; e.g. {later} line {index[later][first][0]} = "
                f"{earlier} line {index[earlier][first][0]} of {splits[earlier][0]}",
                file=splits[later][0], line=index[later][first][0], value=shorten_value(_row_text(first)),
                severity="warning",
                hint=f"scores on {later} rows seen in training overstate the model; remove the duplicates "
                     f"from one of the files"))
    return found, problems


def _row_text(key: str) -> Any:
    return json.loads(key)
