"""The job as a training worker in another process sees it (a Ray Train worker): its progress
sink, its cancel question and its log, rebuilt there from the job and the settings."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmhub.config import Settings
from fmhub.entities import Job
from fmhub.services import jobs as jobs_service
from fmhub.services.context import Context


@dataclass
class JobWorkerHooks:
    """Pickles to a worker process; each method builds what it needs there (a database
    connection through the job's settings), so it works on any node that reaches the database.

    Attributes:
        settings: The job process's settings (``FMHUB_HOME``, ``FMHUB_DATABASE_URL``, the artifact
            store): a worker does not inherit the job process's environment.
        job: The job (its ``folder`` is this machine's working folder; created where missing).
    """

    settings: Settings
    job: Job

    def _context(self) -> Context:
        Path(self.job.folder or ".").mkdir(parents=True, exist_ok=True)
        return Context.from_settings(self.settings)

    def sink(self) -> jobs_service.JobEventSink:
        """The job's event sink (database rows and ``events.jsonl``)."""
        return jobs_service.JobEventSink(self._context(), self.job)

    def should_stop(self) -> Callable[[], bool]:
        """True once a cancel of the job was requested."""
        return jobs_service.cancel_check(self._context(), self.job.id)

    def job_log(self) -> AbstractContextManager[Any]:
        """Log records of the block go to the job's ``log.txt`` (appended; not copied to a bucket)."""
        self._context()
        return jobs_service.job_log(self.job)


__all__ = ["JobWorkerHooks"]
