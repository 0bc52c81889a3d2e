"""What a job asks of a cluster: the ``resources`` of a ``compute: ray`` job spec."""

from __future__ import annotations

import math
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

RAY_OWN_RESOURCES = ("CPU", "GPU", "memory", "object_store_memory")
"""Resource names Ray keeps for itself (asked with ``num_cpus``/``num_gpus``, never as custom)."""

CUSTOM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
MAX_CUSTOM = 16
GRANULARITY = 1e-4
"""Ray's resource precision: amounts are multiples of 0.0001."""


def _ray_amount(name: str, value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0 (got {value})")
    if value and (value < GRANULARITY or abs(round(value / GRANULARITY) * GRANULARITY - value) > 1e-9):
        raise ValueError(f"{name} must be a multiple of {GRANULARITY:g} (Ray's precision; got {value})")
    return value


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

    @field_validator("num_cpus", "num_gpus")
    @classmethod
    def _precision(cls, value: float, info) -> float:  # noqa: ANN001 - pydantic's ValidationInfo
        return _ray_amount(info.field_name, value)

    @field_validator("custom")
    @classmethod
    def _custom_names(cls, value: dict[str, float]) -> dict[str, float]:
        if len(value) > MAX_CUSTOM:
            raise ValueError(f"at most {MAX_CUSTOM} custom resources (got {len(value)})")
        for name, amount in value.items():
            if name in RAY_OWN_RESOURCES or name.startswith(("node:", "accelerator_type:")):
                raise ValueError(f"'{name[:64]}' is Ray's own resource: ask for CPUs and GPUs with num_cpus and "
                                 "num_gpus; custom resources are those nodes declare with `ray start --resources`")
            if not CUSTOM_NAME.match(name):
                raise ValueError(f"custom resource name '{name[:64]}' is not a name (letters, digits, '_', '.', "
                                 "'-'; up to 64 characters)")
            if amount <= 0:
                raise ValueError(f"custom resource {name} must be > 0 (got {amount})")
            _ray_amount(f"custom resource {name}", amount)
        return value

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
