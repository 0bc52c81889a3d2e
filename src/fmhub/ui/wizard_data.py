"""The data steps the fine-tune and evaluate wizards share: choosing a file or data asset
(``wizard_data_source.html``), mapping its columns to the task's keys with a live preview and
validation report (``wizard_mapping.html``, ``wizard_report.html``), served as fragments by
``POST /ui/wizard/mapping``.

The fragment route reads the wizard's whole form:

- ``task``: the task whose keys are mapped;
- ``wizard.source``: the form field holding the data reference (``data.train``, ``data.validation``
  or ``data.test``);
- ``wizard.part``: ``mapping`` (the mapping selects, reading options and report), ``report`` (the
  report, and each key's problems swapped next to its select) or ``check`` (the report of a further
  file read with the form's mapping);
- ``wizard.reset``: ``1`` to ignore the form's mapping (a new file or task: match by name again);
- ``data.column_mapping.<key>``, ``data.on_invalid_row``, ``data.label_type``, ``data.group_by``: the
  mapping and reading options (``group_by`` names the column whose values group the test metrics).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from fmhub.errors import FmhubError
from fmhub.services.context import Context
from fmhub.services.task_facts import offers_label_type
from fmhub.ui.deps import get_ctx
from fmhub.ui.forms import first, read_form
from fmhub.ui.templating import render

router = APIRouter()

SOURCES = ("data.train", "data.validation", "data.test")
PARTS = ("mapping", "report", "check")
MAPPING_PREFIX = "data.column_mapping."
READ_OPTIONS = ("on_invalid_row", "label_type", "format", "encoding", "delimiter", "group_by")


def field_id(name: str) -> str:
    """An HTML id made from a form field or task key name (``data.train`` -> ``data-train``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)


def column_mapping_from_form(form: dict[str, list[str]]) -> dict[str, str]:
    """Task key -> column from the ``data.column_mapping.<key>`` selects; empty ones left out.

    Keys keep their dots (``answers.text``), as the spec's ``column_mapping`` expects.
    """
    out: dict[str, str] = {}
    for name, values in form.items():
        if name.startswith(MAPPING_PREFIX) and values and values[0].strip():
            out[name[len(MAPPING_PREFIX):]] = values[0].strip()
    return out


def read_options_from_form(form: dict[str, list[str]]) -> dict[str, str]:
    """The reading options given (``data.on_invalid_row`` ...), without the mapping."""
    return {name: first(form, f"data.{name}") for name in READ_OPTIONS if first(form, f"data.{name}")}


def report_field_errors(report: dict[str, Any], files: dict[str, str] | None = None,
                        limit: int = 3, mapped: str = "data.train") -> list[dict[str, str]]:
    """A validation report's errors as ``{"field", "message"}`` for the form.

    A problem in a mapped column goes next to the select of the key that column feeds (the report's
    ``mapping`` lines say which: ``label <- stars``), as does one naming a mapped key as its column
    (checks made after mapping, e.g. a label the model does not know); a problem of no mapped
    column next to the data field of its file (``files``; problems in a validation or test file
    stay with that file).

    Args:
        report: ``ValidationReport.to_dict()``.
        files: File path as the report names it -> the form field that chose it.
        limit: Messages per field at most (the report lists every one).
        mapped: The data field whose file the mapping selects describe (``data.test`` in the
            evaluate wizard); also the field of problems in a file ``files`` does not name.
    """
    mapping: dict[str, str] = {}
    for line in report.get("mapping", []):
        key, sep, column = line.partition(" <- ")
        if sep:
            mapping[key] = column.removesuffix(" (auto)")
    fields: dict[str, list[str]] = {}
    for problem in report.get("errors", []):
        column = problem.get("column")
        keys = [k for k, c in mapping.items() if c == column] or ([column] if column in mapping else [])
        named = [k for k in keys if f"'{k}'" in problem.get("message", "")]
        source = (files or {}).get(problem.get("file") or "", mapped)
        targets = [MAPPING_PREFIX + k for k in (named or keys)] if source == mapped else []
        targets = targets or [source]
        where = f"line {problem['line']}: " if problem.get("line") else ""
        for target in targets:
            fields.setdefault(target, []).append(where + problem.get("message", ""))
    out = []
    for field, messages in fields.items():
        more = f" (and {len(messages) - limit} more)" if len(messages) > limit else ""
        out.append({"field": field, "message": "; ".join(messages[:limit]) + more})
    return out


def mapping_context(result: dict[str, Any], source: str, part: str, options: dict[str, str]) -> dict[str, Any]:
    """Template variables of ``wizard_mapping.html`` / ``wizard_report.html`` for one preview."""
    return {"p": result, "report": result["report"], "source": source, "sid": field_id(source), "part": part,
            "task": result["task"], "options": options, "show_label_type": offers_label_type(result["task"]),
            "field_id": field_id}


@router.post("/wizard/mapping", response_class=HTMLResponse)
async def data_mapping(request: Request, ctx: Context = Depends(get_ctx)) -> HTMLResponse:
    """The mapping step's fragments (see the module docstring); errors reading the file come back
    inside a blocking box so the wizard cannot go on."""
    from starlette.concurrency import run_in_threadpool

    from fmhub.services.data_preview import preview

    form = await read_form(request)
    source = first(form, "wizard.source", "data.train")
    part = first(form, "wizard.part", "mapping")
    if source not in SOURCES or part not in PARTS:
        return render(request, "wizard_placeholder.html", {"message": "unknown data step"}, status_code=422)
    task, ref = first(form, "task"), first(form, source)
    if not task or not ref:
        message = "Choose a task first." if not task else "Upload a file or choose a data asset first."
        return render(request, "wizard_placeholder.html", {"message": message})
    options = read_options_from_form(form)
    reset = first(form, "wizard.reset") == "1" and part == "mapping"
    mapping = {} if reset else column_mapping_from_form(form)
    if reset:
        options.pop("group_by", None)  # a new file or task: its columns are chosen again
    try:
        result = await run_in_threadpool(preview, ctx, ref, task, {**options, "column_mapping": mapping})
    except FmhubError as exc:
        details = exc.details if isinstance(exc.details, list) else None
        context = {"code": exc.code, "message": exc.message, "hint": exc.hint, "details": details}
        return render(request, "wizard_placeholder.html", {"error": context}, status_code=exc.http_status)
    split = source.split(".", 1)[1]
    for item in result["report"]["splits"]:  # the file is read as it would be for its split
        item["name"] = split
    template = "wizard_mapping.html" if part == "mapping" else "wizard_report.html"
    return render(request, template, mapping_context(result, source, part, options))
