"""Jobs as rows: creating a job and its folder, recording progress events and the log file."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fmhub.entities import Job, JobEvent, JobStatus
from fmhub.errors import ConflictError, FmhubError, JobCanceledError, SpecError
from fmhub.services.context import Context
from fmhub.store import jobs_repo

LOG_FILE = "log.txt"
EVENTS_FILE = "events.jsonl"
SYNC_EVERY_S = 30.0
"""How often a running job's log and events are copied to a bucket artifact store, at most (seconds)."""
JOB_KINDS = ("finetune", "evaluate", "import")
FINAL = (JobStatus.completed, JobStatus.failed, JobStatus.canceled)


def worker_id(role: str = "worker") -> str:
    """This process as a job owner: ``<role>:<host>:<pid>`` (hosts tell machines sharing a database apart)."""
    return f"{role}:{socket.gethostname()}:{os.getpid()}"


def claim_foreground(ctx: Context, job: Job) -> Job:
    """Mark a just-created job running in this process (a foreground ``fmhub finetune``)."""
    return claim_queued_here(ctx, job.id)


def claim_queued_here(ctx: Context, job_id: str) -> Job:
    """Take a queued job to run it in this process (``fmhub jobs resume --foreground``).

    Raises:
        ConflictError: a scheduler took it first.
    """
    owner = worker_id("foreground")
    if not jobs_repo.claim(ctx.db_url, job_id, owner):
        raise ConflictError(f"job {job_id} was taken by a running server or worker",
                            hint=f"follow it with `fmhub jobs wait {job_id}`")
    jobs_repo.set_pid(ctx.db_url, job_id, os.getpid(), owner)
    return get_job(ctx, job_id)


def cancel_job(ctx: Context, job_id: str) -> Job:
    """Cancel a job: a queued one at once; a running one stops itself at its next check (a
    fine-tune saves a checkpoint first), else its runner stops it (SIGTERM, then SIGKILL); its
    checkpoints are kept.

    Raises:
        NotFoundError: no such job.
        ConflictError: the job has already finished.
    """
    job = jobs_repo.get_job(ctx.db_url, job_id)
    if job.status in FINAL:
        raise ConflictError(f"job {job_id} is already {job.status.value}",
                            hint="only queued or running jobs can be canceled")
    job = jobs_repo.request_cancel(ctx.db_url, job_id)
    if job.status == JobStatus.running:
        from fmhub.runners.local import interrupt_foreground

        interrupt_foreground(job)  # a foreground run on this machine has no scheduler to stop it
    return job


def resume_job(ctx: Context, job_id: str) -> Job:
    """Queue a failed or canceled fine-tune job again, to continue from its latest checkpoint.

    Raises:
        NotFoundError: no such job.
        ConflictError: the job is queued, running or completed, or is not a fine-tune job.
    """
    job = jobs_repo.get_job(ctx.db_url, job_id)
    if job.kind != "finetune":
        raise ConflictError(f"job {job_id} is an {job.kind} job; only fine-tune jobs resume",
                            hint="submit the job again instead")
    if job.status not in (JobStatus.failed, JobStatus.canceled):
        raise ConflictError(f"job {job_id} is {job.status.value}; only failed or canceled jobs resume")
    jobs_repo.requeue(ctx.db_url, job_id, resume=True, from_status=(JobStatus.failed, JobStatus.canceled),
                      reason="resumed by the user")
    return get_job(ctx, job_id)


def read_log(ctx: Context, job_id: str, offset: int = 0, max_bytes: int = 1 << 20) -> tuple[str, int]:
    """Read a job's log file from byte ``offset``.

    Returns:
        ``(text, next_offset)``; ``text`` is empty when nothing new was written.

    Raises:
        NotFoundError: no such job.
    """
    job = get_job(ctx, job_id)
    path = Path(job.folder or ".") / LOG_FILE
    if not path.is_file():
        return _read_stored_log(ctx, job, offset, max_bytes)
    offset = min(max(offset, 0), path.stat().st_size)  # past the end: nothing new
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read(max_bytes)
    return data.decode("utf-8", errors="replace"), offset + len(data)


def _read_stored_log(ctx: Context, job: Job, offset: int, max_bytes: int) -> tuple[str, int]:
    """:func:`read_log` from the job's folder in a bucket artifact store (a job run elsewhere)."""
    if ctx.artifacts.is_local:
        return "", offset
    url = ctx.artifacts.job_url(job.id, LOG_FILE)
    try:
        offset = min(max(offset, 0), ctx.artifacts.size(url))
        data = ctx.artifacts.read_bytes(url, offset, max_bytes)
    except FileNotFoundError:
        return "", offset
    return data.decode("utf-8", errors="replace"), offset + len(data)


def new_job(ctx: Context, kind: str, spec: dict[str, Any], compute: str = "local") -> Job:
    """Create a queued job row and its folder ``FMHUB_HOME/jobs/<id>`` (spec saved as ``spec.json``;
    copied to ``jobs/<id>/`` in a bucket artifact store)."""
    job_id = uuid.uuid4().hex[:12]
    folder = ctx.settings.jobs_dir / job_id
    folder.mkdir(parents=True, exist_ok=False)
    (folder / "spec.json").write_text(json.dumps(spec, indent=2, default=str), encoding="utf-8")
    job = jobs_repo.create_job(ctx.db_url, job_id, kind, spec, str(folder), compute=compute)
    push_job_folder(ctx, job)
    return job


def write_job_file(ctx: Context, job: Job, name: str, text: str) -> Path:
    """Write ``text`` to file ``name`` in the job's folder (and its copy in a bucket artifact store)."""
    path = Path(job.folder or ".") / name
    path.write_text(text, encoding="utf-8")
    push_job_folder(ctx, job, only=name)
    return path


def working_folder(ctx: Context, job: Job) -> Job:
    """``job`` with a local working folder for the process that runs it.

    With a local artifact store this is the job's own folder. With a bucket it is
    ``FMHUB_HOME/jobs/<id>`` on this machine, filled from the job's folder in the store (spec,
    report, log, events, checkpoints), so a job resumed on another machine finds its last
    checkpoint; checkpoints the store no longer has are removed.
    """
    if ctx.artifacts.is_local:
        return job
    local = ctx.settings.jobs_dir / job.id
    local.mkdir(parents=True, exist_ok=True)
    url = ctx.artifacts.job_url(job.id)
    ctx.artifacts.pull_dir(url, local)
    stored = set(ctx.artifacts.list(ctx.artifacts.job_url(job.id, "checkpoints")))
    checkpoints = local / "checkpoints"
    if checkpoints.is_dir():
        for path in checkpoints.iterdir():
            if path.is_dir() and path.name not in stored:
                shutil.rmtree(path, ignore_errors=True)
    return job.model_copy(update={"folder": str(local)})


def push_job_folder(ctx: Context, job: Job, only: str | None = None, mirror: bool = False) -> None:
    """Copy the job's folder (or its file or sub-folder ``only``) to ``jobs/<id>/`` in a bucket
    artifact store; nothing to do for a local store, whose job folders stay where they are.

    Args:
        mirror: Also remove stored files the folder no longer has (checkpoints rotated away).

    A failed copy is logged, never raised: the job goes on, and the next copy catches up.
    """
    if ctx.artifacts.is_local or not job.folder or not Path(job.folder).is_dir():
        return
    try:
        ctx.artifacts.push_dir(Path(job.folder), ctx.artifacts.job_url(job.id), mirror=mirror, only=only)
    except Exception:  # noqa: BLE001 - a store hiccup must not fail the job
        logging.getLogger("fmhub.job").warning("could not copy job %s's folder to %s", job.id,
                                               ctx.artifacts.job_url(job.id), exc_info=True)


class JobEventSink:
    """Progress sink that appends events to the job's rows and to ``events.jsonl`` in its folder.

    Step ticks are not stored (the ``train`` events every ``logging_steps`` carry step and loss).
    """

    def __init__(self, ctx: Context, job: Job) -> None:
        self.ctx = ctx
        self.job = job
        self.path = Path(job.folder or ".") / EVENTS_FILE
        self.log = logging.getLogger("fmhub.job")
        self.synced_at = time.monotonic()

    def event(self, kind: str, data: dict[str, Any]) -> None:
        """Append one event (database row, JSON line, log line).

        With a bucket artifact store, a ``checkpoint`` event copies the job's checkpoints there
        (the Trainer saved and rotated them just before), and the log and events are copied at
        most every :data:`SYNC_EVERY_S` seconds.
        """
        jobs_repo.append_event(self.ctx.db_url, self.job.id, kind, data)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"kind": kind, **data}, default=str) + "\n")
        self.log.info("%s %s", kind, json.dumps(data, default=str))
        if self.ctx.artifacts.is_local:
            return
        if kind == "checkpoint":
            push_job_folder(self.ctx, self.job, only="checkpoints", mirror=True)
        if kind == "checkpoint" or time.monotonic() - self.synced_at >= SYNC_EVERY_S:
            push_job_folder(self.ctx, self.job, only=LOG_FILE)
            push_job_folder(self.ctx, self.job, only=EVENTS_FILE)
            self.synced_at = time.monotonic()

    def step(self, step: int, total: int, loss: float | None) -> None:
        """Step ticks are for displays only."""


@contextmanager
def job_log(job: Job, ctx: Context | None = None) -> Iterator[Path]:
    """Send fmhub, transformers and warnings logging to the job's ``log.txt`` while the block runs.

    With ``ctx`` and a bucket artifact store, the job's folder (log, events, outputs; checkpoints
    mirrored) is copied to the store when the block ends, however it ends.
    """
    path = Path(job.folder or ".") / LOG_FILE
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    loggers = [logging.getLogger(n) for n in ("fmhub", "transformers", "py.warnings")]
    old_levels = [lg.level for lg in loggers]
    # The libraries' own terminal handlers show errors only (load reports and the like are
    # expected while fine-tuning); everything from INFO up goes to the job's log file.
    others = [(h, h.level) for lg in loggers for h in lg.handlers]
    logging.captureWarnings(True)
    for h, level in others:
        h.setLevel(max(level, logging.ERROR))
    for lg in loggers:
        lg.addHandler(handler)
        if lg.level == logging.NOTSET or lg.level > logging.INFO:
            lg.setLevel(logging.INFO)
    try:
        yield path
    finally:
        for lg, level in zip(loggers, old_levels):
            lg.removeHandler(handler)
            lg.setLevel(level)
        for h, level in others:
            h.setLevel(level)
        logging.captureWarnings(False)
        handler.close()
        if ctx is not None:
            push_job_folder(ctx, job, mirror=True)


def get_job(ctx: Context, job_id: str) -> Job:
    """Return a job (raises ``NotFoundError``)."""
    return jobs_repo.get_job(ctx.db_url, job_id)


def _check_filters(status: str | None, kind: str | None) -> None:
    if status is not None and status not in {s.value for s in JobStatus}:
        raise SpecError(f"unknown job status '{status}'", hint=f"use one of: {', '.join(s.value for s in JobStatus)}")
    if kind is not None and kind not in JOB_KINDS:
        raise SpecError(f"unknown job kind '{kind}'", hint=f"use one of: {', '.join(JOB_KINDS)}")


def list_jobs(ctx: Context, status: str | None = None, limit: int = 100, offset: int = 0,
              kind: str | None = None) -> list[Job]:
    """Jobs, newest first (``limit`` from ``offset``).

    Raises:
        SpecError: for an unknown status or kind.
    """
    _check_filters(status, kind)
    return jobs_repo.list_jobs(ctx.db_url, status=status, limit=limit, offset=offset, kind=kind)


def count_jobs(ctx: Context, status: str | None = None, kind: str | None = None) -> int:
    """Number of jobs matching the filters of :func:`list_jobs`."""
    _check_filters(status, kind)
    return jobs_repo.count_jobs(ctx.db_url, status=status, kind=kind)


def job_report(job: Job, ctx: Context | None = None) -> dict[str, Any] | None:
    """The validation report a fine-tune or evaluate job was submitted with (``report.json`` in its
    folder, or with ``ctx``, in its folder in a bucket artifact store), or None (import jobs, or no
    report written)."""
    try:
        if job.folder and (Path(job.folder) / "report.json").is_file():
            return json.loads((Path(job.folder) / "report.json").read_text(encoding="utf-8"))
        if ctx is not None and not ctx.artifacts.is_local:
            return json.loads(ctx.artifacts.read_bytes(ctx.artifacts.job_url(job.id, "report.json")))
    except (OSError, ValueError):
        return None
    return None


def output_location(ctx: Context, job: Job, name: str) -> str:
    """Where a job's output file or folder ``name`` is kept for good: in its folder (local store),
    or at ``<store>/jobs/<id>/<name>`` (a bucket, copied there when the job ends)."""
    if ctx.artifacts.is_local:
        return str(Path(job.folder or ".") / name)
    return ctx.artifacts.job_url(job.id, name)


def job_events(ctx: Context, job_id: str, after_seq: int = 0) -> list[JobEvent]:
    """A job's progress events after ``after_seq``."""
    return jobs_repo.list_events(ctx.db_url, job_id, after_seq)


def update_outputs(ctx: Context, job_id: str, outputs: dict[str, Any]) -> None:
    """Merge ``outputs`` into a job's outputs."""
    jobs_repo.update_outputs(ctx.db_url, job_id, outputs)


def mark(ctx: Context, job: Job, status: JobStatus, **kwargs: Any) -> Job:
    """Move ``job`` to ``status`` (see :func:`fmhub.store.jobs_repo.set_status`)."""
    return jobs_repo.set_status(ctx.db_url, job.id, status, **kwargs)


def cancel_check(ctx: Context, job_id: str) -> Callable[[], bool]:
    """A ``should_stop()`` for code running a job: True once a cancel of the job was requested
    (its row's ``cancel_requested``), so the job can end itself wherever it runs."""
    def should_stop() -> bool:
        return jobs_repo.get_job(ctx.db_url, job_id).cancel_requested

    return should_stop


def record_outcome(ctx: Context, job: Job, *, outputs: dict[str, Any] | None = None,
                   exc: BaseException | None = None, exit_cause: str | None = None) -> Job:
    """Record how a job ended: the one place a job's final status is written.

    Three ways in:

    - the job finished (neither ``exc`` nor ``exit_cause``): ``completed``, ``outputs`` merged;
    - the job raised ``exc`` in its own process: ``canceled`` for an interruption
      (``KeyboardInterrupt``: Ctrl-C or SIGTERM, error ``canceled (interrupted)``) or a cancel it
      noticed itself (:class:`~fmhub.errors.JobCanceledError`, error ``canceled by the user``);
      ``failed`` for anything else, with the error's message (an unexpected exception as
      ``Type: message``);
    - its runner saw it end (``exit_cause``, e.g. ``exit code 1``): the cause is recorded; a job
      that recorded no outcome itself (still ``running``) becomes ``canceled`` when a cancel was
      requested, else ``failed`` ("ended without a result", naming its log file).

    Args:
        ctx: Service context.
        job: The job (its row is read again for the ``exit_cause`` case).
        outputs: The job's result document (``completed``).
        exc: What the job raised.
        exit_cause: How its process or run ended, in words.

    Returns:
        The job row after the change.
    """
    db = ctx.db_url
    if exit_cause is not None and exc is None:
        current = jobs_repo.get_job(db, job.id)
        jobs_repo.set_exit_cause(db, job.id, exit_cause)
        if current.status == JobStatus.running:  # the job recorded no outcome of its own
            if current.cancel_requested:
                jobs_repo.finish_if_running(db, job.id, JobStatus.canceled, "canceled by the user", exit_cause)
            else:
                jobs_repo.finish_if_running(
                    db, job.id, JobStatus.failed,
                    f"the job process ended without a result ({exit_cause}); see {Path(current.folder or '') / LOG_FILE}",
                    exit_cause)
        return jobs_repo.get_job(db, job.id)
    if exc is None:
        return jobs_repo.set_status(db, job.id, JobStatus.completed, outputs=outputs)
    if isinstance(exc, KeyboardInterrupt):
        return jobs_repo.set_status(db, job.id, JobStatus.canceled, error="canceled (interrupted)")
    if isinstance(exc, JobCanceledError):
        return jobs_repo.set_status(db, job.id, JobStatus.canceled, error="canceled by the user")
    error = str(exc) if isinstance(exc, FmhubError) else f"{type(exc).__name__}: {exc}"
    return jobs_repo.set_status(db, job.id, JobStatus.failed, error=error)
