"""Jobs as rows: creating a job and its folder, recording progress events and the log file."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fmhub.entities import Job, JobEvent, JobStatus
from fmhub.services.context import Context
from fmhub.store import jobs_repo

LOG_FILE = "log.txt"
EVENTS_FILE = "events.jsonl"


def new_job(ctx: Context, kind: str, spec: dict[str, Any], compute: str = "local") -> Job:
    """Create a queued job row and its folder ``FMHUB_HOME/jobs/<id>`` (spec saved as ``spec.json``)."""
    job_id = uuid.uuid4().hex[:12]
    folder = ctx.settings.jobs_dir / job_id
    folder.mkdir(parents=True, exist_ok=False)
    (folder / "spec.json").write_text(json.dumps(spec, indent=2, default=str), encoding="utf-8")
    return jobs_repo.create_job(ctx.db_url, job_id, kind, spec, str(folder), compute=compute)


class JobEventSink:
    """Progress sink that appends events to the job's rows and to ``events.jsonl`` in its folder.

    Step ticks are not stored (the ``train`` events every ``logging_steps`` carry step and loss).
    """

    def __init__(self, ctx: Context, job: Job) -> None:
        self.ctx = ctx
        self.job = job
        self.path = Path(job.folder or ".") / EVENTS_FILE
        self.log = logging.getLogger("fmhub.job")

    def event(self, kind: str, data: dict[str, Any]) -> None:
        """Append one event (database row, JSON line, log line)."""
        jobs_repo.append_event(self.ctx.db_url, self.job.id, kind, data)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"kind": kind, **data}, default=str) + "\n")
        self.log.info("%s %s", kind, json.dumps(data, default=str))

    def step(self, step: int, total: int, loss: float | None) -> None:
        """Step ticks are for displays only."""


@contextmanager
def job_log(job: Job) -> Iterator[Path]:
    """Send fmhub, transformers and warnings logging to the job's ``log.txt`` while the block runs."""
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


def get_job(ctx: Context, job_id: str) -> Job:
    """Return a job (raises ``NotFoundError``)."""
    return jobs_repo.get_job(ctx.db_url, job_id)


def list_jobs(ctx: Context, status: str | None = None, limit: int = 100) -> list[Job]:
    """Jobs, newest first.

    Raises:
        SpecError: for an unknown status.
    """
    if status is not None and status not in {s.value for s in JobStatus}:
        from fmhub.errors import SpecError

        raise SpecError(f"unknown job status '{status}'", hint=f"use one of: {', '.join(s.value for s in JobStatus)}")
    return jobs_repo.list_jobs(ctx.db_url, status=status, limit=limit)


def job_events(ctx: Context, job_id: str, after_seq: int = 0) -> list[JobEvent]:
    """A job's progress events after ``after_seq``."""
    return jobs_repo.list_events(ctx.db_url, job_id, after_seq)


def mark(ctx: Context, job: Job, status: JobStatus, **kwargs: Any) -> Job:
    """Move ``job`` to ``status`` (see :func:`fmhub.store.jobs_repo.set_status`)."""
    return jobs_repo.set_status(ctx.db_url, job.id, status, **kwargs)
