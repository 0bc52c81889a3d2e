"""The jobs pages: the job list, and one job with live progress, charts, log tail, validation report,
metrics and actions (cancel, resume, register, deploy). JSON twins: ``/api/v1/jobs`` and
``/api/v1/jobs/{id}``; the page polls ``/api/v1/jobs/{id}/events`` and ``/logs`` from ``job.js``."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fmhub.api.pagination import MAX_OFFSET
from fmhub.entities import Job, JobEvent, JobStatus
from fmhub.errors import FmhubError
from fmhub.services.context import Context
from fmhub.services.jobs import job_report
from fmhub.ui.deps import get_ctx
from fmhub.ui.forms import first, read_form
from fmhub.ui.templating import render

router = APIRouter()
PAGE_SIZE = 50
STATUSES = [s.value for s in JobStatus]
KINDS = ["finetune", "evaluate", "import"]
ACTIVE = ("queued", "running")
FINAL = ("completed", "failed", "canceled")


def _blank(value: str | None) -> str | None:
    return value.strip() or None if value else None


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def duration_text(seconds: float | None) -> str:
    """``75.2`` -> ``1m 15s``; ``None`` -> ``-``."""
    if seconds is None or seconds < 0:
        return "-"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def job_duration(job: Job, now: datetime | None = None) -> str:
    """How long the job ran (until now while it runs); ``-`` before it started."""
    start, end = _aware(job.started_at), _aware(job.finished_at)
    if start is None:
        return "-"
    if end is None:
        end = (now or datetime.now(timezone.utc)) if job.status.value in ACTIVE else start
    return duration_text((end - start).total_seconds())


def split_error(error: str | None) -> tuple[str, str]:
    """A stored job error ``"message (hint)"`` as ``(message, hint)``; the hint may be empty."""
    text = (error or "").strip()
    if not text.endswith(")"):
        return text, ""
    depth = 0
    for i in range(len(text) - 1, -1, -1):  # the "(" matching the final ")"
        depth += {")": 1, "(": -1}.get(text[i], 0)
        if depth == 0:
            if i > 0 and text[i - 1] == " ":
                return text[:i - 1].rstrip(), text[i + 1:-1]
            break
    return text, ""


def job_model(job: Job) -> str:
    """The model a job works on (the imported name for ``import`` jobs)."""
    spec = job.spec or {}
    return str(job.outputs.get("model") or spec.get("model") or spec.get("name") or "-")


def progress_of(job: Job, events: list[JobEvent]) -> dict[str, Any]:
    """Where the job stands, from its latest events: training steps, or predicted rows.

    Returns:
        ``{"value", "max", "label", "step", "total", "epoch", "samples_per_s", "eta_s", "stage",
        "predict"}`` (missing figures are None).
    """
    out: dict[str, Any] = {"step": None, "total": None, "epoch": None, "samples_per_s": None, "eta_s": None,
                           "stage": None, "predict": None}
    for e in events:
        d = e.data
        if e.kind == "stage":
            out["stage"] = d.get("stage")
            if d.get("total_steps"):
                out["total"] = d["total_steps"]
                out["step"] = d.get("step") or out["step"] or 0
        elif e.kind in ("train", "checkpoint"):
            for key in ("step", "total", "epoch"):
                if d.get(key) is not None:
                    out[key] = d[key]
            if e.kind == "train":
                out["samples_per_s"], out["eta_s"] = d.get("samples_per_s"), d.get("eta_s")
        elif e.kind == "done":
            out["stage"] = "done"
            if job.kind == "finetune":
                out["predict"] = None
        elif e.kind == "predict":
            out["predict"] = {"split": d.get("split"), "done": d.get("done", 0), "total": d.get("total", 0)}
    if job.kind == "finetune":
        value, maximum = out["step"] or 0, out["total"] or 0
    elif out["predict"]:
        value, maximum = out["predict"]["done"], out["predict"]["total"]
    else:
        value, maximum = 0, 0
    if job.status == JobStatus.completed:
        value = maximum = maximum or 1
    out.update(value=value, max=maximum, percent=round(100 * value / maximum, 1) if maximum else 0)
    return out


def metric_tables(metrics: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per split: scalar metrics, text metrics, per-class (or per-type) rows and a shaded confusion matrix.

    Returns:
        ``[{"split", "scalars": {name: value}, "texts": {...}, "n", "per_class": {label: row} | None,
        "per_class_title", "cm": {"labels", "rows": [[(count, share)]], "max"} | None}]``.
    """
    tables = []
    for split, values in (metrics or {}).items():
        if not isinstance(values, dict):
            continue
        scalars = {k: v for k, v in values.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "n"}
        texts = {k: v for k, v in values.items() if isinstance(v, str)}
        per_class = values.get("per_class") or values.get("per_type")
        title = "Per class" if values.get("per_class") else "Per entity type"
        cm = None
        raw = values.get("confusion_matrix")
        if isinstance(raw, dict) and raw.get("labels") and raw.get("matrix"):
            top = max((max(row) for row in raw["matrix"] if row), default=0) or 1
            cm = {"labels": raw["labels"], "max": top,
                  "rows": [[(c, round(c / top, 3)) for c in row] for row in raw["matrix"]]}
        tables.append({"split": split, "scalars": scalars, "texts": texts, "n": values.get("n"),
                       "per_class": per_class if isinstance(per_class, dict) else None,
                       "per_class_title": title, "cm": cm})
    return tables


def register_default_name(job: Job) -> str:
    """The name the Register form proposes: the spec's ``registered_model_name`` or ``<model>-<task>``."""
    spec = job.spec or {}
    if spec.get("registered_model_name"):
        return str(spec["registered_model_name"])
    return f"{str(spec.get('model', 'model')).split(':', 1)[0]}-{spec.get('task', 'task')}"


def summary_context(job: Job, action_error: FmhubError | None = None, notice: str | None = None,
                    ctx: Context | None = None) -> dict[str, Any]:
    """What ``job_summary.html`` shows: status, error, actions, final metrics, the fine-tuned model
    beside its base model's zero-shot metrics, and (with ``ctx``, once the job has completed) sample
    generations of its test rows."""
    from fmhub.services.evaluations import base_vs_finetuned
    from fmhub.services.generation_samples import sample_generations

    message, hint = split_error(job.error)
    registered = job.outputs.get("registered_model")
    evaluated = job.outputs.get("model") if job.kind == "evaluate" else None
    return {
        "job": job, "status": job.status.value, "duration": job_duration(job),
        "started_iso": _aware(job.started_at).isoformat() if job.started_at else "",
        "error_message": message, "error_hint": hint, "model": job_model(job),
        "registered": registered, "evaluated_model": evaluated,
        "can_cancel": job.status.value in ACTIVE and not job.cancel_requested,
        "can_resume": job.kind == "finetune" and job.status.value in ("failed", "canceled"),
        "can_register": (job.kind == "finetune" and job.status == JobStatus.completed and not registered
                         and bool(job.outputs.get("model_folder"))),
        "register_name": register_default_name(job),
        "metrics": metric_tables(job.outputs.get("metrics")),
        "train": job.outputs.get("train") or {},
        "zero_shot": base_vs_finetuned(job.outputs.get("metrics")) if job.kind == "finetune" else None,
        "samples": (sample_generations(ctx, job) if ctx is not None and job.status == JobStatus.completed
                    else []),
        "action_error": action_error, "notice": notice,
    }


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, status: str | None = Query(None), kind: str | None = Query(None),
              offset: int = Query(0, ge=0, le=MAX_OFFSET), ctx: Context = Depends(get_ctx)) -> HTMLResponse:
    """Jobs, newest first, filtered by status and kind; an htmx request gets only the table."""
    from fmhub.services.jobs import count_jobs, list_jobs

    filters = {"status": _blank(status), "kind": _blank(kind)}
    items = list_jobs(ctx, limit=PAGE_SIZE, offset=offset, **filters)
    total = count_jobs(ctx, **filters)
    query = urlencode({k: v for k, v in filters.items() if v})
    rows = [{"job": j, "model": job_model(j), "task": (j.spec or {}).get("task") or "-",
             "duration": job_duration(j)} for j in items]
    context = {"rows": rows, "total": total, "offset": offset, "page_size": PAGE_SIZE, "filters": filters,
               "query": query, "statuses": STATUSES, "kinds": KINDS,
               "active": any(j.status.value in ACTIVE for j in items)}
    json_url = "/api/v1/jobs" + (f"?{query}" if query else "")
    template = "jobs_results.html" if request.headers.get("hx-request") else "jobs.html"
    return render(request, template, context, json_url=json_url, title="Jobs")


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str, ctx: Context = Depends(get_ctx)) -> HTMLResponse:
    """One job: summary, live progress and charts, log tail, validation report, metrics."""
    from fmhub.services.jobs import get_job, job_events

    job = get_job(ctx, job_id)
    events = job_events(ctx, job_id)
    spec = job.spec or {}
    context = {**summary_context(job, ctx=ctx), "spec": spec, "data": spec.get("data") or {},
               "progress": progress_of(job, events), "report": job_report(job, ctx),
               "last_seq": 0, "is_final": job.status.value in FINAL}
    return render(request, "job.html", context, json_url=f"/api/v1/jobs/{job_id}", title=f"Job {job_id}")


@router.get("/jobs/{job_id}/summary", response_class=HTMLResponse)
def job_summary(request: Request, job_id: str, ctx: Context = Depends(get_ctx)) -> HTMLResponse:
    """The summary fragment (status, actions, metrics), fetched again when the status changes."""
    from fmhub.services.jobs import get_job

    return render(request, "job_summary.html", summary_context(get_job(ctx, job_id), ctx=ctx))


def _after_action(request: Request, ctx: Context, job_id: str, error: FmhubError | None = None,
                  notice: str | None = None) -> Response:
    """htmx: the summary fragment again (with the error or notice); a plain form post: back to the page."""
    from fmhub.services.jobs import get_job

    if not request.headers.get("hx-request"):
        if error is not None:
            raise error
        return RedirectResponse(f"/ui/jobs/{job_id}", status_code=303)
    job = get_job(ctx, job_id)
    return render(request, "job_summary.html", summary_context(job, action_error=error, notice=notice, ctx=ctx),
                  status_code=error.http_status if error is not None else 200)


@router.post("/jobs/{job_id}/cancel", response_class=HTMLResponse)
def cancel(request: Request, job_id: str, ctx: Context = Depends(get_ctx)) -> Response:
    """Cancel a queued or running job (``POST /api/v1/jobs/{id}/cancel``)."""
    from fmhub.services.jobs import cancel_job

    try:
        cancel_job(ctx, job_id)
    except FmhubError as exc:
        return _after_action(request, ctx, job_id, error=exc)
    return _after_action(request, ctx, job_id, notice="Cancel requested.")


@router.post("/jobs/{job_id}/resume", response_class=HTMLResponse)
def resume(request: Request, job_id: str, ctx: Context = Depends(get_ctx)) -> Response:
    """Queue a failed or canceled fine-tune again (``POST /api/v1/jobs/{id}/resume``)."""
    from fmhub.services.jobs import resume_job

    try:
        resume_job(ctx, job_id)
    except FmhubError as exc:
        return _after_action(request, ctx, job_id, error=exc)
    return _after_action(request, ctx, job_id, notice="Queued again: it continues from its latest checkpoint.")


@router.post("/jobs/{job_id}/register", response_class=HTMLResponse)
async def register(request: Request, job_id: str, ctx: Context = Depends(get_ctx)) -> Response:
    """Register a completed fine-tune's model under the submitted name (``POST /api/v1/models/register``)."""
    from starlette.concurrency import run_in_threadpool

    from fmhub.services.registration import register_job_model

    form = await read_form(request)
    name = first(form, "name") or None
    try:
        version = await run_in_threadpool(register_job_model, ctx, job_id, name)
    except FmhubError as exc:
        return await run_in_threadpool(_after_action, request, ctx, job_id, exc)
    return await run_in_threadpool(_after_action, request, ctx, job_id, None, f"Registered as {version.ref}.")
