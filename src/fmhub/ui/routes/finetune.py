"""The fine-tune wizard, ``/ui/models/{ref}/finetune``: task, training data, column mapping (live
preview and validation report), validation and test data, compute, parameters, review (the YAML job
file and the equivalent ``curl``), submit. JSON twins: ``/api/v1/models/{ref}``,
``POST /api/v1/data/preview`` (the mapping step) and ``POST /api/v1/jobs/finetune`` (submit).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from fmhub.errors import DataError, FmhubError
from fmhub.services.context import Context
from fmhub.ui import wizard_data
from fmhub.ui.deps import get_ctx, requires_key
from fmhub.ui.finetune_form import build_finetune_spec, curl_command, spec_yaml
from fmhub.ui.forms import first, read_form
from fmhub.ui.submissions import SUBMISSIONS, TOKEN_FIELD, new_token
from fmhub.ui.templating import render
from fmhub.ui.wizard_data import report_field_errors

router = APIRouter()
router.include_router(wizard_data.router)


def _base(ref: str) -> str:
    return f"/ui/models/{ref}/finetune"


def _parameters_context(ctx: Context, ref: str, task: str, card: dict[str, Any]) -> dict[str, Any]:
    from fmhub.services.finetune_options import default_registered_name, hyperparameter_fields
    from fmhub.services.task_facts import compares_zero_shot

    return {"ref": ref, "task": task, "fields": hyperparameter_fields(task, card.get("defaults") or {}),
            "registered_name": default_registered_name(ref, task), "zero_shot_option": compares_zero_shot(task)}


@router.get("/models/{ref}/finetune", response_class=HTMLResponse)
def finetune_page(request: Request, ref: str, task: str | None = Query(None),
                  ctx: Context = Depends(get_ctx)) -> HTMLResponse:
    """The wizard, with ``task`` (one of the model's fine-tuning tasks) preselected."""
    from fmhub.errors import SpecError
    from fmhub.services.assets import list_assets
    from fmhub.services.compute_options import compute_targets
    from fmhub.services.finetune_options import local_devices
    from fmhub.services.finetune_options import finetune_target

    target = finetune_target(ctx, ref)
    if not target["tasks"]:
        raise SpecError(f"model '{ref}' cannot be fine-tuned here: its card lists no fine-tuning task",
                        hint="find models to fine-tune in the catalog's 'Fine-tuning task' filter")
    chosen = task if task in target["tasks"] else target["tasks"][0]
    context = {"ref": ref, "card": target["card"], "tasks": target["tasks"], "task": chosen, "base": _base(ref),
               "submission": new_token(),
               "assets": list_assets(ctx), "devices": local_devices(),
               "computes": compute_targets(),
               **_parameters_context(ctx, ref, chosen, target["card"])}
    return render(request, "finetune.html", context, json_url=f"/api/v1/models/{ref}", title=f"Fine-tune {ref}")


@router.get("/models/{ref}/finetune/parameters", response_class=HTMLResponse)
def finetune_parameters(request: Request, ref: str, task: str = Query(...),
                        ctx: Context = Depends(get_ctx)) -> HTMLResponse:
    """The parameters step for ``task`` (its defaults and metrics), when the task changes."""
    from fmhub.services.finetune_options import finetune_target

    card = finetune_target(ctx, ref)["card"]
    return render(request, "finetune_parameters.html", _parameters_context(ctx, ref, task, card))


@router.post("/models/{ref}/finetune/review", response_class=HTMLResponse)
async def finetune_review(request: Request, ref: str, ctx: Context = Depends(get_ctx)) -> HTMLResponse:
    """Build the spec from the form and check it as a submit would (model, data, every split),
    without queueing: the YAML job file, the ``curl`` command, the data report. Problems come back
    in a box that blocks the step, each field's message next to its field."""
    from fmhub.services.finetune import validate

    form = await read_form(request)
    try:
        spec = build_finetune_spec(form)
        _, resolved, _, hp, prepared = await run_in_threadpool(validate, ctx, spec)
    except FmhubError as exc:
        return _error_fragment(request, exc, blocking=True)
    refs = {path: getattr(spec.data, split) for split, path in prepared.files.items()
            if getattr(spec.data, split) not in ("auto", "none")}
    report = _by_reference(prepared.report.to_dict(), refs)
    files = {refs.get(path, path): f"data.{split}" for split, path in prepared.files.items() if split != "train"}
    files[refs.get(prepared.files["train"], prepared.files["train"])] = "data.train"
    base_url = str(request.base_url).rstrip("/")
    context = {"spec": spec, "yaml": spec_yaml(spec), "report": report, "hp": hp.model_dump(),
               "resolved_ref": resolved.ref, "curl": curl_command(base_url, spec, requires_key(request)),
               "field_errors": report_field_errors(report, files)}
    return render(request, "finetune_review.html", context)


@router.post("/models/{ref}/finetune/job.yaml")
async def finetune_job_file(request: Request, ref: str) -> Response:
    """The form as ``job.yaml`` (an attachment), for ``fmhub finetune -f job.yaml``."""
    spec = build_finetune_spec(await read_form(request))
    return Response(spec_yaml(spec), media_type="application/yaml",
                    headers={"Content-Disposition": 'attachment; filename="job.yaml"'})


@router.post("/models/{ref}/finetune/submit")
async def finetune_submit(request: Request, ref: str, ctx: Context = Depends(get_ctx)) -> Response:
    """Check and queue the job, then go to its page (``HX-Redirect`` for htmx, else 303). A spec or
    data problem comes back as an error box (htmx) with each problem next to its field; nothing is
    queued then."""
    from fmhub.services.finetune import submit_finetune

    htmx = bool(request.headers.get("hx-request"))
    form = await read_form(request)
    try:
        spec = build_finetune_spec(form)
        url = await run_in_threadpool(SUBMISSIONS.once, first(form, TOKEN_FIELD),
                                      lambda: f"/ui/jobs/{submit_finetune(ctx, spec)[0].id}")
    except FmhubError as exc:
        if not htmx:
            raise
        return _error_fragment(request, exc, blocking=False)
    if htmx:
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def _by_reference(value: Any, refs: dict[str, str]) -> Any:
    """``value`` with each data file named by the reference the form gave (a data asset's
    ``NAME:VERSION``), not by its place in the artifact store."""
    if isinstance(value, str):
        for path, ref in refs.items():
            if path != ref:
                value = value.replace(f"{ref} ({path})", ref).replace(path, ref)
        return value
    if isinstance(value, dict):
        return {k: _by_reference(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [_by_reference(v, refs) for v in value]
    return value


def _error_fragment(request: Request, exc: FmhubError, blocking: bool) -> HTMLResponse:
    """An error box; a data report in ``details`` is listed with its problems placed by field."""
    report = exc.details if isinstance(exc, DataError) and isinstance(exc.details, dict) else None
    if report is not None:
        fields = report_field_errors(report)
        details = None
    else:
        details = exc.details if isinstance(exc.details, list) else None
        fields = [d for d in details or [] if isinstance(d, dict) and d.get("field")]
    context = {"status": exc.http_status, "code": exc.code, "message": exc.message, "hint": exc.hint,
               "details": details, "field_errors": fields, "report": report, "blocking": blocking}
    return render(request, "wizard_error.html", context, status_code=exc.http_status)
