"""JSON Lines and JSON-array readers: every record keeps the line it starts on, U+2028/U+2029 stay
inside strings, and every malformed record is reported at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fmhub.data.problems import Problem, raise_if_errors, shorten_value
from fmhub.data.table import JSON_SPACE, Table, physical_lines
from fmhub.errors import DataError

def read_jsonl(path: Path, text: str) -> Table:
    file, problems, blank = str(path), [], 0
    rows: list[dict[str, Any]] = []
    starts: list[int] = []
    for number, line in enumerate(physical_lines(text), 1):
        body = line.strip(JSON_SPACE)
        if not body:
            blank += 1
            continue
        try:
            value = json.loads(body)
        except json.JSONDecodeError as exc:
            problems.append(Problem(f"not valid JSON: {exc.msg} (column {exc.colno})", file, number,
                                    value=shorten_value(body),
                                    hint="each line must be one complete JSON object"))
            continue
        if not isinstance(value, dict):
            problems.append(_not_object(value, file, number))
            continue
        rows.append(value)
        starts.append(number)
    raise_if_errors(problems, file)
    return Table(path, "jsonl", _union_keys(rows), rows, starts, [], blank, nested_columns=nested_paths(rows))


def read_json_array(path: Path, text: str) -> Table:
    file, problems, decoder = str(path), [], json.JSONDecoder()
    rows: list[dict[str, Any]] = []
    starts: list[int] = []
    line_at, counted = 1, 0

    def line_of(index: int) -> int:
        nonlocal line_at, counted
        line_at += text.count("\n", counted, index)
        counted = index
        return line_at

    pos = _skip(text, _skip(text, 0) + 1)  # past "["
    while pos < len(text) and text[pos] != "]":
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            problems.append(Problem(f"not valid JSON: {exc.msg} (column {exc.colno})", file, exc.lineno,
                                    hint="the file must be one JSON array of objects"))
            break
        line = line_of(pos)
        if isinstance(value, dict):
            rows.append(value)
            starts.append(line)
        else:
            problems.append(_not_object(value, file, line))
        pos = _skip(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip(text, pos + 1)
        elif pos < len(text) and text[pos] != "]":
            problems.append(Problem(f"expected ',' or ']' after an array element, found {text[pos]!r}",
                                    file, line_of(pos), hint="the file must be one JSON array of objects"))
            break
    else:
        if pos >= len(text):
            problems.append(Problem("the JSON array is never closed with ']'", file, line_of(len(text)),
                                    hint="check that the file was written completely"))
        elif _skip(text, pos + 1) < len(text):
            problems.append(Problem("unexpected text after the JSON array", file,
                                    line_of(_skip(text, pos + 1)), hint="the file must hold one array only"))
    raise_if_errors(problems, file)
    return Table(path, "json", _union_keys(rows), rows, starts, [], nested_columns=nested_paths(rows))


def read_json_not_array(path: Path, text: str) -> Table:
    """A ``.json`` file that does not start with ``[``: JSON Lines under another name, or an error."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":  # "Extra data": a second value follows the first one
            raise DataError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg} (column {exc.colno})",
                            "the file must be a JSON array of objects, or JSON Lines") from None
        value = None
    if value is None or (isinstance(value, dict) and "\n" not in text.strip(JSON_SPACE)):
        table = read_jsonl(path, text)
        table.warnings.insert(0, Problem("file holds JSON Lines, not a JSON array; read as JSON Lines",
                                         str(path), 1, hint="name it .jsonl", severity="warning"))
        return table
    hint = "the file must be a JSON array of objects, or JSON Lines (one object per line)"
    lists = [k for k, v in value.items() if isinstance(v, list) and v and isinstance(v[0], dict)] \
        if isinstance(value, dict) else []
    if lists:
        hint = f"the records seem to be under key {lists[0]!r}: save that list alone as the file"
    raise DataError(f"{path}: the top-level JSON value is {_json_type(value)}, not an array of objects", hint)


MAX_NESTED_DEPTH = 4
"""How deep :func:`nested_paths` looks into objects (``a.b.c.d``)."""

MAX_NESTED_PATHS = 1000
"""Most paths :func:`nested_paths` lists (objects keyed by ids would otherwise list every id)."""


def nested_paths(rows: list[dict[str, Any]], depth: int = MAX_NESTED_DEPTH) -> list[str]:
    """The dotted paths of the values inside object-valued fields, in first-seen order.

    ``{"review": {"body": "...", "meta": {"stars": 5}}}`` gives ``["review.body", "review.meta",
    "review.meta.stars"]``: every key of a nested object, at most ``depth`` levels deep. Lists are
    not entered, and a top-level key is not listed (it is a column).

    Args:
        rows: The records.
        depth: Most dots in a path + 1.

    Returns:
        The paths a column mapping may name (see :func:`get_path`), at most :data:`MAX_NESTED_PATHS`.
    """
    seen: dict[str, None] = {}

    def walk(value: dict[str, Any], prefix: str, level: int) -> None:
        for key, child in value.items():
            path = f"{prefix}.{key}"
            if path not in seen and len(seen) >= MAX_NESTED_PATHS:
                return
            seen.setdefault(path, None)
            if isinstance(child, dict) and level < depth:
                walk(child, path, level + 1)

    for row in rows:
        for key, value in row.items():
            if isinstance(value, dict):
                walk(value, str(key), 2)
    return list(seen)


def get_path(record: dict[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of a record (``review.body``), or None when a step is missing.

    A key that itself contains dots is found too: at each level the longest key that matches
    the next parts wins.

    Args:
        record: One JSON record.
        path: A column name or a dotted path such as ``review.meta.stars``.

    Returns:
        The value (any JSON type), or None when the path leads nowhere (a missing key, or a step
        into something that is not an object).
    """
    if path in record:
        return record[path]
    value: Any = record
    parts = path.split(".")
    while parts:
        if not isinstance(value, dict):
            return None
        for cut in range(len(parts), 0, -1):
            key = ".".join(parts[:cut])
            if key in value:
                value, parts = value[key], parts[cut:]
                break
        else:
            return None
    return value


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in JSON_SPACE:
        pos += 1
    return pos


def _not_object(value: Any, file: str, line: int) -> Problem:
    return Problem(f"record is {_json_type(value)}, not an object", file, line, value=shorten_value(value),
                   hint='each record must be an object such as {"text": ..., "label": ...}')


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _union_keys(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            if key not in seen:
                seen[key] = None
    return list(seen)
