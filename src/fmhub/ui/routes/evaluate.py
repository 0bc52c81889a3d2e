"""The evaluate wizard, ``/ui/evaluate?model=REF``: models of one task, test data, column mapping
(live preview and report), compute, review (the specs as YAML and the ``fmhub evaluate`` command),
submit one evaluate job per model; then the side-by-side results, ``/ui/evaluations?jobs=ID,ID``.
JSON twins: ``/api/v1/models``, ``POST /api/v1/jobs/evaluate`` (one per model) and
``/api/v1/evaluations?jobs=ID,ID``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from fmhub.errors import DataError, FmhubError
from fmhub.services.context import Context
from fmhub.ui.deps import get_ctx
from fmhub.ui.evaluate_form import build_evaluate_specs, chosen_models, cli_command, specs_yaml
from fmhub.ui.forms import first, read_form
from fmhub.ui.submissions import SUBMISSIONS, TOKEN_FIELD, new_token
from fmhub.ui.templating import render
from fmhub.ui.wizard_data import field_id, report_field_errors

router = APIRouter()

BASE = "/ui/evaluate"
POLL_SECONDS = 2


def _choices(ctx: Context, extra: list[str]) -> list[dict[str, Any]]:
    from fmhub.services.evaluations import evaluation_choices

    return evaluation_choices(ctx, extra)


def _preselect(choices: list[dict[str, Any]], model: str | None) -> tuple[str | None, str | None, str | None]:
    """(task, ref) a ``?model=`` link chooses, and why it cannot be chosen (or None).

    ``NAME`` without a version picks the newest version of a workspace model.
    """
    if not model:
        return None, None, None
    ref = model.strip()
    offered = [c for c in choices if c["ref"] == ref]
    if not offered and ":" not in ref:
        offered = [c for c in choices if c["registry"] == "workspace" and c["ref"].partition(":")[0] == ref][:1]
    if not offered:
        return None, None, (f"'{ref}' is not a workspace model version, nor a catalog model with a task head "
                            "on this machine")
    usable = [c for c in offered if not c["problem"]]
    entry = (usable or offered)[0]
    return entry["task"], entry["ref"], None if usable else f"{entry['ref']} cannot be evaluated: {entry['problem']}"


@router.get("/evaluate", response_class=HTMLResponse)
def evaluate_page(request: Request, model: list[str] = Query([]), ctx: Context = Depends(get_ctx)) -> HTMLResponse:
    """The wizard; each ``model`` (a workspace ``NAME[:VERSION]`` or a catalog name; repeat it to
    compare, e.g. a fine-tune and its base) is ticked, and the first one's task chosen."""
    from fmhub.services.finetune_options import local_devices
    from fmhub.services.assets import list_assets

    models = [m for m in model if m and m.strip()]
    choices = _choices(ctx, models)
    task, ref, notice = _preselect(choices, models[0] if models else None)
    selected = [ref] if ref and not notice else []
    for other in models[1:]:
        other_task, other_ref, why = _preselect(choices, other)
        if other_ref and not why and other_task == task and other_ref not in selected:
            selected.append(other_ref)
    groups: dict[str, list[dict[str, Any]]] = {}
    for c in choices:
        groups.setdefault(c["task"], []).append(c)
    usable = [t for t, entries in groups.items() if any(not c["problem"] for c in entries)]
    task = task or (usable[0] if usable else next(iter(groups), None))
    context = {"groups": groups, "task": task, "selected": selected,
               "submission": new_token(),
               "notice": notice, "any_usable": bool(usable), "assets": list_assets(ctx),
               "devices": local_devices(), "base": BASE, "field_id": field_id}
    json_url = f"/api/v1/models/{quote(ref, safe=':')}" if ref else "/api/v1/models?registry=workspace"
    return render(request, "evaluate.html", context, json_url=json_url, title="Evaluate models")


def _check(ctx: Context, form: dict[str, list[str]]) -> tuple[list[Any], list[Any]]:
    """The specs of the form and their plans (every model checked, nothing queued)."""
    from fmhub.services.evaluations import check_evaluations

    specs = build_evaluate_specs(form, _choices(ctx, chosen_models(form)))
    return specs, check_evaluations(ctx, specs)


@router.post("/evaluate/review", response_class=HTMLResponse)
async def evaluate_review(request: Request, ctx: Context = Depends(get_ctx)) -> HTMLResponse:
    """Build the specs and check them as a submit would (each model, its head, the test rows),
    without queueing: the YAML specs, the ``fmhub evaluate`` command, the data report. Problems
    come back in a box that blocks the step, each next to its field."""
    from fmhub.services.assets import rename_path

    form = await read_form(request)
    try:
        specs, plans = await run_in_threadpool(_check, ctx, form)
    except FmhubError as exc:
        return _error_fragment(request, exc, blocking=True)
    first = plans[0]
    report = rename_path(first.report.to_dict(), first.spec.data.test, specs[0].data.test)
    context = {"specs": specs, "plans": plans, "yaml": specs_yaml(specs), "cli": cli_command(specs),
               "report": report, "task": first.task.name,
               "field_errors": report_field_errors(report, mapped="data.test")}
    return render(request, "evaluate_review.html", context)


@router.post("/evaluate/submit")
async def evaluate_submit(request: Request, ctx: Context = Depends(get_ctx)) -> Response:
    """Check every model, then queue one evaluate job each, and go to the comparison
    (``HX-Redirect`` for htmx, else 303). When any model is refused nothing is queued: the error
    box (htmx) puts each problem next to its field."""
    from fmhub.services.evaluations import submit_evaluations

    htmx = bool(request.headers.get("hx-request"))
    form = await read_form(request)
    try:
        specs = build_evaluate_specs(form, await run_in_threadpool(_choices, ctx, chosen_models(form)))
        url = await run_in_threadpool(
            SUBMISSIONS.once, first(form, TOKEN_FIELD),
            lambda: "/ui/evaluations?jobs=" + ",".join(j.id for j in submit_evaluations(ctx, specs)))
    except FmhubError as exc:
        if not htmx:
            raise
        return _error_fragment(request, exc, blocking=False)
    if htmx:
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def _error_fragment(request: Request, exc: FmhubError, blocking: bool) -> HTMLResponse:
    """An error box; a data report in ``details`` is listed with its problems placed by field."""
    report = exc.details if isinstance(exc, DataError) and isinstance(exc.details, dict) else None
    if report is not None:
        fields = report_field_errors(report, mapped="data.test")
        details = None
    else:
        details = exc.details if isinstance(exc.details, list) else None
        fields = _merge_fields([d for d in details or [] if isinstance(d, dict) and d.get("field")])
    context = {"status": exc.http_status, "code": exc.code, "message": exc.message, "hint": exc.hint,
               "details": details, "field_errors": fields, "report": report, "blocking": blocking}
    return render(request, "wizard_error.html", context, status_code=exc.http_status)


def _merge_fields(problems: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One ``{"field", "message"}`` per field (the messages of a field joined), as app.js shows one
    message per field."""
    merged: dict[str, list[str]] = {}
    for p in problems:
        merged.setdefault(p["field"], []).append(str(p.get("message", "")))
    return [{"field": f, "message": "; ".join(m)} for f, m in merged.items()]


# -- results ---------------------------------------------------------------------------------------

def _comparison_context(ctx: Context, jobs: str) -> dict[str, Any]:
    from fmhub.services.evaluations import compare_evaluations

    c = compare_evaluations(ctx, jobs)
    ids = ",".join(r["job_id"] for r in c["results"])
    return {"c": c, "ids": ids, "poll": POLL_SECONDS, "table_url": f"/ui/evaluations/table?jobs={ids}"}


@router.get("/evaluations", response_class=HTMLResponse)
def evaluations_page(request: Request, jobs: str = Query("", description="Evaluate job ids, comma-separated"),
                     ctx: Context = Depends(get_ctx)) -> HTMLResponse:
    """Evaluate jobs side by side: a row per metric, a column per model, the best value of each row
    marked; refreshed every few seconds until every job has finished."""
    context = _comparison_context(ctx, jobs)
    return render(request, "evaluations.html", context, json_url=f"/api/v1/evaluations?jobs={context['ids']}",
                  title="Compare evaluations")


@router.get("/evaluations/table", response_class=HTMLResponse)
def evaluations_table(request: Request, jobs: str = Query(""), ctx: Context = Depends(get_ctx)) -> HTMLResponse:
    """The comparison table alone (the page polls it while jobs run)."""
    return render(request, "evaluations_table.html", _comparison_context(ctx, jobs))
