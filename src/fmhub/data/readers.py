"""Read a user's data file (JSONL, JSON, CSV, TSV, Parquet, CoNLL) into a :class:`Table` of rows.

Readers keep the physical line where each record starts so that every later problem can name it.
They report every structural problem in a file at once (one :class:`~fmhub.errors.DataError`), and
never guess silently: a trimmed header or a JSON array given as JSONL is reported as a warning.
"""

from __future__ import annotations

import codecs
import csv
from pathlib import Path
from typing import Any

from fmhub.data.json_records import read_json_array, read_json_not_array, read_jsonl
from fmhub.data.problems import Problem, raise_if_errors, shorten_value
from fmhub.data.table import JSON_SPACE, Table, physical_lines
from fmhub.errors import DataError

__all__ = ["ENCODING_HINT", "EXTENSIONS", "FORMATS", "Table", "detect_format", "read_table"]

FORMATS = ("jsonl", "json", "csv", "tsv", "parquet", "conll")
EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv",
              ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet",
              ".conll": "conll", ".conllu": "conll", ".iob": "conll", ".bio": "conll"}
FORMAT_HINT = "pass --format with one of: " + ", ".join(FORMATS)
ENCODING_HINT = "pass --encoding with the file's encoding (e.g. --encoding latin-1), or save it as UTF-8"
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


def read_table(path: str | Path, format: str | None = None, encoding: str = "utf-8") -> Table:
    """Read a data file into a :class:`Table`, reporting all structural problems at once.

    Args:
        path: The file to read.
        format: Its format, or None to use the extension (see :func:`detect_format`).
        encoding: Text encoding for JSONL/JSON/CSV/TSV (ignored for Parquet). For UTF-8 a leading
            byte-order mark is removed.

    Returns:
        The table, with its warnings.

    Raises:
        DataError: The file is missing, unreadable, empty, not decodable with ``encoding`` (the
            message names the line and the byte), has duplicate header names, or has malformed
            records (ragged CSV rows, lines that are not JSON objects; all listed at once).
    """
    path = Path(path)
    fmt = detect_format(path, format)
    if not path.exists():
        raise DataError(f"data file not found: {path}", "check the path (relative to the current folder)")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a data file", "name a file inside it")
    if fmt == "parquet":
        return _read_parquet(path)
    text = _read_text(path, encoding)
    if not text.strip(JSON_SPACE):
        raise DataError(f"data file is empty: {path}", "check that the file was written completely")
    if fmt in ("csv", "tsv"):
        return _read_delimited(path, fmt, text)
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


# ----------------------------------------------------------------------------------------- text
def _read_text(path: Path, encoding: str) -> str:
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r} for {path}",
                        "use a codec name such as utf-8, latin-1, cp1252, utf-16") from None
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}", "check its permissions") from None
    codec = "utf-8" if codec == "utf-8-sig" else codec
    start = 3 if codec == "utf-8" and raw.startswith(codecs.BOM_UTF8) else 0
    try:
        text = raw[start:].decode(codec)
    except UnicodeDecodeError as exc:
        raise _decode_error(path, raw, start + exc.start, codec) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise DataError(f"{path}:{line}: NUL character in a text file (is it UTF-16 or binary?)",
                        "pass --encoding utf-16 if the file is UTF-16, or export it again as UTF-8 text")
    return text


def _decode_error(path: Path, raw: bytes, offset: int, codec: str) -> DataError:
    line = raw.count(b"\n", 0, offset) + 1
    line_start = raw.rfind(b"\n", 0, offset) + 1
    byte = f"0x{raw[offset]:02x}"
    message = (f"{path}:{line}: cannot decode byte {byte} as {codec} "
               f"(byte {offset - line_start + 1} of the line, offset {offset} in the file)")
    hint = ENCODING_HINT
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        hint = "the file starts with a UTF-16 byte-order mark: pass --encoding utf-16"
    problem = Problem(f"cannot decode byte {byte} as {codec}", str(path), line, value=byte, hint=hint)
    details = problem.to_dict() | {"byte_offset": offset, "byte_in_line": offset - line_start + 1}
    return DataError(message, hint, [details])


# ------------------------------------------------------------------------------------ CSV / TSV
def _read_delimited(path: Path, fmt: str, text: str) -> Table:
    if "\n" not in text and "\r" in text:  # old Mac line ends
        text = text.replace("\r", "\n")
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    lines = list(physical_lines(text))
    options = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if fmt == "tsv" else {}
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
                problems.append(_ragged(record, header, fmt, file, start, before))
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
    return Table(path, fmt, header, rows, starts, warnings, blank)


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


def _ragged(record: list[str], header: list[str], fmt: str, file: str, start: int, end: int) -> Problem:
    hint = (f"every row needs {len(header)} fields; quote a field that contains a comma"
            if fmt == "csv" else f"every row needs {len(header)} tab-separated fields")
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
    return Table(path, "parquet", names, rows, list(range(1, len(rows) + 1)), [])
