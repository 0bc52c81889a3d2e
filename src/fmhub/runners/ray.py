"""The ``ray`` compute target: each job runs as one Ray task on a node of the cluster at
``FMHUB_RAY_ADDRESS`` that has the resources it asks for.

The task (:func:`fmhub.runners.ray_task.run_job_task`) runs the job's normal entry point,
``python -m fmhub jobs execute ID``, as its subprocess, so progress events, the log, cancel and
resume work as for a local job. Ray retries the task (``max_retries = resources.max_failures``)
when its worker or node is lost; the retried job resumes from its last checkpoint. For
``num_workers > 1`` the task is the coordinator of a Ray Train run (it asks no CPU; the workers
are Ray Train's).

``ray`` is imported only once a Ray job is seen; the connection is made in a background thread,
so the scheduler never waits on the cluster.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from fmhub import raycluster
from fmhub.entities import Job
from fmhub.runners.base import Capacity, JobHandle, Placement
from fmhub.runners.local import describe_exit as describe_process_exit
from fmhub.runners.local import pid_alive
from fmhub.runners.ray_facts import (CAPACITY_TTL_S, FAILED_CODE, cached_cluster, failure, job_environment,
                                     job_resources, unfit_reason)

log = logging.getLogger("fmhub.runners.ray")

UNAVAILABLE = "ray-unavailable"
"""Placement target of a job that cannot run on the cluster (no cluster, or too big for it): it is
started as a handle that ends at once with the reason."""


@dataclass
class _Task:
    """A job's Ray task as the runner watches it (``error``: it never ran, or its cluster is gone)."""

    job_id: str
    ref: Any
    started_s: float
    launch: str
    error: str | None = None  # set: the task never ran (or its cluster is gone); poll ends it
    stop_first_s: float | None = None
    killed: bool = False


@dataclass
class RayRunner:
    """Runs each job as one Ray task on the cluster at ``address`` (default ``FMHUB_RAY_ADDRESS``).

    Args:
        address: The head's ``HOST:PORT`` (None: ``FMHUB_RAY_ADDRESS`` when the first job is seen).
        stale_after_s: A job whose scheduler is on another machine and whose heartbeat is older
            than this is lost (its Ray task died with that scheduler's connection).
        probe_every_s: Seconds between two checks, while jobs run, that the cluster still
            answers; a cluster gone fails its jobs with that cause.
        retry_connect_s: After a failed connection, seconds before the next Ray job tries again.
        connect_timeout_s: Seconds ``ray.init`` may take.
    """

    address: str | None = None
    stale_after_s: float = 120.0
    probe_every_s: float = 2.0
    retry_connect_s: float = 30.0
    connect_timeout_s: float = raycluster.CONNECT_TIMEOUT_S
    name: str = "ray"
    tasks: dict[str, _Task] = field(default_factory=dict)

    @classmethod
    def from_options(cls, options: Any) -> RayRunner:
        """A runner with the staleness of scheduler ``options`` (``stale_after_s``); nothing is
        connected until a Ray job is seen."""
        return cls(stale_after_s=options.stale_after_s)

    def __post_init__(self) -> None:
        self.host = socket.gethostname()
        self._lock = threading.Lock()
        self._state = "idle"  # idle -> connecting -> ready | failed
        self._error: str | None = None
        self._failed_at = 0.0
        self._cluster: Any = None  # raycluster.ClusterResources
        self._cluster_at = 0.0
        self._refreshing = False
        self._probed_at = 0.0
        self._last_exit: tuple[int, str] | None = None

    # -- the connection (background) -------------------------------------------------------------
    def _address(self) -> str | None:
        return self.address or raycluster.configured_address()

    def _connect_in_background(self) -> None:
        with self._lock:
            if self._state == "connecting":
                return
            self._state = "connecting"

        def work() -> None:
            try:
                address = raycluster.connect(self._address(), timeout_s=self.connect_timeout_s)
                cluster = raycluster.cluster_resources(address)
            except Exception as exc:  # noqa: BLE001 - RayUnavailableError, or Ray's own
                text = str(exc) if isinstance(exc, raycluster.RayUnavailableError) else f"{type(exc).__name__}: {exc}"
                hint = getattr(exc, "hint", None)
                with self._lock:
                    self._state, self._failed_at = "failed", time.monotonic()
                    self._error = text + (f" ({hint})" if hint else "")
                log.warning("ray runner: %s", text)
                return
            with self._lock:
                self._state, self._error = "ready", None
                self._cluster, self._cluster_at = cluster, time.monotonic()
            log.info("ray runner: connected to %s", cluster.describe())

        threading.Thread(target=work, name="fmhub-ray-connect", daemon=True).start()

    def _refresh_in_background(self) -> None:
        with self._lock:
            if self._refreshing or time.monotonic() - self._cluster_at < CAPACITY_TTL_S:
                return
            self._refreshing = True

        def work() -> None:
            try:
                if raycluster.probe(self._address() or "", timeout_s=1.0) is None:
                    cluster = raycluster.cluster_resources(self._address())
                    with self._lock:
                        self._cluster, self._cluster_at = cluster, time.monotonic()
            except Exception:  # noqa: BLE001 - the next look tries again; poll judges a lost cluster
                log.debug("ray runner: could not refresh the cluster's resources", exc_info=True)
            finally:
                with self._lock:
                    self._refreshing = False

        threading.Thread(target=work, name="fmhub-ray-resources", daemon=True).start()

    # -- what it offers ---------------------------------------------------------------------------
    def capacity(self) -> Capacity:
        """The cluster's CPUs and GPUs (connects on first use; a look is reused for
        :data:`~fmhub.runners.ray_facts.CAPACITY_TTL_S` seconds): slots ``cpu`` (logical CPUs) and one ``cuda:N`` per GPU.

        Raises:
            RayUnavailableError: no cluster configured, or it does not answer.
        """
        cluster = cached_cluster(self._address())
        gpus = int(cluster.gpus)
        slots = {"cpu": max(int(cluster.cpus), 1), **{f"cuda:{i}": 1 for i in range(gpus)}}
        names = {f"cuda:{i}": cluster.gpu_names[0] for i in range(gpus)} if cluster.gpu_names else {}
        return Capacity(slots=slots, description=cluster.describe(), device_names=names)

    def place(self, job: Job) -> Placement | None:
        """Where ``job`` goes: the cluster once connected (Ray queues it until a node has its
        resources); None while connecting, and None when this scheduler has no cluster configured
        (the job waits for a scheduler that has one: a server refuses a Ray job at submit without
        one); :data:`UNAVAILABLE` (the job fails with the reason) when the configured cluster does
        not answer or has less in all than the job asks."""
        if not self._address():
            return None
        with self._lock:
            if self._state == "ready" and not raycluster.connected():  # dropped: its cluster went away
                self._state = "idle"
            state, error, failed_at = self._state, self._error, self._failed_at
        if state == "failed" and time.monotonic() - failed_at >= self.retry_connect_s and not self.tasks:
            state = "idle"  # try again: the cluster may be up now
        if state == "idle":
            self._connect_in_background()
            return None
        if state == "connecting":
            return None
        if state == "failed":
            return Placement(UNAVAILABLE, {"reason": error or "the Ray cluster does not answer"})
        self._refresh_in_background()
        with self._lock:
            cluster = self._cluster
        too_big = unfit_reason(job_resources(job), cluster) if cluster is not None else None
        if too_big:
            return Placement(UNAVAILABLE, {"reason": too_big})
        return Placement("ray")

    # -- starting and watching ------------------------------------------------------------------
    def start(self, job: Job, placement: Placement, log_path: str) -> JobHandle:
        """Submit ``job`` as one Ray task (returns at once; Ray places it on a node that has its
        resources). The job process gets this node's environment plus the scheduler's ``FMHUB_*``
        settings and ``AWS_*`` variables."""
        now = time.monotonic()
        launch = uuid.uuid4().hex[:12]
        if placement.target == UNAVAILABLE:
            reason = placement.env.get("reason", "the Ray cluster does not answer")
            task = _Task(job.id, None, now, launch, error=reason)
        else:
            try:
                ref = _submit(job, log_path, job_environment(self._address()), launch)
                task = _Task(job.id, ref, now, launch)
            except Exception as exc:  # noqa: BLE001 - the job fails with the reason
                task = _Task(job.id, None, now, launch, error=f"could not submit the job to the Ray cluster at "
                                                               f"{self._address()}: {type(exc).__name__}: {exc}")
        self.tasks[job.id] = task
        return self._handle(task)

    def _handle(self, task: _Task) -> JobHandle:
        return JobHandle(job_id=task.job_id, runner=self.name, target="ray", started_s=task.started_s, pid=None,
                         ref=task)

    def running(self) -> list[JobHandle]:
        """Handles of the tasks not yet reaped."""
        return [self._handle(t) for t in self.tasks.values()]

    def _cluster_lost(self) -> str | None:
        """Why the cluster is gone (checked every ``probe_every_s``), or None while it answers."""
        now = time.monotonic()
        if now - self._probed_at < self.probe_every_s:
            return None
        self._probed_at = now
        address = self._address() or ""
        why = raycluster.probe(address, timeout_s=1.0)
        if why is None:
            return None
        return f"the Ray cluster at {address} does not answer any more ({why}); the job's task is lost"

    def poll(self, handle: JobHandle) -> int | None:
        """The task's result: the job process's exit code, or a nonzero code when the task failed
        (its worker crashed more than ``max_failures`` times, its node or the cluster was lost, it
        was canceled); :meth:`describe_exit` says why. None while it runs."""
        task = self.tasks.get(handle.job_id) or handle.ref
        if task.error is None:
            lost = self._cluster_lost()
            if lost is not None:
                for other in self.tasks.values():  # every task of this cluster is gone with it
                    if other.error is None:
                        other.error = lost
                self._drop_connection()
        if task.error is not None:
            self._last_exit = (FAILED_CODE, task.error)
            return FAILED_CODE
        import ray

        ready, _ = ray.wait([task.ref], timeout=0)
        if not ready:
            return None
        try:
            code = int(ray.get(task.ref, timeout=0))
        except Exception as exc:  # noqa: BLE001 - every failure of the task ends the job with its cause
            code, text = failure(exc)
            self._last_exit = (code, text)
            return code
        self._last_exit = (code, describe_process_exit(code) + " (on the Ray cluster)")
        return code

    def _drop_connection(self) -> None:
        """Forget a cluster that is gone (``ray.shutdown`` in the background, so this process is
        not ended by Ray when its cluster stays away); the next Ray job connects again."""
        with self._lock:
            self._state, self._error, self._failed_at = "idle", None, time.monotonic()
            self._cluster = None
        threading.Thread(target=raycluster.disconnect, name="fmhub-ray-disconnect", daemon=True).start()

    def forget(self, handle: JobHandle) -> None:
        """Drop a reaped task."""
        self.tasks.pop(handle.job_id, None)

    def stop(self, handle: JobHandle, grace_s: float) -> None:
        """``ray.cancel`` on the first call (the task sends SIGTERM to its job process, which
        checkpoints and records itself canceled); ``ray.cancel(force=True)`` (its worker ends) on a
        call ``grace_s`` seconds later, or at once for ``grace_s=0``."""
        task = self.tasks.get(handle.job_id) or handle.ref
        if task.ref is None or task.error is not None:
            return
        import ray

        now = time.monotonic()
        try:
            if grace_s <= 0:
                ray.cancel(task.ref, force=True)
                task.killed = True
            elif task.stop_first_s is None:
                ray.cancel(task.ref)
                task.stop_first_s = now
            elif not task.killed and now - task.stop_first_s >= grace_s:
                ray.cancel(task.ref, force=True)
                task.killed = True
        except Exception:  # noqa: BLE001 - a task that just ended, or a cluster gone: poll says which
            log.debug("ray runner: cancel of job %s's task failed", handle.job_id, exc_info=True)

    def describe_exit(self, code: int) -> str:
        """How the job's task ended, in words (the last reaped task's cause)."""
        if self._last_exit is not None and self._last_exit[0] == code:
            return self._last_exit[1]
        return describe_process_exit(code)

    # -- lost jobs --------------------------------------------------------------------------------
    def is_lost(self, job: Job, now: datetime) -> bool:
        """A running Ray job is lost when the scheduler that started it is gone (Ray ends the tasks
        of a driver that disconnected): on this machine, its process no longer runs; on another
        machine, its heartbeat is older than ``stale_after_s``."""
        if job.id in self.tasks:
            return False
        role, _, rest = (job.worker or "::").partition(":")
        host, _, pid = rest.rpartition(":")
        if host == self.host and role != "foreground":
            return not (pid.isdigit() and pid_alive(int(pid), must_contain="fmhub"))
        if job.heartbeat_at is None:
            return False
        beat = job.heartbeat_at if job.heartbeat_at.tzinfo else job.heartbeat_at.replace(tzinfo=timezone.utc)
        return (now - beat).total_seconds() > self.stale_after_s


_REMOTE: dict[str, Any] = {}


def _submit(job: Job, log_path: str, env: dict[str, str], launch: str) -> Any:
    """Submit :func:`~fmhub.runners.ray_task.run_job_task` for ``job`` with its resources."""
    import ray

    from fmhub.runners.ray_task import run_job_task

    if "task" not in _REMOTE:
        _REMOTE["task"] = ray.remote(run_job_task)
    res = job_resources(job)
    coordinator = res["num_workers"] > 1  # the Ray Train workers ask for the resources themselves
    options: dict[str, Any] = {
        "num_cpus": 0 if coordinator else res["num_cpus"],
        "num_gpus": 0 if coordinator else res["num_gpus"],
        "max_retries": res["max_failures"], "retry_exceptions": False, "name": f"fmhub-job-{job.id}",
    }
    if res["custom"] and not coordinator:
        options["resources"] = res["custom"]
    return _REMOTE["task"].options(**options).remote(job.id, log_path, env, launch)


__all__ = ["RayRunner", "job_environment", "job_resources", "unfit_reason"]
