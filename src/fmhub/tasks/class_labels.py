"""Class labels of text classification as read from a file: their names, their order, and the
user's reading options (``--label-type number|int``, ``--label-names``)."""

from __future__ import annotations

import math
from typing import Any

from fmhub.data.labels import ChangeLog, canonical_number, normalise_label, number_of
from fmhub.data.problems import Problem, shorten_value
from fmhub.tasks.base import Examples


def is_missing(value: Any) -> bool:
    """True for an absent label: None or a float NaN (a blank cell)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def label_name(value: Any) -> str:
    """The name of a label value as read from a file.

    Strings are kept as they are (after trimming); integers become their decimal text; floats keep
    their text form (``1.0`` stays ``"1.0"``: a different name from ``"1"`` unless the user maps it).
    Booleans become ``"true"``/``"false"``.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value.strip()
    return str(value)


def label_sort_key(name: str) -> tuple[int, float, str]:
    """Numeric names in numeric order first, then the rest alphabetically."""
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


def non_finite_problem(value: Any, file: str, line: int) -> Problem:
    """The error for a label that is NaN or infinite, naming file, line, column and value."""
    return Problem(f"label {shorten_value(value)} is not a finite number", file=file, line=line, column="label",
                   value=shorten_value(value),
                   hint="a class is a name or a finite number; fix the label (or --on-invalid-row drop)")


def labels_as_numbers(examples: Examples, label_type: str | None) -> list[Problem]:
    """Read labels as numbers when the user says so (``--label-type``); rows are changed in place.

    ``label_type="number"``: labels equal as numbers are one class, named by the number's shortest
    text (``1``, ``1.0``, ``01`` and ``"1"`` -> ``"1"``; ``2.50`` -> ``"2.5"``). ``label_type="int"``:
    the same, and a label that is not a whole number is an error. A label that is not a finite number
    is an error naming its line in both. Other values (``string``, None) leave the labels as written.

    Returns:
        The errors (file, line, column, value) and the normalisation warnings.
    """
    if label_type not in ("int", "number"):
        return []
    what = "a whole number" if label_type == "int" else "a finite number"
    hint = (f"--label-type {label_type} needs {'integer' if label_type == 'int' else 'numeric'} labels; "
            "use --label-type string to keep labels as text")
    problems = []
    changes = ChangeLog()
    for row, line in zip(examples.rows, examples.lines):
        label = row.get("label")
        if is_missing(label) or isinstance(label, (list, dict)) or (isinstance(label, str) and not label.strip()):
            continue  # the row checks report these
        text = None if isinstance(label, bool) else normalise_label(label_name(label))
        number = None if text is None else number_of(text)
        if number is None or not math.isfinite(number) or (label_type == "int" and not number.is_integer()):
            problems.append(Problem(f"label {shorten_value(label)} is not {what}", file=examples.file,
                                    line=line, column="label", value=shorten_value(label), hint=hint))
            continue
        changes.normalise(label_name(label), line)  # zero-width characters, NFC: said, not silent
        row["label"] = canonical_number(number)
    return problems + changes.warnings(examples.file, "label")


def name_integer_labels(examples: Examples, label_names: list[str] | str) -> list[Problem]:
    """``--label-names``: an integer label ``i`` (``1``, ``1.0`` or ``"1"``) becomes
    ``label_names[i]``, as ``--tag-names`` does for tags. A label already written as one of the
    names is kept; any other label, and an id without a name, is an error naming its line.

    Args:
        examples: The rows of one split (changed in place).
        label_names: The names in id order, or a comma list / a file with one name per line.

    Returns:
        One error per label that names no class.

    Raises:
        DataError: the names file is missing or empty; names repeat or are empty.
    """
    from fmhub.errors import DataError
    from fmhub.tasks.token_classification import resolve_tag_names

    names = resolve_tag_names(label_names, what="label", example="negative,positive")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated or not all(names):
        what = f"repeat {repeated}" if repeated else "include an empty name"
        raise DataError(f"--label-names {what}: {', '.join(names)}",
                        hint="give each class id 0..n-1 one distinct name, in id order")
    known = set(names)
    problems = []
    for row, line in zip(examples.rows, examples.lines):
        label = row.get("label")
        if is_missing(label) or isinstance(label, (list, dict, bool)) or (isinstance(label, str) and not label.strip()):
            continue  # the row checks report these
        text = label.strip() if isinstance(label, str) else str(label)
        if text in known:
            row["label"] = text
            continue
        try:
            number = float(text)
            whole = number.is_integer() and 0 <= number < len(names)
        except ValueError:
            whole = False
        if not whole:
            problems.append(Problem(f"label {shorten_value(label)} is not a class id 0-{len(names) - 1} "
                                    f"(--label-names gives {len(names)} names)", file=examples.file, line=line,
                                    column="label", value=shorten_value(label),
                                    hint="give every class id a name in id order, or write the names in the file"))
            continue
        row["label"] = names[int(number)]
    return problems
