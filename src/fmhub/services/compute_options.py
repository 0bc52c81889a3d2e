"""Where a job can run, for forms: the ``local`` machine and, when ``FMHUB_RAY_ADDRESS`` is set, the
Ray cluster with its CPUs and GPUs (or why Ray is not offered)."""

from __future__ import annotations

import time
from typing import Any

CLUSTER_TTL_S = 15.0
"""How long a cluster's resources are reused before the form asks the cluster again."""

_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def ray_target() -> dict[str, Any]:
    """The Ray cluster as a choice (``available``, ``detail``: what it offers or why it is not
    offered; ``cpus``, ``gpus``, ``nodes``, ``custom`` when it answers), for job and deploy forms."""
    from fmhub import raycluster
    from fmhub.errors import FmhubError

    address = raycluster.configured_address()
    target: dict[str, Any] = {"value": "ray", "label": "Ray cluster", "available": False}
    if not address:
        target["detail"] = ("not configured on this server: set FMHUB_RAY_ADDRESS (and PostgreSQL and a bucket "
                            "artifact store for a cluster of several machines) before `fmhub serve`")
        return target
    cached = _cache.get(address)
    if cached is not None and time.monotonic() - cached[0] < CLUSTER_TTL_S:
        return cached[1]
    try:
        resources = raycluster.cluster_resources(address)
    except FmhubError as exc:
        target["detail"] = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
    else:
        target.update(available=True, detail=resources.describe(), cpus=resources.cpus, gpus=resources.gpus,
                      nodes=resources.nodes, custom=resources.custom)
    _cache[address] = (time.monotonic(), target)
    return target


def compute_targets() -> list[dict[str, Any]]:
    """The computes a job may name, for the wizard's compute step.

    Returns:
        ``[{"value": "local", "label", "available": True, "detail"}, {"value": "ray", "label",
        "available", "detail", "cpus", "gpus", "nodes", "custom"}]``; ``detail`` says what the
        cluster offers (``Ray cluster 127.0.0.1:6379: 2 nodes, 8 CPUs, 1 GPUs``) or why Ray is not
        offered (not configured, not installed, not answering). Ray's figures are reused for
        :data:`CLUSTER_TTL_S` seconds.
    """
    from fmhub.services.scheduler import runner_capacity

    local = {"value": "local", "label": "This machine (local)", "available": True,
             "detail": runner_capacity("local").description}
    return [local, ray_target()]


__all__ = ["compute_targets", "ray_target"]
