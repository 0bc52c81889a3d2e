"""Preview a data file for a task before any job: its columns and first rows, the column mapping
(matched by name where the user gave none, as the CLI does) and the validation report of its rows.

The fine-tune and evaluate wizards show this while the user maps columns; the REST API serves it as
``POST /api/v1/data/preview``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fmhub.data.mapping import ColumnMapping, resolve_mapping
from fmhub.data.problems import Problem
from fmhub.data.readers import read_table
from fmhub.data.report import ValidationReport
from fmhub.data.schema import TaskSchema
from fmhub.errors import DataError
from fmhub.services.context import Context
from fmhub.services.specs import DataSpec, ReadOptions
from fmhub.tasks import get_task
from fmhub.tasks.base import Task

PREVIEW_ROWS = 5
"""Rows shown by default."""

MAX_PREVIEW_ROWS = 100
"""Most rows a preview returns."""

SPLIT_NOTES = ("no test data:", "no validation data:")
"""Notes about the job's splits, left out: a preview reads one file, whatever the splits will be."""


def preview(ctx: Context, data_ref: str, task: str, read_options: ReadOptions | dict[str, Any] | None = None,
            rows: int = PREVIEW_ROWS) -> dict[str, Any]:
    """Read a data file (or data asset) for ``task``: columns, first rows, mapping and report.

    A mapping that cannot be resolved (a required key without a column, a column not in the file)
    is reported as errors in the report rather than raised, so that the columns and rows can still
    be shown and the mapping fixed.

    Args:
        ctx: Service context.
        data_ref: A data asset ``NAME:VERSION`` (or ``NAME:latest``), or a file path on this machine.
        task: The task whose keys the columns map to.
        read_options: Column mapping (task key -> column; keys not given are matched by name),
            ``format``, ``encoding``, ``on_invalid_row``, ``label_type``, ``tag_names``.
        rows: How many of the first rows to return (1 to :data:`MAX_PREVIEW_ROWS`).

    Returns:
        ``{"data", "file", "format", "delimiter", "nested_columns", "task", "columns", "rows",
        "total_rows", "keys", "column_mapping", "key_problems", "report"}``: ``delimiter`` is the
        CSV/TSV field separator used (None for other formats); ``nested_columns`` the dotted paths
        inside object-valued JSON fields a mapping may name; ``rows`` are the first rows as read (column
        -> value, before mapping); ``keys`` lists each task key with ``required``, ``column`` (or
        None), ``auto`` (matched by name) and ``list`` (a list-valued key); ``key_problems`` maps a
        task key to its problems grouped by message (``message``, ``severity``, ``count``,
        ``lines``: the first five lines); ``report`` is the validation report of the rows
        (``ValidationReport.to_dict()``: ``ok``, ``splits`` with row counts and the label
        distribution, ``errors`` and ``warnings`` with file, line, column and value).

    Raises:
        SpecError: unknown task, or invalid reading options.
        NotFoundError: ``data_ref`` names no registered data asset.
        DataError: the file is missing or cannot be read (every structural problem listed).
    """
    from fmhub.services.assets import resolve_data_spec
    from fmhub.services.specs import build_spec

    task_obj = get_task(task)
    if isinstance(read_options, ReadOptions):
        options = read_options.model_dump()
    else:
        options = build_spec(ReadOptions, dict(read_options or {}), "the reading options").model_dump()
    spec = DataSpec(train=data_ref, validation="none", test="none", **options)
    spec = resolve_data_spec(ctx, spec, task)
    path = spec.train
    table = read_table(path, format=spec.format, encoding=spec.encoding, delimiter=spec.delimiter)

    mapping, problems = resolve_partial_mapping(table.columns, task_obj, spec.column_mapping, data_ref,
                                                nested=table.nested_columns)
    if problems:
        report = ValidationReport(task=task, mapping=mapping.describe(), errors=[p for p, _ in problems])
    else:
        from fmhub.services.data_prep import prepare_data

        report = prepare_data(spec, task_obj, None, 512, 42).report
        problems = [(p, _keys_of(p, mapping.columns)) for p in _all_problems(report)]
    _name_by_ref(report, path, data_ref)
    report.notes = [n for n in report.notes if not n.startswith(SPLIT_NOTES)]

    count = max(1, min(int(rows), MAX_PREVIEW_ROWS))
    list_keys = set(task_obj.schema.list_keys)
    return {
        "data": data_ref,
        "file": Path(path).name,
        "format": table.format,
        "delimiter": table.delimiter,
        "nested_columns": list(table.nested_columns),
        "task": task,
        "columns": list(table.columns),
        "rows": [_json_safe(row) for row in table.rows[:count]],
        "total_rows": len(table.rows),
        "keys": [{"key": key, "required": key in task_obj.schema.required, "column": mapping.columns.get(key),
                  "auto": key in mapping.auto, "list": key in list_keys}
                 for key in task_obj.schema.keys],
        "column_mapping": dict(mapping.columns),
        "key_problems": _group_by_key(problems),
        "report": report.to_dict(),
    }


def resolve_partial_mapping(columns: list[str], task: Task, user_map: dict[str, str],
                            file: str, nested: list[str] | None = None
                            ) -> tuple[ColumnMapping, list[tuple[Problem, list[str]]]]:
    """The column mapping as far as it resolves, and its problems, each with the keys concerned.

    Unlike :func:`fmhub.data.mapping.resolve_mapping` nothing is raised: a user column not in the
    file is left out of the mapping, and required keys without a column are problems.

    Args:
        columns: The file's columns.
        task: The task (its schema and task-specific automatic matches).
        user_map: Task key -> column given by the user.
        file: How messages name the file.
        nested: Dotted paths inside object-valued columns (``Table.nested_columns``), which a
            user mapping may name.

    Returns:
        (the mapping, ``[(problem, [task keys])]``; no problems means the mapping is complete).
    """
    schema = task.schema
    extra, _ = task.default_mapping(columns, user_map)
    problems: list[tuple[Problem, list[str]]] = []
    given: dict[str, str] = {}
    for key, column in {**extra, **user_map}.items():
        if key not in schema.keys:
            problems.append((Problem(f"unknown key {key!r}; valid keys are {list(schema.keys)}", file,
                                     hint=f"use one of: {', '.join(schema.keys)}"), []))
        elif column in columns or column.strip() in columns:
            given[key] = column if column in columns else column.strip()
        elif column.strip() in (nested or ()):
            given[key] = column.strip()
        else:
            problems.append((Problem(f"column {column!r} (for key {key!r}) is not in {file}; columns are {columns}",
                                     file, column=column, hint=f"use one of the columns: {', '.join(columns)}"),
                             [key]))
    relaxed = TaskSchema(required=(), optional=schema.keys, aliases=schema.aliases, list_keys=schema.list_keys)
    try:
        mapping = resolve_mapping(columns, relaxed, given, file=file, nested=nested or ())
    except DataError as exc:  # several columns match one key equally well
        problems.extend((Problem(**d), []) for d in (exc.details or []))
        mapping = ColumnMapping({k: given[k] for k in schema.keys if k in given})
    mapping.auto = [k for k in mapping.auto if k not in extra] + [k for k in extra if k in mapping.columns
                                                                    and k not in user_map]
    flagged = {k for _, keys in problems for k in keys}
    for key in schema.required:
        nested = any(k.startswith(key + ".") for k in mapping.columns)
        if key not in flagged and key not in mapping.columns and not nested:
            problems.append((Problem(f"no column for required key {key!r}; columns are {columns}", file,
                                     hint=f"choose the column that holds the {key}"), [key]))
    return mapping, problems


def _all_problems(report: ValidationReport) -> list[Problem]:
    dropped = [p for split in report.splits for p in split.dropped]
    return [*report.errors, *report.warnings, *dropped]


def _keys_of(problem: Problem, columns: dict[str, str]) -> list[str]:
    """The task keys a report problem concerns: those mapped to its column (a key named in the
    message wins when one column feeds several keys)."""
    if problem.column is None:
        return []
    keys = [k for k, c in columns.items() if c == problem.column] or \
        ([problem.column] if problem.column in columns else [])
    named = [k for k in keys if f"'{k}'" in problem.message or k in problem.message.split()]
    return named or keys


def _group_by_key(problems: list[tuple[Problem, list[str]]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for problem, keys in problems:
        for key in keys:
            group = out.setdefault(key, {}).setdefault(
                (problem.severity, problem.message),
                {"message": problem.message, "severity": problem.severity, "hint": problem.hint, "count": 0,
                 "lines": []})
            group["count"] += 1
            if problem.line is not None and len(group["lines"]) < 5:
                group["lines"].append(problem.line)
    return {key: list(groups.values()) for key, groups in out.items()}


def _name_by_ref(report: ValidationReport, path: str, ref: str) -> None:
    """Name the file by the reference the user gave (not its place in the artifact store)."""
    if path == ref:
        return
    for problem in _all_problems(report):
        if problem.file == path:
            problem.file = ref
        problem.message = problem.message.replace(path, ref)
    report.notes = [n.replace(path, ref) for n in report.notes]
    for split in report.splits:
        split.source = split.source.replace(path, ref)


def _json_safe(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(row, default=str, ensure_ascii=False))
