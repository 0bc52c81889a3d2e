"""Distributed data-parallel fine-tuning on a Ray cluster through Ray Train's ``TorchTrainer``.

Each Ray Train worker builds the same ``transformers.Trainer`` as a local job
(:func:`fmhub.training.trainer.build_trainer`), adds Ray's report callback and
``prepare_trainer``, and trains its share of every batch. Checkpoints are reported to Ray Train's
storage; when a worker or node is lost, Ray restarts the worker group (``FailureConfig``) and the
workers continue from the last reported checkpoint. The rank-0 worker sends progress events to
the job; every worker asks whether the job was canceled, and all agree on the step they stop at.

``ray`` is imported inside the functions only: nothing imports it unless a Ray job runs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Protocol

from fmhub.devices import DeviceChoice
from fmhub.tasks.base import LabelInfo, Task
from fmhub.training.cancel import CancelCallback, TrainingCanceled
from fmhub.training.hyperparameters import Hyperparameters
from fmhub.training.progress import ProgressSink
from fmhub.training.trainer import TrainOutcome, build_trainer, run_trainer

log = logging.getLogger(__name__)

MODEL_DIR = "model"
"""Folder of the final checkpoint that holds the trained (best) weights (``weights.pt``)."""
OUTCOME_FILE = "outcome.json"
"""File of the final checkpoint with the training figures of :class:`TrainOutcome` (no model)."""
HF_CHECKPOINT = "checkpoint"
"""Folder of a Ray Train checkpoint that holds the Trainer's checkpoint (Ray's report callback)."""


class WorkerHooks(Protocol):
    """What a Ray Train worker needs from the job it trains for; sent to every worker, so it must
    pickle (a plain object naming the job and the settings).
    """

    def sink(self) -> ProgressSink:
        """The job's progress sink (built in the rank-0 worker)."""

    def should_stop(self) -> Callable[[], bool]:
        """True once a cancel of the job was requested (asked in every worker)."""

    def job_log(self) -> AbstractContextManager[Any]:
        """Send the worker's log records to the job's log while the block runs (rank 0)."""


class _NullSink:
    """Progress sink of the workers other than rank 0: their progress is rank 0's."""

    def event(self, kind: str, data: dict[str, Any]) -> None:  # noqa: D102
        pass

    def step(self, step: int, total: int, loss: float | None) -> None:  # noqa: D102
        pass


class AgreedCancelCallback(CancelCallback):
    """:class:`CancelCallback` whose processes agree on the step to stop at: after every step each
    one says whether it saw the cancel, and all stop once any did (an ``all_reduce`` of one number),
    so no process waits in a collective that the others have left."""

    def _ask(self) -> bool:
        import torch
        import torch.distributed as dist

        seen = super()._ask()
        if not (dist.is_available() and dist.is_initialized()):
            return seen
        from ray.train.torch import get_device

        device = get_device() if dist.get_backend() == "nccl" else torch.device("cpu")
        flag = torch.tensor([1 if seen else 0], dtype=torch.int32, device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())


def _outcome_dict(outcome: TrainOutcome) -> dict[str, Any]:
    return {"train_runtime_s": outcome.train_runtime_s, "eval_runtime_s": outcome.eval_runtime_s,
            "train_samples_per_s": outcome.train_samples_per_s, "global_step": outcome.global_step,
            "best_checkpoint": outcome.best_checkpoint, "best_metric": outcome.best_metric,
            "log_history": outcome.log_history, "stopped_early": outcome.stopped_early,
            "canceled_at": outcome.canceled_at, "workers": outcome.workers, "bf16": outcome.bf16}


def _train_loop(config: dict[str, Any]) -> None:
    """The function every Ray Train worker runs (``train_loop_per_worker``)."""
    import ray.train
    import torch
    from ray.train import Checkpoint
    from ray.train.huggingface.transformers import RayTrainReportCallback, prepare_trainer

    from fmhub.devices import choose_device

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    hooks: WorkerHooks = config["hooks"]
    sink: ProgressSink = hooks.sink() if rank == 0 else _NullSink()
    logs = hooks.job_log() if rank == 0 else nullcontext()
    hp: Hyperparameters = config["hp"]
    output_dir = Path(config["output_dir"])
    output_dir.mkdir(parents=True, exist_ok=True)
    device = choose_device("cuda" if config["use_gpu"] else "cpu")
    with logs:
        restored = ray.train.get_checkpoint()
        with (restored.as_directory() if restored is not None else nullcontext(None)) as folder:
            done = _read_outcome(folder)
            if done is not None and done.get("canceled_at") is None:
                # the group was restarted after the final report: report it again, train no more
                ray.train.report({"fmhub_outcome": done}, checkpoint=Checkpoint.from_directory(folder)
                                 if rank == 0 else None)
                return
            resume: str | None = config["resume_from_checkpoint"]
            if folder is not None and (Path(folder) / HF_CHECKPOINT).is_dir():
                resume = str(Path(folder) / HF_CHECKPOINT)
            if resume is not None and rank == 0:
                step = _checkpoint_step(Path(resume))
                sink.event("stage", {"stage": "resuming", "from_step": step, "workers": world,
                                     "restarted": folder is not None})
            built = build_trainer(config["task"], config["model"], config["tokenizer"], config["train_ds"],
                                  config["eval_ds"], config["info"], hp, output_dir, device, sink,
                                  should_stop=hooks.should_stop(), world_size=world,
                                  cancel_class=AgreedCancelCallback,
                                  extra_callbacks=(RayTrainReportCallback(),))
            built.trainer = prepare_trainer(built.trainer)
            if config.get("pid_file"):  # lets an operator (or a test) find the workers
                with open(config["pid_file"], "a", encoding="utf-8") as f:
                    f.write(f"{rank} {os.getpid()}\n")
            outcome = run_trainer(built, hp, sink, resume_from_checkpoint=resume)
        # The final checkpoint (rank 0's) holds the outcome, and either the trained weights or,
        # after a cancel, the cancel's Trainer checkpoint (a resumed job goes on from it).
        summary = _outcome_dict(outcome)
        with tempfile.TemporaryDirectory(prefix="fmhub-final-") as tmp:
            final = None
            if rank == 0:
                if outcome.canceled_at is not None:
                    from transformers.trainer_utils import get_last_checkpoint

                    last = get_last_checkpoint(str(output_dir))
                    if last is not None:
                        shutil.copytree(last, Path(tmp) / HF_CHECKPOINT)
                else:
                    (Path(tmp) / MODEL_DIR).mkdir()
                    state = {k: v.detach().cpu() for k, v in built.trainer.model.state_dict().items()}
                    torch.save(state, Path(tmp) / MODEL_DIR / "weights.pt")
                (Path(tmp) / OUTCOME_FILE).write_text(json.dumps(summary, default=str), encoding="utf-8")
                final = Checkpoint.from_directory(tmp)
            ray.train.report({"fmhub_outcome": summary}, checkpoint=final)


def _read_outcome(folder: str | Path | None) -> dict[str, Any] | None:
    """The outcome a final checkpoint holds (None: a Trainer checkpoint, or no checkpoint)."""
    if folder is None or not (Path(folder) / OUTCOME_FILE).is_file():
        return None
    return json.loads((Path(folder) / OUTCOME_FILE).read_text(encoding="utf-8"))


def _checkpoint_step(path: Path) -> int | None:
    try:
        return int(json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))["global_step"])
    except (OSError, ValueError, KeyError):
        tail = path.name.rsplit("-", 1)[-1]
        return int(tail) if tail.isdigit() else None


def scaling_resources(num_cpus: float, num_gpus: float, custom: dict[str, float] | None = None) -> dict[str, float]:
    """Ray's ``resources_per_worker`` for a worker asking ``num_cpus``/``num_gpus``/``custom``."""
    resources = {"CPU": float(num_cpus), **{k: float(v) for k, v in (custom or {}).items()}}
    if num_gpus:
        resources["GPU"] = float(num_gpus)
    return resources


def train_distributed(task: Task, model: Any, tokenizer: Any, train_ds: Any, eval_ds: Any | None, info: LabelInfo,
                      hp: Hyperparameters, output_dir: Path, device: DeviceChoice, sink: ProgressSink,
                      resume_from_checkpoint: str | None = None,
                      should_stop: Callable[[], bool] | None = None, *,
                      hooks: WorkerHooks, num_workers: int, num_cpus: float = 1.0, num_gpus: float = 0.0,
                      custom: dict[str, float] | None = None, max_failures: int = 2,
                      storage_path: str, run_name: str, storage_filesystem: Any | None = None,
                      pid_file: str | None = None) -> TrainOutcome:
    """Train as :func:`fmhub.training.trainer.train_model` does, on ``num_workers`` Ray Train workers
    (distributed data parallel); this process must be connected to the cluster.

    Each optimizer step takes ``per_device_train_batch_size x gradient_accumulation_steps`` rows in
    every worker: the global batch is ``num_workers`` times a local job's.

    Args:
        task, model, tokenizer, train_ds, eval_ds, info, hp: As ``train_model``; they are sent to
            the workers through the train loop's config (the model as it is, so every worker starts
            from the same weights).
        output_dir: Each worker's Trainer checkpoint folder (created where missing); a job's
            ``checkpoints`` folder, as for a local job.
        device: Where this process evaluates (the workers train on a GPU when ``num_gpus`` > 0,
            else on their CPUs).
        sink: This process's progress sink (stage events); the workers' progress goes to
            ``hooks.sink()``.
        resume_from_checkpoint: A Trainer checkpoint folder to start from (a resumed job), used
            when Ray Train has no checkpoint of its own for ``run_name``.
        should_stop: Unused here: every worker asks ``hooks.should_stop()``.
        hooks: The job as the workers see it (see :class:`WorkerHooks`).
        num_workers, num_cpus, num_gpus, custom: Workers and the resources of each (Ray's names).
        max_failures: Restarts of the worker group from the last checkpoint after a worker or node
            is lost (Ray Train's ``FailureConfig``).
        storage_path: Ray Train's storage (a folder, or a path in ``storage_filesystem``); the run's
            checkpoints go to ``<storage_path>/<run_name>``, and a run of the same name continues
            from its latest checkpoint.
        run_name: The run's name (the job id).
        storage_filesystem: A ``pyarrow.fs.FileSystem`` for ``storage_path`` (a bucket), or None.
        pid_file: Each worker appends ``<rank> <pid>`` to this file when it starts training.

    Returns:
        The outcome; its model is the driver's ``model`` with the trained weights (rank 0's final
        checkpoint).

    Raises:
        TrainingCanceled: the job was canceled (the cancel's checkpoint was reported).
        RuntimeError: training failed more than ``max_failures`` times (Ray's error, with its cause).
    """
    import torch
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    use_gpu = num_gpus > 0
    resources = scaling_resources(num_cpus, num_gpus, custom)
    config = {"task": task, "model": model, "tokenizer": tokenizer, "train_ds": train_ds, "eval_ds": eval_ds,
              "info": info, "hp": hp, "output_dir": str(output_dir), "use_gpu": use_gpu, "hooks": hooks,
              "resume_from_checkpoint": resume_from_checkpoint, "pid_file": pid_file}
    sink.event("stage", {"stage": "distributed training", "workers": num_workers,
                         "resources_per_worker": resources, "max_failures": max_failures})
    trainer = TorchTrainer(
        _train_loop,
        train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu, resources_per_worker=resources),
        run_config=RunConfig(storage_path=storage_path, name=run_name, storage_filesystem=storage_filesystem,
                             failure_config=FailureConfig(max_failures=max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=2)),
    )
    t0 = time.perf_counter()
    result = trainer.fit()
    log.info("Ray Train run %s ended in %.1f s", run_name, time.perf_counter() - t0)
    if getattr(result, "error", None) is not None:
        raise result.error
    if result.checkpoint is None:
        raise RuntimeError(f"Ray Train run {run_name} ended without a final checkpoint")
    with result.checkpoint.as_directory() as folder:
        summary = _read_outcome(folder)
        if summary is None:
            raise RuntimeError(f"Ray Train run {run_name} ended without its final checkpoint "
                               f"(the latest is {result.checkpoint.path})")
        if summary.get("canceled_at") is not None:
            raise TrainingCanceled(int(summary["canceled_at"]))
        weights = Path(folder) / MODEL_DIR / "weights.pt"
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return TrainOutcome(model=model, train_runtime_s=float(summary["train_runtime_s"]),
                        eval_runtime_s=float(summary["eval_runtime_s"]),
                        train_samples_per_s=float(summary["train_samples_per_s"]),
                        global_step=int(summary["global_step"]), best_checkpoint=summary.get("best_checkpoint"),
                        best_metric=summary.get("best_metric"), log_history=list(summary.get("log_history") or []),
                        stopped_early=bool(summary.get("stopped_early")), workers=int(summary.get("workers") or 1),
                        bf16=bool(summary.get("bf16")))


__all__ = ["AgreedCancelCallback", "WorkerHooks", "scaling_resources", "train_distributed"]
