"""Problems found in a data file, and how to report them all at once.

A :class:`Problem` names where something is wrong (file, line, column, value) and what to do about
it. Readers and validators collect problems instead of stopping at the first one; then
:func:`raise_if_errors` turns every error-severity problem into one :class:`~fmhub.errors.DataError`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from fmhub.errors import DataError

VALUE_LIMIT = 80
"""Longest ``Problem.value`` text, in characters."""

MAX_LISTED = 20
"""How many problems :func:`raise_if_errors` lists in the message; the rest are counted."""

GENERIC_HINT = "fix the listed rows (or the column mapping) and try again"


def shorten_value(value: Any, limit: int = VALUE_LIMIT) -> str:
    """Return ``repr(value)`` cut to at most ``limit`` characters.

    Args:
        value: Any value (a cell, a record, a label).
        limit: Maximum length of the result in characters (at least 4).

    Returns:
        The repr, with its end replaced by ``...`` when it is longer than ``limit``.
    """
    return _cut(repr(value), limit)


def _cut(text: str, limit: int = VALUE_LIMIT) -> str:
    return text if len(text) <= limit else text[: max(limit - 3, 1)] + "..."


@dataclass
class Problem:
    """One thing wrong (or suspicious) in a data file.

    Attributes:
        message: What is wrong, e.g. ``"empty text in column 'review'"``.
        file: The file as the user named it, or None.
        line: 1-based physical line where the record starts (a CSV header is line 1), or None.
        column: The user's column name, or None.
        value: The offending value as display text: ``repr`` of the value, at most 80 characters.
            A non-string value passed here is converted with :func:`shorten_value`; a string is
            taken as already formatted (use ``shorten_value(text)`` to show a string's repr) and
            only cut to 80 characters.
        hint: What to do about it.
        severity: ``"error"`` (blocks the job) or ``"warning"`` (shown, does not block).
    """

    message: str
    file: str | None = None
    line: int | None = None
    column: str | None = None
    value: str | None = None
    hint: str = ""
    severity: Literal["error", "warning"] = "error"

    def __post_init__(self) -> None:
        if self.value is not None:
            self.value = _cut(self.value) if isinstance(self.value, str) else shorten_value(self.value)
        if self.file is not None:
            self.file = str(self.file)

    def location(self) -> str:
        """Return where the problem is, e.g. ``"train.csv:12, column 'review'"``.

        Returns:
            ``FILE[:LINE]`` (or ``line N`` without a file), then ``, column 'NAME'`` when known;
            an empty string when nothing is known.
        """
        if self.file and self.line is not None:
            place = f"{self.file}:{self.line}"
        elif self.file:
            place = self.file
        elif self.line is not None:
            place = f"line {self.line}"
        else:
            place = ""
        if self.column is not None:
            place = f"{place}, column {self.column!r}" if place else f"column {self.column!r}"
        return place

    def to_dict(self) -> dict[str, Any]:
        """Return the problem as a plain JSON-ready dict (all fields)."""
        return asdict(self)

    def describe(self, with_hint: bool = True) -> str:
        """Return the problem as one line, optionally without its hint.

        Args:
            with_hint: Append ``" — hint"`` when the problem has a hint.
        """
        place = self.location()
        text = f"{place}: {self.message}" if place else self.message
        if self.value is not None:
            text += f" (value {self.value})"
        if with_hint and self.hint:
            text += f" — {self.hint}"
        return text.replace("\n", "\\n")

    def __str__(self) -> str:
        return self.describe()


def errors_of(problems: list[Problem]) -> list[Problem]:
    """Return the error-severity problems, in order."""
    return [p for p in problems if p.severity == "error"]


def warnings_of(problems: list[Problem]) -> list[Problem]:
    """Return the warning-severity problems, in order."""
    return [p for p in problems if p.severity == "warning"]


def raise_if_errors(problems: list[Problem], what: str) -> None:
    """Raise one :class:`DataError` listing every error-severity problem; do nothing if none.

    Warnings are ignored here (callers show them separately).

    Args:
        problems: Problems collected so far, errors and warnings mixed.
        what: What was checked, e.g. ``"train.csv"``; used as ``"3 problem(s) in train.csv:"``.

    Raises:
        DataError: When at least one problem has severity ``"error"``. The message has one line per
            problem (the first 20, then ``"... and N more"``); ``hint`` is the first problem's hint
            (or a generic one); ``details`` is ``[p.to_dict() for each error]``.
    """
    errors = errors_of(problems)
    if not errors:
        return
    hint = next((p.hint for p in errors if p.hint), "") or GENERIC_HINT
    lines = [p.describe(with_hint=p.hint != hint) for p in errors[:MAX_LISTED]]
    if len(errors) > MAX_LISTED:
        lines.append(f"... and {len(errors) - MAX_LISTED} more")
    message = f"{len(errors)} problem(s) in {what}:\n" + "\n".join(lines)
    raise DataError(message, hint, [p.to_dict() for p in errors])
