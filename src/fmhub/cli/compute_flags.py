"""The compute flags of ``fmhub finetune`` and ``fmhub evaluate``: where a job runs and what it asks
of a Ray cluster (Ray's names and meanings; the spec's ``compute`` and ``resources``)."""

from __future__ import annotations

from typing import Any, Optional

from fmhub.cli.common import out

COMPUTE_HELP = ("Where the job runs: local (this machine; default) or ray (the Ray cluster at FMHUB_RAY_ADDRESS; "
                "without --submit the job is queued for the cluster, not run in this terminal).")
NUM_WORKERS_HELP = ("--compute ray: training processes (Ray Train's num_workers; default 1). 1: the job runs as one "
                    "Ray task on a node that has the resources; more: distributed data parallel, each worker with "
                    "--num-cpus/--num-gpus/--resource. Evaluate jobs take 1.")
NUM_CPUS_HELP = "--compute ray: logical CPUs per worker (Ray's num_cpus; default 1)."
NUM_GPUS_HELP = "--compute ray: GPUs per worker (Ray's num_gpus; default 0 = train on the CPU)."
RESOURCE_HELP = ("--compute ray: a custom resource per worker, NAME=AMOUNT, repeatable (Ray's resources, e.g. "
                 "--resource special_node=1): the job lands on nodes started with `ray start --resources`.")
MAX_FAILURES_HELP = ("--compute ray: times the job is retried from its last checkpoint after its Ray worker or "
                     "node is lost (Ray Train's FailureConfig max_failures; the task's max_retries; default 2).")


def parse_resource_options(values: Optional[list[str]]) -> dict[str, Any]:
    """``["special=1", "tpu=0.5"]`` -> ``{"special": 1.0, "tpu": 0.5}``; a value that is not a
    number is left as given, for the spec to report.

    Raises:
        SpecError: an option is not ``NAME=AMOUNT``.
    """
    from fmhub.errors import SpecError

    custom: dict[str, Any] = {}
    for value in values or []:
        name, sep, amount = value.partition("=")
        if not sep or not name.strip():
            raise SpecError(f"--resource '{value}' is not NAME=AMOUNT", hint="e.g. --resource special_node=1")
        try:
            custom[name.strip()] = float(amount)
        except ValueError:
            custom[name.strip()] = amount.strip()
    return custom


def compute_overrides(flags: dict[str, Any]) -> dict[str, Any]:
    """The ``compute`` and ``resources`` keys the flags set (only those given)."""
    over: dict[str, Any] = {}
    if flags.get("compute") is not None:
        over["compute"] = flags["compute"]
    resources = {k: flags[k] for k in ("num_workers", "num_cpus", "num_gpus", "max_failures")
                 if flags.get(k) is not None}
    if flags.get("resource"):
        resources["custom"] = parse_resource_options(flags["resource"])
    if resources:
        over["resources"] = resources
    return over


def print_queued_on_cluster(job: Any) -> None:
    """Say that a ``compute: ray`` job run without ``--submit`` was queued for the cluster."""
    from fmhub.raycluster import configured_address

    out.print(f"job [bold]{job.id}[/] queued for the Ray cluster at {configured_address()} ("
              f"an fmhub serve or fmhub worker with FMHUB_RAY_ADDRESS set starts it)", highlight=False)
    out.print(f"follow it: fmhub jobs show {job.id}   (wait: fmhub jobs wait {job.id}; "
              f"log: fmhub jobs logs {job.id} --follow)", highlight=False)


__all__ = ["compute_overrides", "parse_resource_options", "print_queued_on_cluster"]
