"""Checks of where a job will run, made when it is submitted and before any data is read: its
``compute`` is configured and answers, its ``resources`` fit the cluster, its ``device`` exists."""

from __future__ import annotations

import os

from fmhub import raycluster
from fmhub.errors import ComputeUnavailableError, SpecError
from fmhub.services.compute_spec import ComputeResources
from fmhub.services.finetune_options import check_device


def on_ray_node() -> bool:
    """Whether this process is a job process started by a Ray task (the cluster was checked when
    the job was submitted; it is not asked again)."""
    from fmhub.runners.ray_task import PLACEMENT_ENV

    return bool(os.environ.get(PLACEMENT_ENV))


def check_compute(compute: str, resources: ComputeResources, device: str | None) -> str:
    """Check a job's compute, resources and device.

    ``local``: the device against this machine's runner (:func:`check_device`). ``ray``: a cluster
    is configured (``FMHUB_RAY_ADDRESS``) and answers; each resource per worker, and in all for
    ``num_workers`` workers, is at most what the cluster has in all; a ``cuda`` device needs a
    cluster with GPUs and ``resources.num_gpus`` of at least 1.

    Args:
        compute: ``local`` or ``ray``.
        resources: What the job asks of a cluster.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (None: ``auto``).

    Returns:
        The device, normalised.

    Raises:
        ComputeUnavailableError: ``ray`` with no cluster configured (names ``FMHUB_RAY_ADDRESS``),
            Ray not installed, or a cluster that does not answer (HTTP 503).
        SpecError: a resource the cluster does not have (all listed: the field, what was asked,
            what the cluster has), or a device it does not have.
    """
    if compute != "ray":
        return check_device(compute, device)
    if on_ray_node():
        return (device or "auto").strip().lower()
    if not raycluster.configured_address():
        raise ComputeUnavailableError(
            "compute 'ray' needs a Ray cluster, and none is configured (FMHUB_RAY_ADDRESS is not set)",
            hint=raycluster.NO_CLUSTER_HINT + "; or run the job on this machine with --compute local")
    cluster = raycluster.cluster_resources()
    problems = resource_problems(resources, cluster)
    requested = (device or "auto").strip().lower()
    if (requested == "cuda" or requested.startswith("cuda:")) and cluster.gpus > 0 and resources.num_gpus <= 0:
        problems.append(f"device '{requested}' on compute 'ray' needs a GPU per worker: set resources.num_gpus "
                        f"(--num-gpus 1)")
    if problems:
        raise SpecError("the job asks for more than the Ray cluster has: " + "; ".join(problems),
                        hint=f"{cluster.describe()}; ask for less (--num-cpus, --num-gpus, --resource, "
                             f"--num-workers), or add nodes that have it")
    return check_device("ray", device)


def resource_problems(resources: ComputeResources, cluster: raycluster.ClusterResources) -> list[str]:
    """Each resource of ``resources`` the cluster has less of than asked, one line each: the
    field, what was asked (per worker, and in all for several workers) and what the cluster has."""
    workers = resources.num_workers
    asked = [("resources.num_cpus", "CPUs", resources.num_cpus, cluster.cpus),
             ("resources.num_gpus", "GPUs", resources.num_gpus, cluster.gpus)]
    asked += [(f"resources.custom.{name}", f"'{name}'", float(amount), cluster.custom.get(name, 0.0))
              for name, amount in resources.custom.items()]
    problems = []
    for field_name, what, amount, has in asked:
        if amount > has + 1e-9:
            problems.append(f"{field_name}: asked {amount:g} {what} per worker, the cluster has {has:g} in all"
                            + ("" if has or what in ("CPUs", "GPUs") else " (no node declares it)"))
        elif workers > 1 and amount * workers > has + 1e-9:
            problems.append(f"resources.num_workers: {workers} workers x {amount:g} {what} = "
                            f"{amount * workers:g}, the cluster has {has:g} in all")
    return problems


__all__ = ["check_compute", "on_ray_node", "resource_problems"]
