"""The job scheduler: starts queued jobs as subprocesses within per-target slots, watches them,
stops canceled ones, and recovers jobs whose process was lost.

``fmhub serve`` runs one in a thread; ``fmhub worker`` runs one alone. Several schedulers may share
one database: a job is claimed with an atomic update, and each scheduler heartbeats its jobs.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from fmhub.entities import Job, JobStatus
from fmhub.runners.local import JobProcess, describe_exit, pid_alive, start_process
from fmhub.services import jobs as jobs_service
from fmhub.services.context import Context
from fmhub.store import jobs_repo

log = logging.getLogger("fmhub.scheduler")


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
        stop_grace_s: Seconds between SIGTERM and SIGKILL when a job is canceled.
        stale_after_s: A job of a scheduler on another machine whose heartbeat is older than this
            is taken as lost.
        gpus: Number of GPUs (None: ask torch).
    """

    poll_s: float = 1.0
    cpu_slots: int = 1
    gpu_slots: int = 1
    io_slots: int = 2
    max_restarts: int = 2
    stop_grace_s: float = 10.0
    stale_after_s: float = 120.0
    gpus: int | None = None


@dataclass
class _Stopping:
    deadline_s: float
    killed: bool = False


def job_command(job_id: str) -> list[str]:
    """The command a job process runs: ``python -m fmhub jobs execute ID``."""
    return [sys.executable, "-m", "fmhub", "jobs", "execute", job_id]


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # pragma: no cover - torch import problems show up elsewhere
        return 0


@dataclass
class Scheduler:
    """Runs queued jobs of one database on this machine.

    Args:
        ctx: Service context (database and job folders).
        options: Slots, restart limit and timings.
        role: ``serve`` or ``worker``; part of this scheduler's worker id.
    """

    ctx: Context
    options: SchedulerOptions = field(default_factory=SchedulerOptions)
    role: str = "worker"
    procs: dict[str, JobProcess] = field(default_factory=dict)
    stopping: dict[str, _Stopping] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.worker = jobs_service.worker_id(self.role)
        self.host = socket.gethostname()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        gpus = self.options.gpus if self.options.gpus is not None else _gpu_count()
        self.slots = {"cpu": self.options.cpu_slots, "io": self.options.io_slots,
                      **{f"cuda:{i}": self.options.gpu_slots for i in range(gpus)}}

    # -- recovery ---------------------------------------------------------------------------
    def _is_lost(self, job: Job, now: datetime) -> bool:
        if job.id in self.procs:
            return False
        role, _, rest = (job.worker or "::").partition(":")
        host, _, pid = rest.rpartition(":")
        if host == self.host:
            if role == "foreground":
                return not pid_alive(job.pid, must_contain="fmhub")
            return not (pid.isdigit() and pid_alive(int(pid), must_contain="fmhub"))
        if role == "foreground" or job.heartbeat_at is None:
            return False  # another machine's foreground run: nobody to ask
        beat = job.heartbeat_at if job.heartbeat_at.tzinfo else job.heartbeat_at.replace(tzinfo=timezone.utc)
        return (now - beat).total_seconds() > self.options.stale_after_s

    def recover(self) -> list[str]:
        """Requeue (to resume) or fail every running job whose process is gone.

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
    def _target_for(self, job: Job) -> tuple[str | None, dict[str, str]]:
        """The free slot a job can take now and the environment for its process (None: wait)."""
        busy: dict[str, int] = {}
        for p in self.procs.values():
            busy[p.target] = busy.get(p.target, 0) + 1

        def free(target: str) -> bool:
            return busy.get(target, 0) < self.slots.get(target, 0)

        if job.kind == "import":
            return ("io", {}) if free("io") else (None, {})
        device = str(job.spec.get("device") or "auto")
        gpus = [t for t in self.slots if t.startswith("cuda:")]
        if device == "cpu" or (device == "auto" and not gpus):
            return ("cpu", {}) if free("cpu") else (None, {})
        if device.startswith("cuda:"):
            return (device, {}) if free(device) or device not in self.slots else (None, {})
        for target in gpus:  # auto or cuda: the first GPU with a free slot, seen as cuda:0 by the job
            if free(target):
                return target, {"CUDA_VISIBLE_DEVICES": target.split(":", 1)[1]}
        return None, {}

    def _start(self, job: Job, target: str, env: dict[str, str]) -> None:
        if not jobs_repo.claim(self.ctx.db_url, job.id, self.worker):
            return  # another scheduler took it
        log_path = Path(job.folder or self.ctx.settings.jobs_dir / job.id) / jobs_service.LOG_FILE
        proc = start_process(job.id, job_command(job.id), log_path, target, env)
        jobs_repo.set_pid(self.ctx.db_url, job.id, proc.pid)
        self.procs[job.id] = proc
        log.info("job %s started (pid %s, %s)", job.id, proc.pid, target)

    def _reap(self) -> None:
        for job_id, proc in list(self.procs.items()):
            code = proc.poll()
            if code is None:
                continue
            del self.procs[job_id]
            self.stopping.pop(job_id, None)
            cause = describe_exit(code)
            job = jobs_repo.get_job(self.ctx.db_url, job_id)
            jobs_repo.set_exit_cause(self.ctx.db_url, job_id, cause)
            if job.status != JobStatus.running:
                continue  # the job recorded its own outcome
            if job.cancel_requested:
                jobs_repo.finish_if_running(self.ctx.db_url, job_id, JobStatus.canceled, "canceled by the user", cause)
            else:
                jobs_repo.finish_if_running(
                    self.ctx.db_url, job_id, JobStatus.failed,
                    f"the job process ended without a result ({cause}); see {Path(job.folder or '') / jobs_service.LOG_FILE}",
                    cause)
            log.info("job %s process ended: %s", job_id, cause)

    def _handle_cancels(self) -> None:
        if not self.procs:
            return
        now = time.monotonic()
        for job_id, proc in list(self.procs.items()):
            state = self.stopping.get(job_id)
            if state is None:
                if jobs_repo.get_job(self.ctx.db_url, job_id).cancel_requested:
                    proc.popen.terminate()
                    self.stopping[job_id] = _Stopping(deadline_s=now + self.options.stop_grace_s)
                    log.info("job %s: cancel requested, SIGTERM sent", job_id)
            elif not state.killed and now >= state.deadline_s and proc.poll() is None:
                proc.popen.kill()
                state.killed = True

    def tick(self) -> None:
        """One pass: reap ended processes, stop canceled jobs, recover lost ones, start queued ones."""
        self._reap()
        self._handle_cancels()
        jobs_repo.heartbeat(self.ctx.db_url, self.worker)
        self.recover()
        for job in jobs_repo.queued_jobs(self.ctx.db_url):
            target, env = self._target_for(job)
            if target is not None:
                self._start(job, target, env)

    # -- lifetime -----------------------------------------------------------------------------
    def run(self) -> None:
        """Loop until :meth:`stop` (errors in one pass are logged; the loop goes on)."""
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # a database hiccup must not end the scheduler
                log.exception("scheduler pass failed")
            self._stop.wait(self.options.poll_s)

    def start(self) -> threading.Thread:
        """Run the loop in a daemon thread."""
        self._thread = threading.Thread(target=self.run, name="fmhub-scheduler", daemon=True)
        self._thread.start()
        return self._thread

    def is_alive(self) -> bool:
        """Whether the loop thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Stop the loop; running jobs are requeued to resume on the next start, then killed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for job_id, proc in list(self.procs.items()):
            jobs_repo.requeue(self.ctx.db_url, job_id, resume=True, from_status=(JobStatus.running,),
                              reason=f"its {self.role} stopped; resumes from its last checkpoint when a "
                                     f"scheduler starts again")
            proc.popen.kill()
            proc.popen.wait()
        self.procs.clear()
