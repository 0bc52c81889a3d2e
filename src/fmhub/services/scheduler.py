"""The job scheduler: the queue loop. It claims queued jobs and hands them to the runner their
``compute`` names (``local``: subprocesses of this machine, see :mod:`fmhub.runners.local`), watches
them, asks canceled ones to stop, records how each ended, and requeues or fails jobs that were lost.

``fmhub serve`` drives one in a background loop; ``fmhub worker`` runs one alone. Several schedulers
may share one database: a job is claimed with an atomic update, and each scheduler heartbeats its
jobs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fmhub.entities import Job, JobStatus
from fmhub.runners.base import Capacity, JobHandle, Runner
from fmhub.runners.local import LocalRunner
from fmhub.runners.ray import RayRunner
from fmhub.services import jobs as jobs_service
from fmhub.services.context import Context
from fmhub.store import jobs_repo

log = logging.getLogger("fmhub.scheduler")

RUNNERS: dict[str, type] = {"local": LocalRunner, "ray": RayRunner}
"""The runner class for each ``compute`` value; made with ``cls.from_options(options)`` when the
class has that, else ``cls()``."""


@dataclass
class SchedulerOptions:
    """How a scheduler behaves.

    Attributes:
        poll_s: Seconds between looks at the queue.
        cpu_slots: Jobs at once on the CPU (default 1: a fine-tune uses every core).
        gpu_slots: Jobs at once per GPU (default 1).
        io_slots: Import jobs at once (they copy files; they take no compute slot).
        max_restarts: Times a job whose process was lost is started again (resuming from its
            last checkpoint) before it is marked failed.
        cancel_wait_s: Seconds a job whose cancel was requested has to stop by itself (its
            training callback saves a checkpoint and ends it) before its runner stops it.
        stop_grace_s: Seconds between the runner's polite stop (SIGTERM) and its forced one
            (SIGKILL) when a job is canceled.
        stale_after_s: A job of a scheduler on another machine whose heartbeat is older than this
            is taken as lost.
        gpus: Number of GPUs (None: ask torch).
    """

    poll_s: float = 1.0
    cpu_slots: int = 1
    gpu_slots: int = 1
    io_slots: int = 2
    max_restarts: int = 2
    cancel_wait_s: float = 5.0
    stop_grace_s: float = 10.0
    stale_after_s: float = 120.0
    gpus: int | None = None


def make_runner(compute: str, options: SchedulerOptions | None = None) -> Runner:
    """A runner for ``compute`` set up from scheduler ``options``.

    Raises:
        SpecError: no runner of that name (the message names the known ones).
    """
    options = options or SchedulerOptions()
    if compute not in RUNNERS:
        from fmhub.errors import SpecError

        raise SpecError(unknown_compute(compute), hint=f"use compute {' or '.join(sorted(RUNNERS))}")
    cls = RUNNERS[compute]
    factory = getattr(cls, "from_options", None)  # a runner may read the slots and timings it needs
    return factory(options) if factory is not None else cls()


def unknown_compute(compute: str) -> str:
    """The error of a job whose ``compute`` no runner serves."""
    return f"unknown compute '{compute}'; this fmhub runs jobs on: {', '.join(sorted(RUNNERS))}"


_CAPACITY: dict[str, Capacity] = {}


def runner_capacity(compute: str) -> Capacity:
    """What the runner of ``compute`` offers with default options (devices and slots), for checking a
    job's ``device`` when it is submitted; asked once per process for ``local``.

    Raises:
        SpecError: no runner of that name.
        ComputeUnavailableError: ``ray`` with no cluster configured, or one that does not answer.
    """
    if compute in _CAPACITY:
        return _CAPACITY[compute]
    capacity = make_runner(compute).capacity()
    if compute == "local":  # a cluster's resources change: its runner reuses a look briefly itself
        _CAPACITY[compute] = capacity
    return capacity


@dataclass
class Scheduler:
    """Runs queued jobs of one database through its runners.

    Args:
        ctx: Service context (database and job folders).
        options: Slots, restart limit and timings.
        role: ``serve`` or ``worker``; part of this scheduler's worker id.
        runners: The runner per ``compute`` (default: one per :data:`RUNNERS` entry, from ``options``).
    """

    ctx: Context
    options: SchedulerOptions = field(default_factory=SchedulerOptions)
    role: str = "worker"
    runners: dict[str, Runner] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.worker = jobs_service.worker_id(self.role)
        if not self.runners:
            self.runners = {name: make_runner(name, self.options) for name in RUNNERS}
        self._cancel_seen: dict[str, float] = {}
        self._loop: Any = None

    def _handles(self) -> list[tuple[Runner, JobHandle]]:
        return [(runner, h) for runner in self.runners.values() for h in runner.running()]

    # -- recovery ---------------------------------------------------------------------------
    def _is_lost(self, job: Job, now: datetime) -> bool:
        runner = self.runners.get(job.compute)
        return runner is not None and runner.is_lost(job, now)  # another compute's jobs: not ours to judge

    def recover(self) -> list[str]:
        """Requeue (to resume) or fail every running job whose runner says it was lost.

        Returns:
            Ids of the jobs handled.
        """
        handled = []
        now = datetime.now(timezone.utc)
        for job in jobs_repo.running_jobs(self.ctx.db_url):
            if not self._is_lost(job, now):
                continue
            handled.append(job.id)
            if job.attempts <= self.options.max_restarts:
                reason = (f"its process was lost ({job.worker} is gone); restarted "
                          f"{'from its last checkpoint' if job.kind == 'finetune' else 'from the start'}")
                if jobs_repo.requeue(self.ctx.db_url, job.id, resume=True, from_status=(JobStatus.running,),
                                     reason=reason):
                    jobs_repo.append_event(self.ctx.db_url, job.id, "stage", {"stage": "requeued", "reason": reason})
                    log.warning("job %s: %s", job.id, reason)
            else:
                error = (f"its process was lost {job.attempts} times (last owner {job.worker}); "
                         f"giving up after {self.options.max_restarts} restarts")
                jobs_repo.finish_if_running(self.ctx.db_url, job.id, JobStatus.failed, error, "lost")
                log.warning("job %s failed: %s", job.id, error)
        return handled

    # -- one pass -----------------------------------------------------------------------------
    def _start(self, job: Job) -> None:
        runner = self.runners.get(job.compute)
        if runner is None:  # e.g. queued by a server that knows more runners than this one
            if jobs_repo.claim(self.ctx.db_url, job.id, self.worker):
                jobs_repo.finish_if_running(self.ctx.db_url, job.id, JobStatus.failed, unknown_compute(job.compute),
                                            None)
                log.warning("job %s failed: %s", job.id, unknown_compute(job.compute))
            return
        placement = runner.place(job)
        if placement is None:
            return  # no free slot: it waits
        if not jobs_repo.claim(self.ctx.db_url, job.id, self.worker):
            return  # another scheduler took it
        log_path = Path(job.folder or self.ctx.settings.jobs_dir / job.id) / jobs_service.LOG_FILE
        handle = runner.start(job, placement, str(log_path))
        if handle.pid is not None:
            jobs_repo.set_pid(self.ctx.db_url, job.id, handle.pid)
        log.info("job %s started (%s, pid %s, %s)", job.id, runner.name, handle.pid, placement.target)

    def _reap(self) -> None:
        for runner, handle in self._handles():
            code = runner.poll(handle)
            if code is None:
                continue
            runner.forget(handle)
            self._cancel_seen.pop(handle.job_id, None)
            cause = runner.describe_exit(code)
            jobs_service.record_outcome(self.ctx, jobs_repo.get_job(self.ctx.db_url, handle.job_id), exit_cause=cause)
            log.info("job %s process ended: %s", handle.job_id, cause)

    def _handle_cancels(self) -> None:
        """A job whose cancel was requested first gets ``cancel_wait_s`` to stop by itself; then its
        runner stops it (called every pass: the runner escalates after ``stop_grace_s``)."""
        now = time.monotonic()
        for runner, handle in self._handles():
            seen = self._cancel_seen.get(handle.job_id)
            if seen is None:
                if not jobs_repo.get_job(self.ctx.db_url, handle.job_id).cancel_requested:
                    continue
                seen = self._cancel_seen[handle.job_id] = now
                log.info("job %s: cancel requested", handle.job_id)
            if now - seen >= self.options.cancel_wait_s:
                runner.stop(handle, self.options.stop_grace_s)

    def tick(self) -> None:
        """One pass: reap ended jobs, stop canceled ones, recover lost ones, start queued ones."""
        self._reap()
        self._handle_cancels()
        jobs_repo.heartbeat(self.ctx.db_url, self.worker)
        self.recover()
        for job in jobs_repo.queued_jobs(self.ctx.db_url):
            self._start(job)

    # -- lifetime -----------------------------------------------------------------------------
    def start(self) -> Any:
        """Run :meth:`tick` every ``poll_s`` seconds in a background loop (a daemon thread of
        :mod:`fmhub.runners.loop`); returns the loop."""
        from fmhub.runners.loop import run_in_thread

        self._loop = run_in_thread(self.tick, self.options.poll_s, name="fmhub-scheduler")
        return self._loop

    def is_alive(self) -> bool:
        """Whether the background loop runs."""
        return self._loop is not None and self._loop.is_alive()

    def stop(self) -> None:
        """Stop the loop; running jobs are requeued to resume on the next start, then killed."""
        if self._loop is not None:
            self._loop.stop(timeout_s=30)
        for runner, handle in self._handles():
            jobs_repo.requeue(self.ctx.db_url, handle.job_id, resume=True, from_status=(JobStatus.running,),
                              reason=f"its {self.role} stopped; resumes from its last checkpoint when a "
                                     f"scheduler starts again")
            runner.stop(handle, 0)
            runner.forget(handle)
        self._cancel_seen.clear()
