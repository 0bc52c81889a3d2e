"""Queries on jobs and their append-only progress events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update

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
        attempts=row.attempts or 0,
        resume=bool(row.resume),
        cancel_requested=bool(row.cancel_requested),
        worker=row.worker,
        heartbeat_at=row.heartbeat_at,
        pid=row.pid,
        exit_cause=row.exit_cause,
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


def list_jobs(url: str, status: str | None = None, limit: int = 100, offset: int = 0,
              kind: str | None = None) -> list[Job]:
    """List jobs, newest first (``limit`` rows from ``offset``)."""
    with session_scope(url) as s:
        q = select(JobRow)
        if status:
            q = q.where(JobRow.status == status)
        if kind:
            q = q.where(JobRow.kind == kind)
        rows = s.scalars(q.order_by(JobRow.created_at.desc(), JobRow.id).offset(offset).limit(limit)).all()
        return [_to_entity(r) for r in rows]


def count_jobs(url: str, status: str | None = None, kind: str | None = None) -> int:
    """Number of jobs with ``status`` / ``kind`` (all when None)."""
    with session_scope(url) as s:
        q = select(func.count()).select_from(JobRow)
        if status:
            q = q.where(JobRow.status == status)
        if kind:
            q = q.where(JobRow.kind == kind)
        return int(s.scalar(q) or 0)


def queued_jobs(url: str, limit: int = 50) -> list[Job]:
    """Queued jobs, oldest first (the order the scheduler starts them)."""
    with session_scope(url) as s:
        q = select(JobRow).where(JobRow.status == JobStatus.queued.value)
        rows = s.scalars(q.order_by(JobRow.created_at, JobRow.id).limit(limit)).all()
        return [_to_entity(r) for r in rows]


def running_jobs(url: str) -> list[Job]:
    """Jobs with status ``running`` (any worker)."""
    with session_scope(url) as s:
        rows = s.scalars(select(JobRow).where(JobRow.status == JobStatus.running.value)).all()
        return [_to_entity(r) for r in rows]


def claim(url: str, job_id: str, worker: str) -> bool:
    """Atomically move a queued job to ``running`` for ``worker``; False when another took it.

    The attempt counter goes up by one: it counts the processes started for the job. On PostgreSQL
    the row is taken with ``SELECT ... FOR UPDATE SKIP LOCKED`` (a claimer never waits on another
    one holding it: it moves on); elsewhere with ``UPDATE ... WHERE status = 'queued'``.
    """
    values = {"status": JobStatus.running.value, "worker": worker, "attempts": JobRow.attempts + 1,
              "heartbeat_at": utcnow(), "exit_cause": None, "started_at": func.coalesce(JobRow.started_at, utcnow())}
    with session_scope(url) as s:
        condition = (JobRow.id == job_id) & (JobRow.status == JobStatus.queued.value)
        if s.get_bind().dialect.name == "postgresql":
            locked = select(JobRow.id).where(condition).with_for_update(skip_locked=True).scalar_subquery()
            condition = JobRow.id == locked
        result = s.execute(update(JobRow).where(condition).values(**values)
                           .execution_options(synchronize_session=False))
        return result.rowcount == 1


def claim_next(url: str, worker: str, kinds: Sequence[str] | None = None,
               computes: Sequence[str] | None = None) -> Job | None:
    """Atomically take the oldest queued job for ``worker`` and mark it ``running``.

    Safe with any number of servers and workers on one database: on PostgreSQL the job row is picked
    with ``SELECT ... FOR UPDATE SKIP LOCKED`` (claimers never wait on each other, and a row is
    taken by exactly one); on SQLite the move is an ``UPDATE ... WHERE status = 'queued'``, retried
    on the next job when another process took this one. As :func:`claim`, the attempt counter goes
    up by one and the heartbeat is set.

    Args:
        url: Database URL.
        worker: The claiming owner, ``<role>:<host>:<pid>`` (``services.jobs.worker_id``).
        kinds: Only jobs of these kinds (``finetune``, ``evaluate``...); None: any.
        computes: Only jobs for these compute targets (``local``, ``ray``...); None: any.

    Returns:
        The claimed job (status ``running``), or None when no queued job matches.
    """
    values = {"status": JobStatus.running.value, "worker": worker, "attempts": JobRow.attempts + 1,
              "heartbeat_at": utcnow(), "exit_cause": None, "started_at": func.coalesce(JobRow.started_at, utcnow())}
    for _ in range(50):  # SQLite: each lost race means another process took a job; bounded retries
        with session_scope(url) as s:
            q = select(JobRow.id).where(JobRow.status == JobStatus.queued.value)
            if kinds is not None:
                q = q.where(JobRow.kind.in_(list(kinds)))
            if computes is not None:
                q = q.where(JobRow.compute.in_(list(computes)))
            q = q.order_by(JobRow.created_at, JobRow.id).limit(1)
            if s.get_bind().dialect.name == "postgresql":
                # One statement: pick the oldest row no other claimer holds, lock it, move it.
                row = s.execute(update(JobRow).where(JobRow.id == q.with_for_update(skip_locked=True).scalar_subquery())
                                .values(**values).returning(JobRow)
                                .execution_options(synchronize_session=False)).scalar_one_or_none()
                return _to_entity(row) if row is not None else None
            job_id = s.scalar(q)
            if job_id is None:
                return None
            row = s.execute(update(JobRow).where(JobRow.id == job_id, JobRow.status == JobStatus.queued.value)
                            .values(**values).returning(JobRow)
                            .execution_options(synchronize_session=False)).scalar_one_or_none()
            if row is not None:
                return _to_entity(row)
    return None


def set_pid(url: str, job_id: str, pid: int, worker: str | None = None) -> None:
    """Record the process running the job (and its worker)."""
    values: dict[str, Any] = {"pid": pid, "heartbeat_at": utcnow()}
    if worker is not None:
        values["worker"] = worker
    with session_scope(url) as s:
        s.execute(update(JobRow).where(JobRow.id == job_id).values(**values))


def heartbeat(url: str, worker: str) -> None:
    """Mark every running job of ``worker`` as alive now."""
    with session_scope(url) as s:
        s.execute(update(JobRow).where(JobRow.worker == worker, JobRow.status == JobStatus.running.value)
                  .values(heartbeat_at=utcnow()))


def finish_if_running(url: str, job_id: str, status: JobStatus, error: str | None, exit_cause: str | None) -> bool:
    """Set a final status only when the job is still ``running`` (its process did not record one).

    Returns:
        True when the row changed.
    """
    with session_scope(url) as s:
        values: dict[str, Any] = {"status": status.value, "finished_at": utcnow(), "exit_cause": exit_cause}
        if error is not None:
            values["error"] = error
        result = s.execute(update(JobRow).where(JobRow.id == job_id, JobRow.status == JobStatus.running.value)
                           .values(**values))
        return result.rowcount == 1


def set_exit_cause(url: str, job_id: str, exit_cause: str) -> None:
    """Record how the job's process ended (exit code or signal)."""
    with session_scope(url) as s:
        s.execute(update(JobRow).where(JobRow.id == job_id).values(exit_cause=exit_cause))


def requeue(url: str, job_id: str, *, resume: bool, from_status: tuple[JobStatus, ...],
            reason: str | None = None) -> bool:
    """Put a job back in the queue (to resume from its last checkpoint when ``resume``).

    Only a job whose status is in ``from_status`` moves; returns whether it did.
    """
    with session_scope(url) as s:
        result = s.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.status.in_([x.value for x in from_status]))
            .values(status=JobStatus.queued.value, resume=resume, worker=None, pid=None, cancel_requested=False,
                    finished_at=None, error=None, exit_cause=reason)
        )
        return result.rowcount == 1


def set_resume(url: str, job_id: str) -> None:
    """Mark a job to resume from its last checkpoint when its process starts (a retry in place)."""
    with session_scope(url) as s:
        s.execute(update(JobRow).where(JobRow.id == job_id).values(resume=True))


def request_cancel(url: str, job_id: str) -> Job:
    """Cancel a queued job at once; flag a running one for its worker to stop.

    Raises:
        NotFoundError: when no job has this id.
    """
    with session_scope(url) as s:
        row = s.get(JobRow, job_id)
        if row is None:
            raise NotFoundError(f"no job with id '{job_id}'", hint="list jobs with `fmhub jobs list`")
        if row.status == JobStatus.queued.value:
            row.status = JobStatus.canceled.value
            row.finished_at = utcnow()
            row.error = "canceled before it started"
        elif row.status == JobStatus.running.value:
            row.cancel_requested = True
        s.flush()
        return _to_entity(row)

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


def append_event(url: str, job_id: str, kind: str, data: dict[str, Any]) -> int:
    """Append a progress event; ``seq`` is 1, 2, 3... per job, with no repeat and no gap, also when
    several processes append at once (the job row's ``event_seq`` is incremented in the same
    transaction, which holds that row until it commits; ``(job_id, seq)`` is unique).

    Returns:
        The event's ``seq``.

    Raises:
        NotFoundError: when no job has this id.
    """
    with session_scope(url) as s:
        seq = s.execute(update(JobRow).where(JobRow.id == job_id).values(event_seq=JobRow.event_seq + 1)
                        .returning(JobRow.event_seq).execution_options(synchronize_session=False)).scalar()
        if seq is None:
            raise NotFoundError(f"no job with id '{job_id}'", hint="list jobs with `fmhub jobs list`")
        s.add(JobEventRow(job_id=job_id, seq=seq, kind=kind, data=data))
        return int(seq)


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
