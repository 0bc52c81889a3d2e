"""What a ``ray`` job asks of its cluster, what its job process gets, and how its task ended: the
plain helpers of :mod:`fmhub.runners.ray`."""

from __future__ import annotations

import os
import time
from typing import Any

from fmhub import raycluster
from fmhub.entities import Job

FAILED_CODE = 1
"""Exit code reported for a task that failed on the cluster (worker crash after its retries, node
or cluster lost, too big for the cluster)."""

CANCELED_CODE = -15
"""Exit code reported for a task canceled through ``ray.cancel`` (as SIGTERM for a process)."""

ENV_PREFIXES = ("FMHUB_", "AWS_")
"""Variables of the scheduler's environment passed on to a job process on a node."""

CAPACITY_TTL_S = 10.0
"""Seconds a look at the cluster's resources is reused."""

_CLUSTER_CACHE: dict[str, tuple[float, Any]] = {}


def cached_cluster(address: str | None) -> Any:
    """:func:`fmhub.raycluster.cluster_resources`, reused for :data:`CAPACITY_TTL_S` seconds."""
    key = address or raycluster.configured_address() or ""
    hit = _CLUSTER_CACHE.get(key)
    if hit is not None and time.monotonic() - hit[0] < CAPACITY_TTL_S and raycluster.connected():
        return hit[1]
    cluster = raycluster.cluster_resources(address)
    _CLUSTER_CACHE[key] = (time.monotonic(), cluster)
    return cluster


def job_resources(job: Job) -> dict[str, Any]:
    """The ``resources`` of a job's spec with Ray's defaults filled in (``num_workers`` 1,
    ``num_cpus`` 1, ``num_gpus`` 0, ``custom`` {}, ``max_failures`` 2)."""
    given = job.spec.get("resources") or {}
    return {"num_workers": int(given.get("num_workers", 1)), "num_cpus": float(given.get("num_cpus", 1.0)),
            "num_gpus": float(given.get("num_gpus", 0.0)), "custom": dict(given.get("custom") or {}),
            "max_failures": int(given.get("max_failures", 2))}


def unfit_reason(resources: dict[str, Any], cluster: Any) -> str | None:
    """Why a job asking ``resources`` can never run on ``cluster`` (a
    :class:`~fmhub.raycluster.ClusterResources`): more CPUs, GPUs or of a custom resource per
    worker, or in all, than the cluster has; None when it fits."""
    workers = resources["num_workers"]
    asks = {"CPUs": resources["num_cpus"], "GPUs": resources["num_gpus"]}
    has = {"CPUs": cluster.cpus, "GPUs": cluster.gpus}
    for key, amount in resources["custom"].items():
        asks[f"'{key}'"] = float(amount)
        has[f"'{key}'"] = cluster.custom.get(key, 0.0)
    for what, amount in asks.items():
        if amount * workers > has[what] + 1e-9:
            per = f"{amount:g} {what} per worker x {workers} workers" if workers > 1 else f"{amount:g} {what}"
            return f"the job asks for {per}, but the Ray cluster has {has[what]:g} {what} in all ({cluster.describe()})"
    return None


def job_environment(address: str | None) -> dict[str, str]:
    """What a job process on a node gets on top of that node's environment: this process's
    ``FMHUB_*`` and ``AWS_*`` variables, and the settings in force (``FMHUB_HOME``,
    ``FMHUB_DATABASE_URL``, ``FMHUB_ARTIFACTS_URL``, ``FMHUB_RAY_ADDRESS``)."""
    from fmhub.config import get_settings
    from fmhub.runners.local import PARENT_PID_ENV

    settings = get_settings()
    env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES) and k != PARENT_PID_ENV}
    env["FMHUB_HOME"] = str(settings.home)
    env["FMHUB_DATABASE_URL"] = settings.db_url
    if settings.artifacts_url:
        env["FMHUB_ARTIFACTS_URL"] = settings.artifacts_url
    if address:
        env["FMHUB_RAY_ADDRESS"] = address
    return env


def failure(exc: BaseException) -> tuple[int, str]:
    """The exit code and words for a task that raised ``exc`` on ``ray.get``."""
    import ray.exceptions as rex

    first = (str(exc).strip().splitlines() or [""])[0][:300]
    if isinstance(exc, rex.TaskCancelledError):
        return CANCELED_CODE, "canceled on the Ray cluster (ray.cancel)"
    if isinstance(exc, rex.NodeDiedError):
        return FAILED_CODE, f"the Ray node running the job was lost, and its retries were used up: {first}"
    if isinstance(exc, rex.WorkerCrashedError):
        return FAILED_CODE, ("the Ray worker running the job died (killed, or out of memory) more times than "
                             "resources.max_failures allows")
    if isinstance(exc, rex.OutOfMemoryError):
        return FAILED_CODE, f"the Ray node ran out of memory: {first}"
    if isinstance(exc, (rex.RaySystemError, rex.GetTimeoutError, rex.ObjectLostError)):
        return FAILED_CODE, f"the Ray cluster lost the job's task: {type(exc).__name__}: {first}"
    return FAILED_CODE, f"the job's Ray task failed: {type(exc).__name__}: {first}"


__all__ = ["CANCELED_CODE", "CAPACITY_TTL_S", "FAILED_CODE", "cached_cluster", "failure", "job_environment",
           "job_resources", "unfit_reason"]
