"""Column mapping: which user column feeds which task key.

The user may say it (``--map sentence1=review``); otherwise a key is matched to a column named like
the key or one of its aliases (case-insensitively, after trimming). In JSON files a field inside an
object is named by its dotted path (``--map sentence1=review.body``). Every problem with a mapping
is reported at once, before any job starts, and every ``--map`` a hint suggests is one that resolves.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fmhub.data.json_records import get_path
from fmhub.data.problems import Problem
from fmhub.data.readers import Table
from fmhub.data.schema import TaskSchema
from fmhub.errors import DataError


@dataclass
class ColumnMapping:
    """Task key -> user column, and which keys were matched automatically.

    Attributes:
        columns: Task key -> user column name, in the schema's key order. A nested key such as
            ``"answers.text"`` fills ``example["answers"]["text"]``.
        auto: The keys that were matched automatically (shown to the user to confirm).
    """

    columns: dict[str, str]
    auto: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        """Return one line per key, e.g. ``["sentence1 <- review (auto)", "label <- stars"]``."""
        return [f"{key} <- {col}" + (" (auto)" if key in self.auto else "") for key, col in self.columns.items()]


def parse_map_options(items: list[str]) -> dict[str, str]:
    """Parse ``--map`` options of the form ``KEY=COLUMN``.

    Args:
        items: E.g. ``["sentence1=review", "label=stars"]``. Spaces around KEY and COLUMN are
            removed; COLUMN may itself contain ``=`` (the first ``=`` splits).

    Returns:
        Key -> column, in the given order.

    Raises:
        DataError: An item has no ``=``, an empty key or column, or a key is given twice with
            different columns; all such items are listed at once.
    """
    result: dict[str, str] = {}
    bad: list[str] = []
    for item in items:
        key, sep, column = item.partition("=")
        key, column = key.strip(), column.strip()
        if not sep or not key or not column:
            bad.append(f"{item!r} is not KEY=COLUMN")
        elif key in result and result[key] != column:
            bad.append(f"key {key!r} is mapped twice ({result[key]!r} and {column!r})")
        else:
            result[key] = column
    if bad:
        raise DataError("malformed --map option(s): " + "; ".join(bad),
                        "write each as KEY=COLUMN, e.g. --map sentence1=review, one per key",
                        [{"message": b} for b in bad])
    return result


def resolve_mapping(columns: list[str], schema: TaskSchema, user_map: dict[str, str],
                    file: str | None = None, nested: Sequence[str] = ()) -> ColumnMapping:
    """Decide which column feeds each task key.

    Keys in ``user_map`` are taken as given. Every other key is matched to a column whose name
    (trimmed, case-insensitive) equals the key, or else one of its aliases; an exact-case match wins
    over a case-insensitive one. Matching by key name is done for all keys before matching by
    alias. A column already used (by the user or an earlier key) is not matched again; the user may
    map one column to two keys explicitly. A required key ``K`` is also satisfied by mapped nested
    keys ``K.x`` (e.g. ``answers`` by ``answers.text``), and a key is not matched automatically when
    its parent or one of its children is mapped.

    A column holding objects (one with ``nested`` paths below it) is matched automatically only to
    a key with nested keys (``answers``); a key still unmatched after that is matched to the nested
    path whose last part is named like the key or an alias (``review.stars`` for ``label``) when
    exactly one is. Hints suggest only columns and paths that the mapping would accept, never an
    object column for a plain key nor the same column for two keys.

    Args:
        columns: The file's column names (``Table.columns``).
        schema: The task's keys and aliases.
        user_map: Key -> column given by the user (see :func:`parse_map_options`); the column may
            be one of ``nested``.
        file: The file's name, used in messages.
        nested: Dotted paths inside object-valued columns (``Table.nested_columns``).

    Returns:
        The mapping, keys in schema order, and the keys matched automatically.

    Raises:
        DataError: A user key is not a schema key (the message lists valid keys); a user column is
            not in the file (the message lists the columns and suggests a close name); required
            keys have no column, or a key matches several columns equally well. All problems are
            reported at once; ``details`` holds one :class:`Problem` dict each.
    """
    where = file or "the data"
    problems: list[Problem] = []
    mapping: dict[str, str] = {}
    paths = [p for p in nested if p not in columns]
    objects = object_columns(nested)
    for key, column in user_map.items():
        if key not in schema.keys:
            problems.append(Problem(f"unknown key {key!r} in --map; valid keys are {list(schema.keys)}", file,
                                    hint=f"use one of: {', '.join(schema.keys)}"))
        elif column.strip() in objects and not any(k.startswith(key + ".") for k in schema.keys):
            problems.append(_missing_column(key, column, columns, file, where, paths, objects,
                                            (key, *schema.aliases.get(key, ()))))
        elif column in columns or column.strip() in columns:
            mapping[key] = column if column in columns else column.strip()
        elif column.strip() in paths:
            mapping[key] = column.strip()
        else:
            problems.append(_missing_column(key, column, columns, file, where, paths, objects))
    if problems:
        _raise(problems, where)

    auto: list[str] = []
    ambiguous: set[str] = set()
    used = set(mapping.values())
    for stage in ("name", "alias", "nested"):
        for key in schema.keys:
            if key in mapping or key in ambiguous or _family_mapped(key, mapping):
                continue
            names = [key] if stage == "name" else list(schema.aliases.get(key, ()))
            if stage == "nested":
                found = _match_leaf([key, *names], [p for p in paths if p not in used and p not in objects
                                                    and not _under(p, used)])
            else:
                has_children = any(k.startswith(key + ".") for k in schema.keys)
                found = _match(names, [c for c in columns if c not in used and (has_children or c not in objects)])
            if isinstance(found, list):
                ambiguous.add(key)
                problems.append(Problem(f"columns {found} all match key {key!r}", file,
                                        hint=f"choose one with --map {key}={found[0]}"))
            elif found is not None:
                mapping[key], used = found, used | {found}
                auto.append(key)

    missing = [k for k in schema.required
               if k not in mapping and k not in ambiguous and not _children(k, mapping)]
    if missing:
        keys = ", ".join(repr(k) for k in missing)
        free = [c for c in [*columns, *paths] if c not in used and c not in objects and not _under(c, used)]
        suggested: list[str] = []
        for k in missing:
            suggested.append(_suggest(k, schema, [c for c in free if c not in suggested]) or "")
        left = [c for c in free if c not in suggested]
        if suggested.count("") == 1 and len(left) == 1:  # the one key left and the one column left
            suggested[suggested.index("")] = left[0]
        hint = " ".join(f"--map {k}={c or 'COLUMN'}" for k, c in zip(missing, suggested))
        hint = _delimiter_hint(columns) or hint
        shown = columns + [p for p in paths if p not in objects][:20]
        problems.insert(0, Problem(f"no column for required key{'s' if len(missing) > 1 else ''} {keys} in "
                                   f"{where}; columns are {shown}", file, hint=hint))
    if problems:
        _raise(problems, where)
    ordered = {k: mapping[k] for k in schema.keys if k in mapping}
    return ColumnMapping(ordered, [k for k in schema.keys if k in auto])


def apply_mapping(table: Table, mapping: ColumnMapping) -> list[dict[str, Any]]:
    """Rename each row's columns to task keys, keeping only mapped keys.

    A column missing from a row (JSON records may lack keys) gives ``None``. A nested key such as
    ``"answers.text"`` sets ``example["answers"]["text"]``; a mapped column that is not one of the
    table's columns is a dotted path read from inside the row (``review.body``). Values are not
    converted.

    Args:
        table: The file's rows.
        mapping: The mapping from :func:`resolve_mapping`.

    Returns:
        One example dict per row, in the table's order (``table.lines`` gives each one's line).
    """
    examples: list[dict[str, Any]] = []
    nested = {c for c in mapping.columns.values() if c not in table.columns}
    for row in table.rows:
        example: dict[str, Any] = {}
        for key, column in mapping.columns.items():
            *parents, leaf = key.split(".")
            target = example
            for part in parents:
                child = target.get(part)
                if not isinstance(child, dict):
                    child = target[part] = {}
                target = child
            target[leaf] = get_path(row, column) if column in nested else row.get(column)
        examples.append(example)
    return examples


def _fold(name: str) -> str:
    return name.strip().casefold()


def _match(names: list[str], columns: list[str]) -> str | list[str] | None:
    """The column matching the first name that matches any; a list when the match is ambiguous."""
    for name in names:
        exact = [c for c in columns if c.strip() == name.strip()]
        folded = exact or [c for c in columns if _fold(c) == _fold(name)]
        if len(folded) == 1:
            return folded[0]
        if folded:
            return folded
    return None


def object_columns(nested: Sequence[str]) -> set[str]:
    """The columns and paths that hold objects: every proper prefix of a nested path."""
    found: set[str] = set()
    for path in nested:
        parts = path.split(".")
        found.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return found


def _under(path: str, used: set[str]) -> bool:
    """True when ``path`` is inside a used column (``review.body`` under ``review``) or holds one."""
    return any(path.startswith(u + ".") or u.startswith(path + ".") for u in used)


def _leaf(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _match_leaf(names: list[str], paths: list[str]) -> str | list[str] | None:
    """The nested path whose last part matches the first name that matches any (a list if several do)."""
    for name in names:
        found = [p for p in paths if _fold(_leaf(p)) == _fold(name)]
        if len(found) == 1:
            return found[0]
        if found:
            return found
    return None


def _children(key: str, mapping: dict[str, str]) -> list[str]:
    return [k for k in mapping if k.startswith(key + ".")]


def _family_mapped(key: str, mapping: dict[str, str]) -> bool:
    """True when a parent (``answers`` for ``answers.text``) or a child of ``key`` is mapped."""
    parts = key.split(".")
    parents = {".".join(parts[:i]) for i in range(1, len(parts))}
    return bool(parents & mapping.keys()) or bool(_children(key, mapping))


def _missing_column(key: str, column: str, columns: list[str], file: str | None, where: str,
                    paths: Sequence[str] = (), objects: set[str] | frozenset[str] = frozenset(),
                    names: Sequence[str] = ()) -> Problem:
    candidates = [c for c in [*columns, *paths] if c not in objects]
    close = _close(column, candidates)
    inside = [p for p in paths if p.startswith(column.strip() + ".") and p not in objects]
    shown = [c for c in candidates if c not in paths] + [p for p in paths if p not in objects][:20]
    message = f"column {column!r} (for key {key!r}) is not in {where}; columns are {shown}"
    if column.strip() in objects and inside:
        close = next(filter(None, (_close(name, inside) for name in names or (key,))), None)
        message = (f"column {column!r} (for key {key!r}) holds objects, not values; name a field inside it "
                   f"({', '.join(inside[:10])})")
        hint = (f"did you mean --map {key}={close}?" if close
                else f"name a field inside it, e.g. --map {key}={inside[0]}")
        return Problem(message, file, column=column, hint=hint)
    hint = f"did you mean --map {key}={close}?" if close else f"use one of the columns: {', '.join(shown)}"
    return Problem(message, file, column=column, hint=hint)


def _close(name: str, columns: list[str]) -> str | None:
    """The column most like ``name`` (case-insensitive; a dotted path also by its last part), or None."""
    folded = {_fold(c): c for c in reversed(columns)}
    found = difflib.get_close_matches(_fold(name), list(folded), n=1, cutoff=0.6)
    if found:
        return folded[found[0]]
    leaves: dict[str, str] = {}
    for c in reversed(columns):
        if "." in c:
            leaves[_fold(_leaf(c))] = c
    found = difflib.get_close_matches(_fold(name), list(leaves), n=1, cutoff=0.6)
    return leaves[found[0]] if found else None


def _suggest(key: str, schema: TaskSchema, columns: list[str]) -> str | None:
    for name in (key, *schema.aliases.get(key, ())):
        close = _close(name, columns)
        if close:
            return close
    return None


def _raise(problems: list[Problem], where: str) -> None:
    if len(problems) == 1:
        raise DataError(problems[0].message, problems[0].hint, [problems[0].to_dict()])
    lines = "\n".join(f"{p.message} — {p.hint}" if p.hint else p.message for p in problems)
    raise DataError(f"{len(problems)} column mapping problems for {where}:\n{lines}", problems[0].hint,
                    [p.to_dict() for p in problems])


_OTHER_DELIMITERS = {";": "semicolon", "|": "pipe", "\t": "tab"}


def _delimiter_hint(columns: list[str]) -> str | None:
    """When the header was read as one column whose name holds another field separator (a
    ``;``-separated file read with ``--delimiter ,``), the hint that works: ``--delimiter NAME``."""
    if len(columns) != 1:
        return None
    for char, name in _OTHER_DELIMITERS.items():
        if char in columns[0]:
            return (f"the header {columns[0]!r} was read as one column but holds {char!r}: read the file "
                    f"with --delimiter {name}")
    return None


GROUP_KEY = "group"
"""The row key holding the value of the ``--group-by`` column (every task keeps it)."""
NO_GROUP = "(none)"
"""The group of a row whose ``--group-by`` cell is empty or missing."""


def add_groups(table: Table, rows: list[dict[str, Any]], column: str, path: str) -> None:
    """Put each row's ``column`` value (as text) under :data:`GROUP_KEY`.

    Raises:
        DataError: ``column`` is not a column of the file (the known columns are listed).
    """
    if column not in table.columns:
        close = difflib.get_close_matches(column, table.columns, n=1)
        raise DataError(f"--group-by column '{column}' is not in {path}"
                        + (f" (did you mean '{close[0]}'?)" if close else ""),
                        hint=f"its columns are: {', '.join(table.columns)}")
    for row, source in zip(rows, table.rows):
        value = source.get(column)
        row[GROUP_KEY] = NO_GROUP if value is None or str(value).strip() == "" else str(value)
