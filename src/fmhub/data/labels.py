"""Label and tag values as read from a file: Unicode normalisation, numbers written two ways,
non-finite numbers, and the row key that finds exact duplicates across splits.

Two labels that look the same must be the same class: a label is put in Unicode NFC form and
stripped of zero-width characters (U+200B-U+200D, U+2060, U+FEFF) and of surrounding white space.
Every change is reported (:func:`normalisation_warnings`), so nothing is merged in silence.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from fmhub.data.problems import Problem, shorten_value

ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
"""Zero-width space, non-joiner, joiner, word joiner and the byte-order mark / zero-width no-break
space: invisible characters removed from labels and tags."""

_DROP = {ord(c): None for c in ZERO_WIDTH}

LINES_SHOWN = 5
"""Lines listed in one warning or error message at most (the rest are counted)."""


def normalise_label(text: str) -> str:
    """A label or tag in its canonical text form.

    Args:
        text: The label as read (already a string).

    Returns:
        ``text`` in Unicode NFC form, without zero-width characters, stripped of white space.
        E.g. ``"cafe\\u0301"`` -> ``"café"``, ``"pos\\u200b"`` -> ``"pos"``.
    """
    return unicodedata.normalize("NFC", text).translate(_DROP).strip()


def number_of(text: str) -> float | None:
    """The number a label's text spells (``"01"`` -> 1.0, ``"Infinity"`` -> inf), or None.

    Python's ``float`` syntax: ``nan``, ``inf`` and ``infinity`` in any case and sign are numbers
    (non-finite ones); ``"1_000"`` is not taken as a number.
    """
    if "_" in text:
        return None
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def canonical_number(value: float) -> str:
    """The one text a finite number is named by: ``1.0`` -> ``"1"``, ``2.50`` -> ``"2.5"``."""
    if value.is_integer():
        return str(int(value))
    return repr(value)


def lines_text(lines: list[int]) -> str:
    """``"lines 3, 5 and 9"`` style text, the first :data:`LINES_SHOWN` then ``(and N more)``."""
    shown = ", ".join(str(n) for n in lines[:LINES_SHOWN])
    more = f" (and {len(lines) - LINES_SHOWN} more)" if len(lines) > LINES_SHOWN else ""
    return f"line{'s' if len(lines) > 1 else ''} {shown}{more}"


def describe_change(before: str, after: str) -> str:
    """What normalising ``before`` changed: ``"zero-width characters removed"``, ``"NFC form"``."""
    what = []
    if any(c in before for c in ZERO_WIDTH):
        what.append("zero-width characters removed")
    if unicodedata.normalize("NFC", before) != before:
        what.append("composed to NFC form")
    if not what:
        what.append("white space trimmed")
    return ", ".join(what)


def visible(text: str) -> str:
    """``repr``-like quoting that also spells combining marks and format characters as ``\\uXXXX``,
    so ``'cafe\\u0301'`` and ``'café'`` look different in a message (``repr`` shows both as café)."""
    def spell(char: str) -> str:
        if unicodedata.category(char) in ("Mn", "Me", "Cf") or not char.isprintable():
            return f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}"
        return char

    return "'" + "".join(spell(c) for c in text).replace("'", "\\'") + "'"


class ChangeLog:
    """Collects the labels that normalisation changed, per original value, with their lines."""

    def __init__(self) -> None:
        self.changes: dict[tuple[str, str], list[int]] = defaultdict(list)

    def normalise(self, text: str, line: int) -> str:
        """:func:`normalise_label` of ``text``, remembering ``line`` when it changed anything but
        white space at the ends."""
        after = normalise_label(text)
        if after != text.strip():
            self.changes[(text, after)].append(line)
        return after

    def warnings(self, file: str, column: str, noun: str = "label") -> list[Problem]:
        """One warning per changed value, naming its lines, the value before and after."""
        return normalisation_warnings(self.changes, file, column, noun)


def normalisation_warnings(changes: dict[tuple[str, str], list[int]], file: str, column: str,
                           noun: str = "label") -> list[Problem]:
    """Warnings for labels (or tags) that Unicode normalisation changed.

    Args:
        changes: ``(value before, value after) -> lines`` (1-based, in file order).
        file: The file the rows came from.
        column: The task key (``label``, ``tags``); callers rename it to the user's column.
        noun: How the message calls a value.

    Returns:
        One warning per distinct value before, its ``line`` the first line, its ``value`` the value
        before (repr), the message naming the value after and every line (the first five).
    """
    out = []
    for (before, after), lines in changes.items():
        out.append(Problem(
            f"{noun} {visible(before)} read as {visible(after)} ({describe_change(before, after)}) on "
            f"{lines_text(lines)}",
            file=file, line=lines[0], column=column, value=shorten_value(before), severity="warning",
            hint=f"labels that look the same are one class; write {after!r} in the file to silence this"))
    return out


def numbers_written_two_ways(labels: Iterable[tuple[str, int, str]], column: str = "label") -> list[Problem]:
    """Errors for labels equal as numbers but written differently (``1``, ``1.0``, ``01``).

    Args:
        labels: ``(file, line, label text)`` for every row, in file order (train first).
        column: The task key the labels sit in.

    Returns:
        One error per spelling and file of such a number: its file, first line, column and value,
        the message naming every spelling and the lines (the first five) of this one.
    """
    spellings: dict[float, dict[str, list[tuple[str, int]]]] = {}
    for file, line, label in labels:
        number = number_of(label)
        if number is not None and math.isfinite(number):
            spellings.setdefault(number, {}).setdefault(label, []).append((file, line))
    problems = []
    for number, names in spellings.items():
        if len(names) < 2:
            continue
        others = ", ".join(repr(n) for n in names)
        for name, places in names.items():
            by_file: dict[str, list[int]] = {}
            for file, line in places:
                by_file.setdefault(file, []).append(line)
            for file, lines in by_file.items():
                problems.append(Problem(
                    f"labels {others} are the number {canonical_number(number)} written differently: "
                    f"{name!r} on {lines_text(lines)}", file=file, line=lines[0], column=column,
                    value=shorten_value(name),
                    hint="say how to read them: --label-type number (one class) or --label-type string "
                         "(separate classes), or make the column consistent"))
    return problems


def _key_value(value: Any) -> Any:
    if isinstance(value, str):
        return normalise_label(value)
    if isinstance(value, list):
        return [_key_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _key_value(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def row_key(row: dict[str, Any]) -> str:
    """A key equal for rows that are exact duplicates after label normalisation.

    Every task key's value counts (texts, label, tags); strings are normalised with
    :func:`normalise_label`, so ``"good\\u200b"`` and ``"good"`` are the same row.
    """
    return json.dumps({k: _key_value(v) for k, v in sorted(row.items())}, ensure_ascii=False, default=str,
                      sort_keys=True)
