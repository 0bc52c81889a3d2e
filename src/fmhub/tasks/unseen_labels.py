"""Labels (or tags) of the validation and test splits that the label space does not know."""

from __future__ import annotations

from typing import Any

from fmhub.data.problems import Problem, shorten_value
from fmhub.tasks.base import Examples, LabelInfo


def _numeric_twin(label: str, known: set[str]) -> bool:
    """True when ``label`` equals one of ``known`` as a number (``1.0`` and ``1``)."""
    try:
        value = float(label)
    except (TypeError, ValueError):
        return False
    for other in known:
        try:
            if float(other) == value:
                return True
        except ValueError:
            continue
    return False


KNOWN_LABELS_SHOWN = 20
"""Known labels listed in an unseen-label hint at most (the rest are counted)."""


def unseen_labels(splits: dict[str, Examples], info: LabelInfo, labels_of: Any, column: str,
                  noun: str = "label") -> list[Problem]:
    """One error per label that occurs in validation/test but not in ``info.labels``.

    Args:
        splits: The splits by name.
        info: The label space (``extra["label_source"]`` names where it came from, default the
            training data).
        labels_of: Row -> the labels it holds (one for classification, one per word for tags).
        column: The task key the labels sit in (``label``, ``tags``).
        noun: How messages call a label (``label``, ``tag``).

    Returns:
        Problems naming the split's file, the first line with each unknown label, and the label.
    """
    known = set(info.labels)
    source = info.extra.get("label_source", "the training data")
    problems: list[Problem] = []
    for split in ("validation", "test"):
        ex = splits.get(split)
        if ex is None:
            continue
        reported: set[str] = set()
        for row, line in zip(ex.rows, ex.lines):
            for lab in labels_of(row):
                if lab not in known and lab not in reported:
                    reported.add(lab)
                    shown = ", ".join(info.labels[:KNOWN_LABELS_SHOWN]) + (
                        f" (and {len(info.labels) - KNOWN_LABELS_SHOWN} more)"
                        if len(info.labels) > KNOWN_LABELS_SHOWN else "")
                    hint = f"known {noun}s: {shown}; fix the {noun} " + (
                        "or add training rows for it" if source == "the training data" else "or use another model")
                    if _numeric_twin(lab, known):
                        hint += f" (it equals a known {noun} as a number: pass --label-type number)"
                    problems.append(Problem(f"{noun} {lab!r} in the {split} data does not occur in {source}",
                                            file=ex.file, line=line, column=column, value=shorten_value(lab),
                                            hint=hint))
    return problems
