"""Read a user's data file (JSONL, JSON, CSV, TSV, Parquet, CoNLL) into a :class:`Table` of rows.

Readers keep the physical line where each record starts so that every later problem can name it.
They report every structural problem in a file at once (one :class:`~fmhub.errors.DataError`), and
never guess silently: a trimmed header or a JSON array given as JSONL is reported as a warning, and
the delimiter a CSV header showed (``,`` ``;`` ``|`` or a tab) is kept in ``Table.delimiter`` for the
report to name. Decoding is :mod:`fmhub.data.encodings`.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from fmhub.data.encodings import ENCODING_HINT
from fmhub.data.encodings import read_text as _read_text
from fmhub.data.json_records import nested_paths, read_json_array, read_json_not_array, read_jsonl
from fmhub.data.problems import Problem, raise_if_errors, shorten_value
from fmhub.data.table import JSON_SPACE, Table, physical_lines
from fmhub.errors import DataError

__all__ = ["DELIMITERS", "ENCODING_HINT", "EXTENSIONS", "FORMATS", "Table", "delimiter_name", "detect_format",
           "parse_delimiter", "read_table", "sniff_delimiter"]

FORMATS = ("jsonl", "json", "csv", "tsv", "parquet", "conll")
EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv",
              ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet",
              ".conll": "conll", ".conllu": "conll", ".iob": "conll", ".bio": "conll"}
FORMAT_HINT = "pass --format with one of: " + ", ".join(FORMATS)
DELIMITERS = {",": "comma", ";": "semicolon", "|": "pipe", "\t": "tab"}
"""Delimiters a CSV header is checked for (when no ``--delimiter`` is given) and their names."""
_CSV_FIELD_LIMIT = 2**31 - 1


def detect_format(path: Path, format: str | None = None) -> str:
    """Return the file's format: ``format`` when given, else from the extension.

    Args:
        path: The data file (only its name is used).
        format: An explicit format (case-insensitive; ``"ndjson"`` means ``"jsonl"``), or None.

    Returns:
        One of :data:`FORMATS`.

    Raises:
        DataError: ``format`` is unknown, or the extension is not one of :data:`EXTENSIONS`.
    """
    path = Path(path)
    if format is not None:
        name = format.strip().lower().lstrip(".")
        name = {"ndjson": "jsonl", "pq": "parquet", "tab": "tsv"}.get(name, name)
        if name not in FORMATS:
            raise DataError(f"unknown data format {format!r} for {path}", FORMAT_HINT)
        return name
    found = EXTENSIONS.get(path.suffix.lower())
    if found is None:
        what = f"extension {path.suffix!r}" if path.suffix else "no extension"
        raise DataError(
            f"cannot tell the format of {path}: {what} (known: {', '.join(EXTENSIONS)})",
            FORMAT_HINT,
        )
    return found


def read_table(path: str | Path, format: str | None = None, encoding: str = "utf-8",
               delimiter: str | None = None) -> Table:
    """Read a data file into a :class:`Table`, reporting all structural problems at once.

    Args:
        path: The file to read.
        format: Its format, or None to use the extension (see :func:`detect_format`).
        encoding: Text encoding for JSONL/JSON/CSV/TSV (ignored for Parquet). For UTF-8 a leading
            byte-order mark is removed.
        delimiter: The field separator of a CSV/TSV file (one character, or a name: ``comma``,
            ``semicolon``, ``pipe``, ``tab``); None: a tab for TSV, and for CSV the one of
            :data:`DELIMITERS` found most often in the header line outside quotes (a comma on a
            tie). Ignored for the other formats. ``Table.delimiter`` says which one was used.

    Returns:
        The table, with its warnings.

    Raises:
        DataError: The file is missing, unreadable, empty, not decodable with ``encoding`` (the
            message names the line and the byte, and suggests cp1252 for a Windows-1252 file), holds
            C1 control characters (U+0080-U+009F) decoded by a single-byte encoding such as latin-1
            (every place named, with cp1252 suggested), has duplicate header names, or has malformed
            records (ragged CSV rows, lines that are not JSON objects; all listed at once); or
            ``delimiter`` is not one character.
    """
    path = Path(path)
    fmt = detect_format(path, format)
    if not path.exists():
        raise DataError(f"data file not found: {path}", "check the path (relative to the current folder)")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a data file", "name a file inside it")
    if fmt == "parquet":
        return _read_parquet(path)
    sep = parse_delimiter(delimiter) if fmt in ("csv", "tsv") else None
    text, text_warnings = _read_text(path, encoding)
    if not text.strip(JSON_SPACE):
        raise DataError(f"data file is empty: {path}", "check that the file was written completely")
    table = _read_structured(path, fmt, text, sep)
    table.warnings[:0] = text_warnings
    return table


def _read_structured(path: Path, fmt: str, text: str, sep: str | None) -> Table:
    if fmt in ("csv", "tsv"):
        return _read_delimited(path, fmt, text, sep)
    if fmt == "conll":
        from fmhub.data.conll import COLUMNS, parse_conll

        rows, lines, separators = parse_conll(path, text)
        return Table(path, fmt, list(COLUMNS), rows, lines, skipped_blank_lines=separators)
    first = text.lstrip(JSON_SPACE)[0]
    if fmt == "jsonl" and first == "[":
        table = read_json_array(path, text)
        table.warnings.insert(0, Problem("file is a JSON array, not JSON Lines; read as an array", str(path),
                                         1, hint="name it .json, or write one object per line",
                                         severity="warning"))
        return table
    if fmt == "json" and first != "[":
        return read_json_not_array(path, text)
    return read_json_array(path, text) if fmt == "json" else read_jsonl(path, text)


# ------------------------------------------------------------------------------------ CSV / TSV
def parse_delimiter(value: str | None) -> str | None:
    """The one-character delimiter ``value`` names, or None for "detect it".

    Args:
        value: A character (``;``), an escape (``\\t``) or a name: ``comma``, ``semicolon``, ``pipe``,
            ``tab``, ``space`` (case-insensitive); None or ``auto`` for None.

    Raises:
        DataError: ``value`` is not one character (nor a name), or is a quote or a line break.
    """
    if value is None or value == "" or value.strip().lower() == "auto":
        return None
    names = {name: char for char, name in DELIMITERS.items()} | {"space": " ", "\\t": "\t"}
    char = value if len(value) == 1 else names.get(value.strip().lower(), value)
    if len(char) != 1 or char in "\"\r\n":
        raise DataError(f"invalid delimiter {value!r}: a delimiter is one character other than a quote or line break",
                        "pass --delimiter with one of: , ; | tab")
    return char


def delimiter_name(char: str) -> str:
    """How reports name a delimiter, e.g. ``"';' (semicolon)"``."""
    name = DELIMITERS.get(char) or {" ": "space"}.get(char)
    return f"{char!r} ({name})" if name else repr(char)


def sniff_delimiter(header: str) -> str:
    """The delimiter of a CSV header line: the one of :data:`DELIMITERS` found most often outside
    double quotes (a comma when none occurs, or on a tie with a comma; else the first in
    :data:`DELIMITERS` order)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(counts.values())
    return "," if best == 0 or counts[","] == best else next(c for c, n in counts.items() if n == best)


def _read_delimited(path: Path, fmt: str, text: str, sep: str | None = None) -> Table:
    if "\n" not in text and "\r" in text:  # old Mac line ends
        text = text.replace("\r", "\n")
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    lines = list(physical_lines(text))
    if sep is None:
        header_line = next((line for line in lines if line.strip()), "")
        sep = "\t" if fmt == "tsv" else sniff_delimiter(header_line)
    options: dict[str, Any] = {"delimiter": sep}
    if fmt == "tsv":
        options["quoting"] = csv.QUOTE_NONE
    reader = csv.reader(iter(lines), **options)
    file, problems, warnings = str(path), [], []
    header: list[str] | None = None
    rows: list[dict[str, Any]] = []
    starts: list[int] = []
    blank = before = last_start = 0
    try:
        for record in reader:
            start, before = before + 1, reader.line_num
            if _is_blank(record, header):
                blank += 1
                continue
            last_start = start
            if header is None:
                header = _header(record, file, start, warnings)
                continue
            if len(record) != len(header):
                problems.append(_ragged(record, header, fmt, file, start, before, sep))
                continue
            rows.append({name: (cell if cell != "" else None) for name, cell in zip(header, record)})
            starts.append(start)
    except csv.Error as exc:
        raise DataError(f"{path}:{before + 1}: malformed {fmt.upper()}: {exc}",
                        "check the quoting around this line") from None
    if header is None:
        raise DataError(f"data file is empty: {path}", "the first line must name the columns")
    if fmt == "csv" and not problems and before > last_start > 1 \
            and sum(line.count('"') for line in lines[last_start - 1 : before]) % 2:
        problems.append(Problem(f"quoted field opened on line {last_start} is never closed (the record runs "
                                "to the end of the file)", file, last_start,
                                hint="close the quote, and double every quote inside a quoted field"))
    raise_if_errors(problems, file)
    return Table(path, fmt, header, rows, starts, warnings, blank, delimiter=sep)


def _header(record: list[str], file: str, line: int, warnings: list[Problem]) -> list[str]:
    names: list[str] = []
    for position, raw in enumerate(record, 1):
        name = raw.strip() or f"column_{position}"
        if name != raw:
            message, hint = (f"column name {raw!r} has surrounding spaces; trimmed to {name!r}",
                             "remove the spaces from the header")
            if not raw.strip():
                message, hint = f"empty column name at position {position}; named {name!r}", "name all columns"
            warnings.append(Problem(message, file, line, name, shorten_value(raw), hint, "warning"))
        names.append(name)
    _check_unique(names, file, line)
    return names


def _check_unique(names: list[str], file: str, line: int | None) -> None:
    positions: dict[str, list[int]] = {}
    for position, name in enumerate(names, 1):
        positions.setdefault(name, []).append(position)
    dups = {name: where for name, where in positions.items() if len(where) > 1}
    if dups:
        where = "; ".join(f"{name!r} at positions " + " and ".join(map(str, at)) for name, at in dups.items())
        raise DataError(f"{file}{'' if line is None else f':{line}'}: duplicate column name {where}",
                        "rename the columns so that every name is unique",
                        [Problem("duplicate column name at positions " + ", ".join(map(str, at)),
                                 file, line, name).to_dict() for name, at in dups.items()])


def _is_blank(record: list[str], header: list[str] | None) -> bool:
    """An empty line, or (with several columns) a line of spaces only."""
    if not record:
        return True
    return len(record) == 1 and not record[0].strip() and (header is None or len(header) > 1)


def _ragged(record: list[str], header: list[str], fmt: str, file: str, start: int, end: int,
            sep: str = ",") -> Problem:
    hint = (f"every row needs {len(header)} fields; quote a field that contains a comma"
            if fmt == "csv" else f"every row needs {len(header)} tab-separated fields")
    if sep not in (",", "\t"):
        hint = f"every row needs {len(header)} fields separated by {delimiter_name(sep)}; quote a field that contains one"
    elif sep == "," and fmt == "tsv":
        hint = f"every row needs {len(header)} comma-separated fields"
    if end > start:
        hint = f"this record spans lines {start}-{end}: check for an unbalanced double quote"
    return Problem(f"row has {len(record)} field(s), the header has {len(header)}",
                   file, start, value=shorten_value(record), hint=hint)


# -------------------------------------------------------------------------------------- Parquet
def _read_parquet(path: Path) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        data = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cannot read Parquet file {path}: {exc}",
                        "check that it is a complete Parquet file") from None
    names = list(data.column_names)
    _check_unique(names, str(path), None)
    rows = data.to_pylist()
    return Table(path, "parquet", names, rows, list(range(1, len(rows) + 1)), [],
                 nested_columns=nested_paths(rows) if any(pa.types.is_struct(t) for t in data.schema.types) else [])
