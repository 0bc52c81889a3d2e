"""The runner seam: what the job scheduler needs from a place that runs jobs.

A runner starts a claimed job, says whether it still runs, stops it, and judges whether a running
job of its kind was lost (its owner gone). The scheduler keeps the queue (claim, heartbeat,
requeue, outcome) and picks a runner by the job's ``compute`` (``local``, ``ray`` ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from fmhub.entities import Job


@dataclass(frozen=True)
class Capacity:
    """What a runner offers.

    Attributes:
        slots: Jobs at once per target: ``{"cpu": 1, "cuda:0": 1, "io": 2}``. ``io`` is for
            import jobs (they copy files and take no compute); every other key is a device a job
            may ask for with ``device``.
        description: Where jobs run, for people: ``this machine (host): cpu, cuda:0 (NVIDIA H100)``.
        device_names: Optional longer names of devices (``{"cuda:0": "NVIDIA H100"}``).
    """

    slots: dict[str, int]
    description: str
    device_names: dict[str, str] = field(default_factory=dict)

    @property
    def devices(self) -> list[str]:
        """The devices a job may ask for (``cpu``, ``cuda:N`` ...), in slot order."""
        return [t for t in self.slots if t != "io"]

    @property
    def gpus(self) -> list[str]:
        """The ``cuda:N`` devices."""
        return [t for t in self.slots if t.startswith("cuda:")]


@dataclass(frozen=True)
class Placement:
    """Where a job will run, chosen before it is claimed.

    Attributes:
        target: The slot it takes (``cpu``, ``cuda:N``, ``io``).
        env: Environment variables for the job (e.g. ``CUDA_VISIBLE_DEVICES``).
    """

    target: str
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class JobHandle:
    """A job a runner started.

    Attributes:
        job_id: The job it runs.
        runner: The runner's name (``local`` ...).
        target: The slot it holds.
        started_s: ``time.monotonic()`` at start.
        pid: The process id, where the runner has one on this machine (else None).
        ref: The runner's own handle (a ``subprocess.Popen``, a cluster job id ...).
    """

    job_id: str
    runner: str
    target: str
    started_s: float
    pid: int | None = None
    ref: Any = None


@runtime_checkable
class Runner(Protocol):
    """Starts and watches jobs somewhere (this machine's processes, a cluster ...).

    Attributes:
        name: The ``compute`` value it serves (``local``).
    """

    name: str

    def capacity(self) -> Capacity:
        """The devices and slots this runner offers (a job's ``device`` is checked against it)."""
        ...

    def place(self, job: Job) -> Placement | None:
        """The slot ``job`` can take now, or None to leave it queued (no free slot)."""
        ...

    def start(self, job: Job, placement: Placement, log_path: str) -> JobHandle:
        """Start a claimed job (``fmhub jobs execute ID`` or its equivalent) in ``placement``;
        its output goes to ``log_path``."""
        ...

    def poll(self, handle: JobHandle) -> int | None:
        """The job's exit code once it ended (negative: killed by that signal), else None."""
        ...

    def stop(self, handle: JobHandle, grace_s: float) -> None:
        """Stop a job from outside; returns at once (:meth:`poll` says when it ended).

        The first call asks it to end (SIGTERM for a process); a call ``grace_s`` seconds or more
        after the first ends it for good (SIGKILL). ``grace_s=0`` ends it at once.
        """
        ...

    def describe_exit(self, code: int) -> str:
        """How a job ended, in words: ``exit code 1``, ``killed by SIGKILL (out of memory?)``."""
        ...

    def is_lost(self, job: Job, now: datetime) -> bool:
        """Whether a ``running`` job of this runner's kind has no live owner any more (to be
        requeued or failed by the scheduler)."""
        ...

    def running(self) -> list[JobHandle]:
        """The jobs this runner started that have not been reaped."""
        ...

    def forget(self, handle: JobHandle) -> None:
        """Drop a handle once the scheduler recorded its outcome."""
        ...


__all__ = ["Capacity", "JobHandle", "Placement", "Runner"]
