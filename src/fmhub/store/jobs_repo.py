"""Queries on jobs and their append-only progress events."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from fmhub.entities import Job, JobEvent, JobStatus
from fmhub.errors import NotFoundError
from fmhub.store.db import session_scope
from fmhub.store.tables import JobEventRow, JobRow, utcnow


def _to_entity(row: JobRow) -> Job:
    return Job(
        id=row.id,
        kind=row.kind,
        status=JobStatus(row.status),
        compute=row.compute,
        spec=row.spec or {},
        outputs=row.outputs or {},
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        folder=row.folder,
    )


def create_job(url: str, job_id: str, kind: str, spec: dict[str, Any], folder: str, compute: str = "local") -> Job:
    """Insert a queued job row."""
    with session_scope(url) as s:
        row = JobRow(id=job_id, kind=kind, status=JobStatus.queued.value, compute=compute, spec=spec,
                     outputs={}, folder=folder)
        s.add(row)
        s.flush()
        return _to_entity(row)


def get_job(url: str, job_id: str) -> Job:
    """Return a job.

    Raises:
        NotFoundError: when no job has this id.
    """
    with session_scope(url) as s:
        row = s.get(JobRow, job_id)
        if row is None:
            raise NotFoundError(f"no job with id '{job_id}'", hint="list jobs with `fmhub jobs list`")
        return _to_entity(row)


def list_jobs(url: str, status: str | None = None, limit: int = 100) -> list[Job]:
    """List jobs, newest first."""
    with session_scope(url) as s:
        q = select(JobRow)
        if status:
            q = q.where(JobRow.status == status)
        rows = s.scalars(q.order_by(JobRow.created_at.desc()).limit(limit)).all()
        return [_to_entity(r) for r in rows]


def set_status(url: str, job_id: str, status: JobStatus, *, error: str | None = None,
               outputs: dict[str, Any] | None = None, pid: int | None = None) -> Job:
    """Move a job to ``status``; sets started/finished timestamps; merges ``outputs``."""
    with session_scope(url) as s:
        row = s.get(JobRow, job_id)
        if row is None:
            raise NotFoundError(f"no job with id '{job_id}'")
        row.status = status.value
        if status == JobStatus.running and row.started_at is None:
            row.started_at = utcnow()
        if status in (JobStatus.completed, JobStatus.failed, JobStatus.canceled):
            row.finished_at = utcnow()
        if error is not None:
            row.error = error
        if outputs:
            row.outputs = {**(row.outputs or {}), **outputs}
        if pid is not None:
            row.pid = pid
        s.flush()
        return _to_entity(row)


def update_outputs(url: str, job_id: str, outputs: dict[str, Any]) -> None:
    """Merge ``outputs`` into the job's outputs (e.g. metrics as they arrive)."""
    with session_scope(url) as s:
        row = s.get(JobRow, job_id)
        row.outputs = {**(row.outputs or {}), **outputs}


def append_event(url: str, job_id: str, kind: str, data: dict[str, Any]) -> None:
    """Append a progress event; ``seq`` increases by one per job."""
    with session_scope(url) as s:
        seq = s.scalar(select(func.max(JobEventRow.seq)).where(JobEventRow.job_id == job_id))
        s.add(JobEventRow(job_id=job_id, seq=(seq or 0) + 1, kind=kind, data=data))


def list_events(url: str, job_id: str, after_seq: int = 0) -> list[JobEvent]:
    """Return a job's events with ``seq > after_seq``, in order."""
    with session_scope(url) as s:
        rows = s.scalars(
            select(JobEventRow)
            .where(JobEventRow.job_id == job_id, JobEventRow.seq > after_seq)
            .order_by(JobEventRow.seq)
        ).all()
        return [JobEvent(job_id=r.job_id, seq=r.seq, kind=r.kind, data=r.data, created_at=r.created_at)
                for r in rows]
