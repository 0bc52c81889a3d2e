"""Fine-tuning on a Ray cluster: a ``compute: ray`` job with more than one worker trains with Ray
Train (distributed data parallel) from inside its job process; evaluation and registration stay in
the job process. Nothing here imports ray: :mod:`fmhub.raycluster` and
:mod:`fmhub.training.ray_train` do, when a job needs them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fmhub.entities import Job
from fmhub.services.context import Context
from fmhub.services.specs import FinetuneSpec
from fmhub.tasks.base import Task
from fmhub.training.progress import ProgressSink

RAY_TRAIN_DIR = "ray-train"
"""Ray Train's storage in a job's folder (``<folder>/ray-train/<job id>/checkpoint_*``)."""
RAY_PIDS_FILE = "ray-workers.txt"
"""File in a job's folder where each Ray Train worker writes ``<rank> <pid>`` when it starts training."""


def is_distributed(spec: FinetuneSpec) -> bool:
    """Whether a fine-tune trains on several Ray Train workers (``compute: ray``, ``num_workers`` > 1)."""
    return spec.compute == "ray" and spec.resources.num_workers > 1


def compute_record(spec: FinetuneSpec) -> dict[str, Any]:
    """Where a fine-tune ran, for its lineage: ``{"compute": "local"}``, or for Ray the resources
    asked (``num_workers``, ``num_cpus``, ``num_gpus`` per worker, ``custom``)."""
    if spec.compute != "ray":
        return {"compute": spec.compute}
    r = spec.resources
    return {"compute": spec.compute, "num_workers": r.num_workers, "num_cpus": r.num_cpus,
            "num_gpus": r.num_gpus, "custom": dict(r.custom)}


def train_on_ray(ctx: Context, spec: FinetuneSpec, job: Job, task: Task, model: Any, tokenizer: Any,
                 train_ds: Any, eval_ds: Any, info: Any, hp: Any, device: Any, sink: ProgressSink,
                 checkpoint: Path | None) -> Any:
    """Train on ``spec.resources.num_workers`` Ray Train workers (checkpoints: :func:`ray_storage`),
    as :func:`fmhub.training.trainer.train_model` trains in this process.

    Returns:
        The :class:`~fmhub.training.trainer.TrainOutcome` (the model loaded here).

    Raises:
        RayUnavailableError: no cluster configured, or it does not answer.
        TrainingCanceled: the job was canceled while it trained (its checkpoint kept).
    """
    from fmhub import raycluster
    from fmhub.services.worker_hooks import JobWorkerHooks
    from fmhub.training.ray_train import train_distributed

    raycluster.connect()
    folder = Path(job.folder)
    r = spec.resources
    storage_path, storage_fs = ray_storage(ctx, job)
    return train_distributed(task, model, tokenizer, train_ds, eval_ds, info, hp, folder / "checkpoints", device,
                             sink, resume_from_checkpoint=str(checkpoint) if checkpoint else None,
                             hooks=JobWorkerHooks(settings=ctx.settings, job=job), num_workers=r.num_workers,
                             num_cpus=r.num_cpus, num_gpus=r.num_gpus, custom=dict(r.custom),
                             max_failures=r.max_failures, storage_path=storage_path, storage_filesystem=storage_fs,
                             run_name=job.id, pid_file=str(folder / RAY_PIDS_FILE))


def ray_storage(ctx: Context, job: Job) -> tuple[str, Any]:
    """Where Ray Train keeps a job's checkpoints: ``(<job folder>/ray-train, None)`` with a local
    artifact store; with a bucket, ``jobs/<id>/ray-train`` in it and the bucket's filesystem, so a
    worker group restarted on another node finds them (every node needs its own access to the bucket)."""
    if ctx.artifacts.is_local:
        return str(Path(job.folder) / RAY_TRAIN_DIR), None
    return ctx.artifacts.arrow_location(ctx.artifacts.job_url(job.id, RAY_TRAIN_DIR))


__all__ = ["RAY_PIDS_FILE", "RAY_TRAIN_DIR", "compute_record", "is_distributed", "ray_storage", "train_on_ray"]
