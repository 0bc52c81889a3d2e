"""The ``local`` compute target: each job runs as its own subprocess on this machine.

A crash or out-of-memory kill in a job never takes the server down, and a job process never
outlives the scheduler that started it (Linux ``PR_SET_PDEATHSIG``, plus a parent watchdog in the
job process): after a server crash its jobs are found without a process and resumed.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fmhub.devices import gpu_count
from fmhub.entities import Job
from fmhub.runners.base import Capacity, JobHandle, Placement

PARENT_PID_ENV = "FMHUB_JOB_PARENT_PID"
"""Set in a job process's environment: the pid of the scheduler that started it."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


@dataclass
class JobProcess:
    """A started job process.

    Attributes:
        job_id: The job it runs.
        popen: The process handle.
        started_s: ``time.monotonic()`` at start.
        target: The compute slot it holds (``cpu``, ``cuda:N`` or ``io``).
    """

    job_id: str
    popen: subprocess.Popen
    started_s: float
    target: str

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    def poll(self) -> int | None:
        """The exit code, or None while running (negative: killed by that signal)."""
        return self.popen.poll()


def start_process(job_id: str, argv: list[str], log_path: Path, target: str,
                  env: dict[str, str] | None = None) -> JobProcess:
    """Start ``argv`` as a job process; stdout and stderr are appended to ``log_path``.

    Args:
        job_id: The job's id (for bookkeeping).
        argv: The command, e.g. ``[python, -m, fmhub, jobs, execute, ID]``.
        log_path: The job's log file.
        target: The compute slot it holds (``cpu``, ``cuda:N`` or ``io``).
        env: Extra environment variables (e.g. ``CUDA_VISIBLE_DEVICES``).
    """
    full_env = {**os.environ, **(env or {}), PARENT_PID_ENV: str(os.getpid())}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=full_env, preexec_fn=_die_with_parent, close_fds=True,
                                 start_new_session=True)  # a Ctrl-C in the server's terminal stays there
    return JobProcess(job_id=job_id, popen=popen, started_s=time.monotonic(), target=target)


def stop_process(proc: JobProcess, grace_s: float = 10.0) -> int:
    """Stop a job process: SIGTERM, then SIGKILL after ``grace_s`` seconds. Returns its exit code."""
    if proc.poll() is None:
        try:
            proc.popen.terminate()
            return proc.popen.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
    return proc.popen.wait()


def describe_exit(code: int) -> str:
    """Say how a process ended: ``exit code 1``, ``killed by SIGKILL (out of memory?)`` ..."""
    if code >= 0:
        return f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    if name == "SIGKILL":
        return "killed by SIGKILL (out of memory, or stopped from outside)"
    return f"killed by {name}"


def pid_alive(pid: int | None, must_contain: str | None = None) -> bool:
    """Whether process ``pid`` runs on this machine (zombies count as gone).

    Args:
        pid: The process id.
        must_contain: When given (and ``/proc`` exists), the process's command line must contain
            this text, so a reused pid is not mistaken for the job.
    """
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            stat = (proc / "stat").read_text()
            if stat.rpartition(")")[2].split()[0] == "Z":
                return False
            if must_contain is not None:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                return must_contain in cmdline
        except OSError:
            return False
    return True


def interrupt_foreground(job: Job) -> bool:
    """Send SIGINT to a job run in the foreground (``fmhub finetune`` without a scheduler) on this
    machine, so it stops as after Ctrl-C (checkpoints kept).

    Returns:
        Whether a signal was sent.
    """
    if not (job.worker and job.worker.startswith("foreground:") and job.pid):
        return False
    if job.worker.split(":")[1] != socket.gethostname():
        return False
    try:
        os.kill(job.pid, signal.SIGINT)
    except ProcessLookupError:
        return False
    return True


def watch_parent() -> None:
    """In a job process: exit at once if the scheduler that started it is gone (non-Linux fallback)."""
    import threading

    parent = os.environ.get(PARENT_PID_ENV)
    if not parent:
        return
    expected = int(parent)

    def loop() -> None:
        while True:
            if os.getppid() != expected:
                os._exit(137)
            time.sleep(1.0)

    threading.Thread(target=loop, name="fmhub-parent-watch", daemon=True).start()


def job_command(job_id: str) -> list[str]:
    """The command a job process runs: ``python -m fmhub jobs execute ID``."""
    return [sys.executable, "-m", "fmhub", "jobs", "execute", job_id]


@dataclass
class _Stopping:
    first_s: float
    killed: bool = False


@dataclass
class LocalRunner:
    """Runs each job as a subprocess of this machine, within slots per target.

    Slots: ``cpu`` (default 1: a fine-tune uses every core), one ``cuda:N`` per GPU (default 1 job
    each) and ``io`` for import jobs. A GPU job of device ``auto`` or ``cuda`` takes the first GPU
    with a free slot and sees it as ``cuda:0`` (``CUDA_VISIBLE_DEVICES``).

    Args:
        cpu_slots: Jobs at once on the CPU.
        gpu_slots: Jobs at once per GPU.
        io_slots: Import jobs at once.
        gpus: Number of GPUs (None: ask torch).
        stale_after_s: A job owned on another machine whose heartbeat is older than this is lost.
    """

    cpu_slots: int = 1
    gpu_slots: int = 1
    io_slots: int = 2
    gpus: int | None = None
    stale_after_s: float = 120.0
    name: str = "local"
    procs: dict[str, JobProcess] = field(default_factory=dict)

    @classmethod
    def from_options(cls, options: Any) -> LocalRunner:
        """A runner with the slots, GPU count and staleness of scheduler ``options`` (``cpu_slots``,
        ``gpu_slots``, ``io_slots``, ``gpus``, ``stale_after_s``)."""
        return cls(cpu_slots=options.cpu_slots, gpu_slots=options.gpu_slots, io_slots=options.io_slots,
                   gpus=options.gpus, stale_after_s=options.stale_after_s)

    def __post_init__(self) -> None:
        self.host = socket.gethostname()
        count = self.gpus if self.gpus is not None else gpu_count()
        self.slots = {"cpu": self.cpu_slots, "io": self.io_slots,
                      **{f"cuda:{i}": self.gpu_slots for i in range(count)}}
        self._stopping: dict[str, _Stopping] = {}
        self._capacity: Capacity | None = None

    # -- what it offers -------------------------------------------------------------------------
    def capacity(self) -> Capacity:
        """This machine's CPU and GPUs, with their slots."""
        if self._capacity is None:  # GPUs are counted without initialising CUDA in this process
            gpus = [t for t in self.slots if t.startswith("cuda:")]
            self._capacity = Capacity(slots=dict(self.slots),
                                      description=f"this machine ({self.host}): {', '.join(['cpu', *gpus])}")
        return self._capacity

    def place(self, job: Job) -> Placement | None:
        """The free slot a job can take now (None: wait)."""
        busy: dict[str, int] = {}
        for p in self.procs.values():
            busy[p.target] = busy.get(p.target, 0) + 1

        def free(target: str) -> bool:
            return busy.get(target, 0) < self.slots.get(target, 0)

        if job.kind == "import":
            return Placement("io") if free("io") else None
        device = str(job.spec.get("device") or "auto")
        gpus = [t for t in self.slots if t.startswith("cuda:")]
        if device == "cpu" or (device == "auto" and not gpus):
            return Placement("cpu") if free("cpu") else None
        if device.startswith("cuda:"):
            return Placement(device) if free(device) or device not in self.slots else None
        for target in gpus:  # auto or cuda: the first GPU with a free slot, seen as cuda:0 by the job
            if free(target):
                return Placement(target, {"CUDA_VISIBLE_DEVICES": target.split(":", 1)[1]})
        return None

    # -- starting and watching ------------------------------------------------------------------
    def start(self, job: Job, placement: Placement, log_path: str) -> JobHandle:
        """Start ``fmhub jobs execute ID`` as a subprocess; output appended to ``log_path``."""
        proc = start_process(job.id, job_command(job.id), Path(log_path), placement.target, placement.env)
        self.procs[job.id] = proc
        return self._handle(proc)

    def _handle(self, proc: JobProcess) -> JobHandle:
        return JobHandle(job_id=proc.job_id, runner=self.name, target=proc.target, started_s=proc.started_s,
                         pid=proc.pid, ref=proc)

    def running(self) -> list[JobHandle]:
        """Handles of the processes not yet reaped."""
        return [self._handle(p) for p in self.procs.values()]

    def poll(self, handle: JobHandle) -> int | None:
        """The process's exit code, or None while it runs."""
        proc = self.procs.get(handle.job_id) or handle.ref
        return proc.poll()

    def forget(self, handle: JobHandle) -> None:
        """Drop a reaped process."""
        self.procs.pop(handle.job_id, None)
        self._stopping.pop(handle.job_id, None)

    def stop(self, handle: JobHandle, grace_s: float) -> None:
        """SIGTERM on the first call (the job records itself canceled, keeping its checkpoints);
        SIGKILL on a call ``grace_s`` seconds later; ``grace_s=0``: SIGKILL now and wait for it."""
        proc: JobProcess = self.procs.get(handle.job_id) or handle.ref
        if grace_s <= 0:
            if proc.poll() is None:
                proc.popen.kill()
            proc.popen.wait()
            return
        now = time.monotonic()
        state = self._stopping.get(handle.job_id)
        if state is None:
            if proc.poll() is None:
                proc.popen.terminate()
            self._stopping[handle.job_id] = _Stopping(first_s=now)
        elif not state.killed and now - state.first_s >= grace_s and proc.poll() is None:
            proc.popen.kill()
            state.killed = True

    def describe_exit(self, code: int) -> str:
        """See :func:`describe_exit`."""
        return describe_exit(code)

    # -- lost jobs --------------------------------------------------------------------------------
    def is_lost(self, job: Job, now: datetime) -> bool:
        """A running job is lost when its owner (``role:host:pid``) is gone: on this machine, its
        process no longer runs (a foreground run: the job's own pid); on another machine, its
        heartbeat is older than ``stale_after_s`` (a foreground run there cannot be judged)."""
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
        return (now - beat).total_seconds() > self.stale_after_s
