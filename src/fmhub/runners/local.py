"""The ``local`` compute target: each job runs as its own subprocess on this machine.

A crash or out-of-memory kill in a job never takes the server down, and a job process never
outlives the scheduler that started it (Linux ``PR_SET_PDEATHSIG``, plus a parent watchdog in the
job process): after a server crash its jobs are found without a process and resumed.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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
