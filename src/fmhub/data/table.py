"""The rows of one data file before any column mapping, and the line splitting every reader shares."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmhub.data.problems import Problem

#: Whitespace JSON allows between tokens.
JSON_SPACE = " \t\r\n"


@dataclass
class Table:
    """The rows of one data file, before any column mapping.

    Attributes:
        path: The file as the user named it.
        format: One of ``"jsonl"``, ``"json"``, ``"csv"``, ``"tsv"``, ``"parquet"``, ``"conll"``
            (one sentence per row: ``tokens`` and ``tags`` lists).
        columns: Column names: the header for CSV/TSV (trimmed), the schema for Parquet, the union
            of keys in first-seen order for JSON formats.
        rows: One dict per record. CSV/TSV values are ``str`` and an empty cell is ``None`` (the
            text ``"None"`` or ``"NA"`` stays text); JSON and Parquet values are native Python.
            A JSON record lacks the keys it does not have.
        lines: For each row, the 1-based physical line where it starts (CSV header = line 1).
            For Parquet, row index + 1.
        warnings: Warning-severity problems (e.g. a trimmed header name).
        skipped_blank_lines: Blank or whitespace-only lines skipped (JSONL, CSV, TSV).
        delimiter: The field separator a CSV/TSV file was read with (given, or detected from its
            header); None for the other formats.
        nested_columns: JSON formats: the dotted paths (``review.body``) of the values inside
            object-valued columns, first-seen order; a column mapping may name them.
    """

    path: Path
    format: str
    columns: list[str]
    rows: list[dict[str, Any]]
    lines: list[int]
    warnings: list[Problem] = field(default_factory=list)
    skipped_blank_lines: int = 0
    delimiter: str | None = None
    nested_columns: list[str] = field(default_factory=list)


def physical_lines(text: str) -> Iterator[str]:
    """Yield lines split only on ``\\n`` (each with its ``\\n``); U+2028 and friends stay inside."""
    start, end = 0, len(text)
    while start < end:
        stop = text.find("\n", start)
        if stop < 0:
            yield text[start:]
            return
        yield text[start : stop + 1]
        start = stop + 1
