"""The deployment spec: what ``fmhub endpoints deploy``, the REST body and the deploy form fill
(re-exported by :mod:`fmhub.services.specs`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DeploymentSpec(BaseModel):
    """A deployment of a model to an online endpoint (CLI flags, REST body and wizard alike).

    Attributes:
        name: Deployment name within the endpoint (``blue``, ``green`` ...).
        model: Catalog name or workspace ``name[:version]`` (latest when no version).
        task: The task (default: the model version's task; needed for catalog models).
        instances: Worker processes, each with its own copy of the model (backend ``local``). None
            (default): chosen from the core count and the model size
            (:func:`fmhub.serving.sizing.default_instances`: one single-threaded instance per core
            for a model up to 1 GiB), recorded on the deployment.
        device: ``cpu`` (default), ``cuda``, ``cuda:N`` or ``auto``. With backend ``ray``, ``cuda``
            gives each replica one GPU of the cluster.
        runtime: ``auto`` (default: the fastest CPU runtime whose headline metric on the model's stored
            test predictions stays within 0.5 points of fp32, else fp32; the deployment says which
            and why, see :mod:`fmhub.serving.runtimes`), ``pytorch`` (fp32 on the CPU, bf16 on a
            GPU), ``pytorch-bf16`` (CPU, bf16 weights), ``pytorch-int8`` (CPU; dynamic int8
            quantisation of the linear layers), ``onnx`` (CPU, ONNX Runtime, extra ``fmhub[onnx]``;
            text and token classification), or ``vllm`` (chat deployments on a CUDA GPU with the
            ``fmhub[vllm]`` extra: vLLM's engine in the instance).
        max_batch_size: Inputs per forward pass at most (default 32); for a chat deployment, the
            conversations one instance decodes together.
        max_batch_wait_ms: How long the first request of a batch waits for others (default 10,
            LitServe's default ``batch_timeout`` order of magnitude).
        max_queue: Requests waiting at most before the endpoint answers 429 (default 256); for a chat
            deployment, conversations waiting beyond the running batches.
        request_timeout_ms: A request not answered in this time answers 504 (default 30000).
        backend: The serving backend that hosts it: ``local`` (instance processes of the server)
            or ``ray`` (a Ray Serve application on the cluster at ``FMHUB_RAY_ADDRESS``).
        min_replicas: Backend ``ray``: replicas the application keeps at least (default 1).
        max_replicas: Backend ``ray``: replicas autoscaling may add up to (default: ``min_replicas``,
            no autoscaling).
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="blue", pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    model: str = Field(min_length=1)
    task: str | None = None
    instances: int | None = Field(default=None, ge=1, le=16)
    device: str = "cpu"
    runtime: Literal["auto", "pytorch", "pytorch-bf16", "pytorch-int8", "onnx", "vllm"] = "auto"
    max_batch_size: int = Field(default=32, ge=1, le=512)
    max_batch_wait_ms: float = Field(default=10.0, ge=0, le=1000)
    max_queue: int = Field(default=256, ge=1, le=100000)
    request_timeout_ms: float = Field(default=30000.0, ge=100, le=600000)
    backend: Literal["local", "ray"] = "local"
    min_replicas: int | None = Field(default=None, ge=1, le=256)
    max_replicas: int | None = Field(default=None, ge=1, le=256)

    @model_validator(mode="after")
    def _replicas_need_ray(self) -> DeploymentSpec:
        given = [f for f in ("min_replicas", "max_replicas") if getattr(self, f) is not None]
        if self.backend == "local":
            if given:
                raise ValueError(f"{' and '.join(given)} apply to backend ray only; a local deployment "
                                 "runs a fixed number of instance processes: use instances (--instances) "
                                 "or --backend ray")
            return self
        if self.instances not in (None, 1):
            raise ValueError("instances applies to backend local only; a ray deployment autoscales its replicas: "
                             "use min_replicas and max_replicas (--min-replicas, --max-replicas)")
        if self.min_replicas is None:
            self.min_replicas = 1
        if self.max_replicas is None:
            self.max_replicas = max(self.min_replicas, 1)
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"max_replicas ({self.max_replicas}) is below min_replicas ({self.min_replicas})")
        return self


__all__ = ["DeploymentSpec"]
