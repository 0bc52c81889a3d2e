"""``/api/v1/jobs``: submit fine-tune and evaluate jobs; list, show, follow events and logs; cancel, resume."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from fmhub.api.deps import get_ctx
from fmhub.api.pagination import MAX_OFFSET, Page, PageParams, make_page, page_params
from fmhub.entities import Job, JobEvent
from fmhub.services.context import Context
from fmhub.services.specs import EvaluateSpec, FinetuneSpec

router = APIRouter(prefix="/jobs", tags=["jobs"])


class Submitted(BaseModel):
    """A queued job and the validation report of its data."""

    job: Job
    report: dict[str, Any]


class LogChunk(BaseModel):
    """Part of a job's log file: ``text`` from byte ``offset``; ask again from ``next_offset``."""

    text: str
    offset: int
    next_offset: int
    status: str


@router.post("/finetune", response_model=Submitted, status_code=202, summary="Submit a fine-tune job")
def submit_finetune(spec: FinetuneSpec, ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """The body is the job spec of ``fmhub finetune -f job.yaml``. The data is read and checked
    first: a spec or data error answers 422 with every problem, and nothing is queued."""
    from fmhub.services.finetune import submit_finetune as submit

    job, report = submit(ctx, spec)
    return {"job": job, "report": report.to_dict()}


@router.post("/evaluate", response_model=Submitted, status_code=202, summary="Submit an evaluate job")
def submit_evaluate(spec: EvaluateSpec, ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """The body is the spec of ``fmhub evaluate``; the model and test rows are checked first."""
    from fmhub.services.evaluate import submit_evaluate as submit

    job, report = submit(ctx, spec)
    return {"job": job, "report": report.to_dict()}


@router.get("", response_model=Page[Job], summary="List jobs")
def list_jobs(status: Literal["queued", "running", "completed", "failed", "canceled"] | None = None,
              kind: Literal["finetune", "evaluate", "import"] | None = None,
              page: PageParams = Depends(page_params), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Newest first."""
    from fmhub.services import jobs

    items = jobs.list_jobs(ctx, status=status, kind=kind, limit=page.limit, offset=page.offset)
    return make_page(items, jobs.count_jobs(ctx, status=status, kind=kind), page)


@router.get("/{job_id}", response_model=Job, summary="Show a job")
def show_job(job_id: str, ctx: Context = Depends(get_ctx)) -> Job:
    """Status, spec, outputs (metrics, registered model), attempts and exit cause."""
    from fmhub.services.jobs import get_job

    return get_job(ctx, job_id)


@router.get("/{job_id}/events", response_model=list[JobEvent], summary="A job's progress events")
def job_events(job_id: str, after: int = Query(0, ge=0, le=MAX_OFFSET, description="Only events with seq > after."),
               ctx: Context = Depends(get_ctx)) -> list[JobEvent]:
    """Append-only: step, total, epoch, loss, learning_rate, samples_per_s, eta_s; eval metrics;
    checkpoints; stages. Poll with ``after`` = the last ``seq`` seen."""
    from fmhub.services.jobs import get_job, job_events as events

    get_job(ctx, job_id)  # 404 for an unknown job
    return events(ctx, job_id, after_seq=after)


@router.get("/{job_id}/logs", response_model=LogChunk, summary="A job's log file")
def job_logs(job_id: str, offset: int = Query(0, ge=0, le=MAX_OFFSET, description="Byte offset to read from."),
             ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Up to 1 MiB of the log from ``offset``."""
    from fmhub.services.jobs import get_job, read_log

    text, nxt = read_log(ctx, job_id, offset)
    return {"text": text, "offset": offset, "next_offset": nxt, "status": get_job(ctx, job_id).status.value}


@router.get("/{job_id}/report", summary="A job's data validation report")
def job_report(job_id: str, ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """The validation report the job's data got at submission (rows per split, column mapping, label
    counts, dropped rows, warnings); 404 when the job has none (imports)."""
    from fmhub.errors import NotFoundError
    from fmhub.services.jobs import get_job, job_report as report

    found = report(get_job(ctx, job_id), ctx)
    if found is None:
        raise NotFoundError(f"job {job_id} has no validation report", hint="import jobs do not read data")
    return found


@router.post("/{job_id}/cancel", response_model=Job, summary="Cancel a job")
def cancel_job(job_id: str, ctx: Context = Depends(get_ctx)) -> Job:
    """A queued job is canceled at once; a running one is stopped (SIGTERM, then SIGKILL) and
    keeps its checkpoints. 409 when the job has finished."""
    from fmhub.services.jobs import cancel_job as cancel

    return cancel(ctx, job_id)


@router.post("/{job_id}/resume", response_model=Job, summary="Resume a job")
def resume_job(job_id: str, ctx: Context = Depends(get_ctx)) -> Job:
    """Queues a failed or canceled fine-tune job again, to continue from its latest checkpoint."""
    from fmhub.services.jobs import resume_job as resume

    return resume(ctx, job_id)
