"""What a job asks of a cluster: the ``resources`` of a ``compute: ray`` job spec."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ComputeResources(BaseModel):
    """What a job asks of a cluster (``compute: ray``); Ray's names and meanings.

    Attributes:
        num_workers: Training processes. 1: the job runs as one Ray task on a node that has the
            resources; more: distributed data parallel through Ray Train (``ScalingConfig``), each
            worker with ``num_cpus``/``num_gpus``/``custom``. Evaluate and import jobs take 1.
        num_cpus: Logical CPUs per worker (Ray's ``num_cpus``).
        num_gpus: GPUs per worker (Ray's ``num_gpus``; 0 trains on the CPU).
        custom: Custom resources per worker (Ray's ``resources``: ``{"special_node": 1}``), to land
            on the nodes that declare them (``ray start --resources``).
        max_failures: Times a job is restarted from its last checkpoint after a worker or node is
            lost (Ray Train's ``FailureConfig(max_failures)``; for one worker the task's retries).
    """

    model_config = ConfigDict(extra="forbid")

    num_workers: int = Field(default=1, ge=1, le=256)
    num_cpus: float = Field(default=1.0, ge=0, le=4096, allow_inf_nan=False)
    num_gpus: float = Field(default=0.0, ge=0, le=256, allow_inf_nan=False)
    custom: dict[str, float] = Field(default_factory=dict)
    max_failures: int = Field(default=2, ge=0, le=100)

    def is_default(self) -> bool:
        """Whether nothing was asked beyond the defaults (what a ``local`` job must have)."""
        return self == ComputeResources()


def check_resources(compute: str, resources: ComputeResources) -> None:
    """Refuse resources on a job whose compute is not ``ray``.

    Raises:
        ValueError: resources beyond the defaults with ``compute`` other than ``ray`` (a pydantic
            validator turns it into a spec problem).
    """
    if compute != "ray" and not resources.is_default():
        raise ValueError("resources apply to compute 'ray' only (set --compute ray, or drop the resource flags)")


__all__ = ["ComputeResources", "check_resources"]
