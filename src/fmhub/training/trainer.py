"""Fine-tuning with the transformers ``Trainer``: dynamic padding, length-grouped batches, best
checkpoint by a named metric, progress through a callback.

Causal LMs train with :func:`fmhub.training.causal_loss.labelled_loss` (the output head only at
labelled positions: the same loss, less work when the prompt is masked). Every task trains under bf16
autocast where ``--precision`` (default ``auto``: a CPU with native bf16, or a bf16 GPU) says so
(:mod:`fmhub.training.precision`).
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmhub.tasks.base import LabelInfo, Task
from fmhub.devices import DeviceChoice
from fmhub.training.cancel import CancelCallback, TrainingCanceled
from fmhub.training.causal_loss import labelled_loss, supports_labelled_loss
from fmhub.training.hyperparameters import Hyperparameters
from fmhub.training.precision import training_precision
from fmhub.training.progress import ProgressCallback, ProgressSink
from fmhub.training.sampler import BucketedLengthSampler

MEGA_BATCH_MULT = 32
"""Batches per length bucket: padding about as low as a full sort, batch order still random."""

log = logging.getLogger(__name__)


@dataclass
class TrainOutcome:
    """What training produced.

    Attributes:
        model: The trained model (the best checkpoint when validation data was given).
        train_runtime_s: Wall time of ``Trainer.train`` in seconds (evaluations included).
        eval_runtime_s: Part of ``train_runtime_s`` spent in per-epoch evaluation.
        train_samples_per_s: Training rows per second of training time, i.e.
            ``rows / (train_runtime_s - eval_runtime_s)``.
        global_step: Optimizer steps taken.
        best_checkpoint: Folder of the best checkpoint, if one was chosen.
        best_metric: Its validation metric value.
        log_history: The Trainer's log history (loss and evaluations).
        stopped_early: True when early stopping ended training before its planned steps.
        canceled_at: The step a cancel stopped training at, or None.
        workers: Training processes (1, or the Ray Train workers of a distributed run).
        bf16: Whether training ran under bf16 autocast.
    """

    model: Any
    train_runtime_s: float
    eval_runtime_s: float
    train_samples_per_s: float
    global_step: int
    best_checkpoint: str | None = None
    best_metric: float | None = None
    log_history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    canceled_at: int | None = None
    workers: int = 1
    bf16: bool = False


def _supports(name: str) -> bool:
    from transformers import TrainingArguments

    return name in inspect.signature(TrainingArguments).parameters


def build_training_arguments(hp: Hyperparameters, output_dir: Path, device: DeviceChoice, has_eval: bool,
                             n_train: int, greater_is_better: bool, resume: bool = False,
                             loss_only: bool = False, bf16: bool | None = None) -> Any:
    """Translate resolved hyperparameters into ``TrainingArguments``.

    The training order comes from :class:`~fmhub.training.sampler.BucketedLengthSampler` (see
    :func:`train_model`). Evaluation and checkpoints happen once per epoch (and
    every ``save_steps`` when set); the best checkpoint by ``metric_for_best_model`` is loaded at
    the end when validation data exists.

    Args:
        hp: Resolved hyperparameters (no ``None`` among the core values).
        output_dir: Checkpoint folder.
        device: Where to train.
        has_eval: Whether a validation split exists.
        n_train: Training rows (to size ``logging_steps``).
        greater_is_better: Direction of ``metric_for_best_model``.
        resume: Unused here; kept for symmetry with ``Trainer.train(resume_from_checkpoint=...)``.
        loss_only: The per-epoch evaluation computes the loss only (tasks whose metrics come after
            training): the Trainer then keeps no logits (less memory and time).
        bf16: bf16 mixed precision (autocast); None takes ``device.bf16`` (CUDA with bf16 support).
    """
    from transformers import TrainingArguments

    steps_per_epoch = max(1, math.ceil(n_train / (hp.per_device_train_batch_size * hp.gradient_accumulation_steps)))
    total = hp.max_steps or math.ceil(steps_per_epoch * hp.num_train_epochs)
    logging_steps = hp.logging_steps or max(1, total // 50)
    strategy = "steps" if hp.save_steps else "epoch"
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
        learning_rate=hp.learning_rate,
        num_train_epochs=hp.num_train_epochs,
        max_steps=hp.max_steps or -1,
        per_device_train_batch_size=hp.per_device_train_batch_size,
        per_device_eval_batch_size=hp.per_device_eval_batch_size,
        gradient_accumulation_steps=hp.gradient_accumulation_steps,
        weight_decay=hp.weight_decay,
        lr_scheduler_type=hp.lr_scheduler_type,
        seed=hp.seed,
        data_seed=hp.seed,
        logging_strategy="steps",
        logging_steps=logging_steps,
        save_strategy=strategy,
        eval_strategy=strategy if has_eval else "no",
        save_total_limit=2,
        load_best_model_at_end=has_eval,
        metric_for_best_model=hp.metric_for_best_model if has_eval else None,
        greater_is_better=greater_is_better,
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
        bf16=device.bf16 if bf16 is None else bf16,
        use_cpu=not device.is_cuda,
        save_only_model=False,
        prediction_loss_only=loss_only,
    )
    if hp.gradient_checkpointing:  # recompute activations in backward; non-reentrant works with frozen (LoRA) bases
        name = "activation_checkpointing" if _supports("activation_checkpointing") else "gradient_checkpointing"
        kwargs[name] = True
        kwargs[f"{name}_kwargs"] = {"use_reentrant": False}
    if hp.save_steps:
        kwargs["save_steps"] = hp.save_steps
        kwargs["eval_steps"] = hp.save_steps
    warmup = hp.warmup_steps or 0.0
    if _supports("warmup_ratio") and 0 < warmup < 1:  # transformers 4.x
        kwargs["warmup_ratio"] = warmup
        kwargs["warmup_steps"] = 0
    else:
        kwargs["warmup_steps"] = warmup if warmup < 1 else int(warmup)
    return TrainingArguments(**kwargs)


def _bucketed_trainer_class() -> Any:
    """A ``Trainer`` whose training order comes from :class:`BucketedLengthSampler`."""
    from transformers import Trainer

    class BucketedTrainer(Trainer):
        """``Trainer`` with length-bucketed, batch-shuffled training order; with ``labelled_loss``, a
        causal LM's loss comes from :func:`~fmhub.training.causal_loss.labelled_loss`."""

        def __init__(self, *args: Any, train_lengths: list[int], mega_batch_mult: int,
                     labelled_loss: bool = False, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._train_lengths = train_lengths
            self._mega_batch_mult = mega_batch_mult
            self._labelled_loss = labelled_loss

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            # A model wrapped for data parallel (DDP) must run its own forward for its gradient
            # hooks; an evaluation that keeps logits needs them all: both take the stock path.
            wrapped = model is not self.accelerator.unwrap_model(model)
            if (not self._labelled_loss or wrapped or "labels" not in inputs
                    or (return_outputs and not self.args.prediction_loss_only)):
                return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                            num_items_in_batch=num_items_in_batch)
            # Normalised as the stock loss is, so the Trainer's gradient-accumulation scaling agrees.
            items = num_items_in_batch if self.model_accepts_loss_kwargs else None
            # The decoder is called directly, not through the forward that accelerate wraps in
            # autocast, so mixed precision (bf16) is entered here.
            with self.accelerator.autocast():
                loss = labelled_loss(model, inputs, num_items_in_batch=items)
            if (self.args.average_tokens_across_devices and self.model_accepts_loss_kwargs
                    and items is not None):
                loss = loss * self.accelerator.num_processes
            return (loss, {"loss": loss}) if return_outputs else loss

        def _get_train_sampler(self, *args: Any, **kwargs: Any) -> Any:  # signature differs across releases
            batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
            return BucketedLengthSampler(self._train_lengths, batch, self.args.seed, self._mega_batch_mult)

    return BucketedTrainer


@dataclass
class BuiltTrainer:
    """A ``Trainer`` set up by :func:`build_trainer`, with what running it needs.

    Attributes:
        trainer: The ``transformers.Trainer`` (length-bucketed training order).
        cancel: Its cancel callback, when ``should_stop`` was given.
        has_eval: Whether validation data was given.
        n_train: Training rows.
        world_size: Training processes the batches are spread over (1: one process).
    """

    trainer: Any
    cancel: CancelCallback | None
    has_eval: bool
    n_train: int
    world_size: int = 1


def build_trainer(task: Task, model: Any, tokenizer: Any, train_ds: Any, eval_ds: Any | None, info: LabelInfo,
                  hp: Hyperparameters, output_dir: Path, device: DeviceChoice, sink: ProgressSink,
                  should_stop: Callable[[], bool] | None = None, world_size: int = 1,
                  cancel_class: type[CancelCallback] = CancelCallback,
                  extra_callbacks: tuple[Any, ...] = (), causal_lm_loss: bool | None = None) -> BuiltTrainer:
    """Set up the ``Trainer`` that :func:`train_model` runs (one process) and each Ray Train worker
    runs (:mod:`fmhub.training.ray_train`).

    Args:
        task, model, tokenizer, train_ds, eval_ds, info, hp, output_dir, device, sink, should_stop:
            As :func:`train_model`.
        world_size: Training processes (data parallel); each step takes ``per_device_train_batch_size
            x gradient_accumulation_steps`` rows in each process, so an epoch has ``world_size``
            times fewer steps.
        cancel_class: The cancel callback's class (a distributed run uses one whose processes agree).
        extra_callbacks: More Trainer callbacks (e.g. Ray Train's report callback).
        causal_lm_loss: Train with the labelled-positions loss
            (:func:`~fmhub.training.causal_loss.labelled_loss`; same value as the stock loss, the
            output head runs only where labels are not -100). None (default): whenever the model is a
            decoder + linear head causal LM (:func:`~fmhub.training.causal_loss.supports_labelled_loss`);
            False: the stock loss. Precision: ``hp.precision``
            (:func:`~fmhub.training.precision.training_precision`).
    """
    if eval_ds is not None:  # order does not matter for metrics; sorted batches pad least
        eval_ds = eval_ds.sort("length", reverse=True)
    greater = task.greater_is_better and not (hp.metric_for_best_model or "").endswith("loss")
    metrics_fn = task.trainer_metrics(info) if eval_ds is not None else None
    causal = supports_labelled_loss(model) if causal_lm_loss is None else (causal_lm_loss and
                                                                           supports_labelled_loss(model))
    bf16, why = training_precision(hp.precision, device)
    args = build_training_arguments(hp, output_dir, device, eval_ds is not None, len(train_ds) // max(world_size, 1),
                                    greater, loss_only=metrics_fn is None, bf16=bf16)
    log.info("precision: %s", why)
    if world_size > 1 and getattr(args, "average_tokens_across_devices", False):
        # Else the Trainer multiplies each process's loss by the process count (meant for losses
        # summed over tokens): a mean loss (classification) would be logged, and clipped, doubled.
        args.average_tokens_across_devices = False
    batches = math.ceil(len(train_ds) / (hp.per_device_train_batch_size * world_size))
    steps_per_epoch = max(1, math.ceil(batches / hp.gradient_accumulation_steps))
    callback = ProgressCallback(sink, hp.per_device_train_batch_size * hp.gradient_accumulation_steps * world_size,
                                steps_per_epoch=steps_per_epoch)
    callbacks: list[Any] = [callback]
    cancel = cancel_class(should_stop) if should_stop is not None else None
    if cancel is not None:
        callbacks.append(cancel)
    if hp.early_stopping_patience is not None and eval_ds is not None:
        from transformers import EarlyStoppingCallback

        # Needs load_best_model_at_end and metric_for_best_model, which build_training_arguments
        # sets whenever validation data exists; evaluation follows the save strategy.
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=hp.early_stopping_patience,
                                               early_stopping_threshold=hp.early_stopping_threshold))
    callbacks.extend(extra_callbacks)
    trainer = _bucketed_trainer_class()(
        train_lengths=list(train_ds["length"]),
        mega_batch_mult=MEGA_BATCH_MULT,
        labelled_loss=causal,
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        data_collator=task.data_collator(tokenizer),
        compute_metrics=metrics_fn,
        callbacks=callbacks,
    )
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # progress goes through ``sink``, not print()
    return BuiltTrainer(trainer=trainer, cancel=cancel, has_eval=eval_ds is not None, n_train=len(train_ds),
                        world_size=world_size)


def run_trainer(built: BuiltTrainer, hp: Hyperparameters, sink: ProgressSink,
                resume_from_checkpoint: str | bool | None = None) -> TrainOutcome:
    """Run ``Trainer.train`` of a :func:`build_trainer` result and measure it.

    Returns:
        The outcome; ``canceled_at`` is the step a cancel stopped training at (nothing raised).
    """
    trainer = built.trainer
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    runtime = time.perf_counter() - t0
    state = trainer.state
    rows = state.global_step * hp.per_device_train_batch_size * hp.gradient_accumulation_steps * built.world_size
    rows = min(rows, round(built.n_train * (state.epoch or 1)))
    eval_s = sum(float(h.get("eval_runtime", 0.0)) for h in state.log_history)
    train_s = max(runtime - eval_s, 1e-9)
    log.info("training finished: %s steps in %.1f s (%s)", state.global_step, runtime, result.metrics)
    stopped_early = bool(hp.early_stopping_patience and built.has_eval and state.global_step < state.max_steps)
    canceled_at = built.cancel.stopped_at if built.cancel is not None else None
    if stopped_early and canceled_at is None:
        log.info("early stopping after %s of %s steps: %s did not improve for %s evaluations",
                 state.global_step, state.max_steps, hp.metric_for_best_model, hp.early_stopping_patience)
        sink.event("stage", {"stage": "stopped early", "step": state.global_step, "total": state.max_steps,
                             "metric": hp.metric_for_best_model, "patience": hp.early_stopping_patience,
                             "best_metric": state.best_metric})
    return TrainOutcome(
        model=trainer.model,
        train_runtime_s=runtime,
        eval_runtime_s=eval_s,
        train_samples_per_s=rows / train_s,
        global_step=state.global_step,
        best_checkpoint=state.best_model_checkpoint,
        best_metric=state.best_metric,
        log_history=list(state.log_history),
        stopped_early=stopped_early,
        canceled_at=canceled_at,
        workers=built.world_size,
        bf16=bool(trainer.args.bf16),
    )


def train_model(task: Task, model: Any, tokenizer: Any, train_ds: Any, eval_ds: Any | None, info: LabelInfo,
                hp: Hyperparameters, output_dir: Path, device: DeviceChoice, sink: ProgressSink,
                resume_from_checkpoint: str | bool | None = None,
                should_stop: Callable[[], bool] | None = None) -> TrainOutcome:
    """Run ``Trainer.train`` and return the (best) model.

    Args:
        task: The task module (collator and metrics).
        model: The model to fine-tune (head sized for ``info``).
        tokenizer: Its tokenizer.
        train_ds: Tokenised training split (``datasets.Dataset`` with ``input_ids``, ``labels``,
            ``length``).
        eval_ds: Tokenised validation split, or None.
        info: Label space.
        hp: Resolved hyperparameters.
        output_dir: Where checkpoints go.
        device: Where to train.
        sink: Progress events go here.
        resume_from_checkpoint: A checkpoint folder, True for the latest in ``output_dir``, or None.
        should_stop: Asked every step, at most once a second (see
            :class:`~fmhub.training.cancel.CancelCallback`); once it returns True, a checkpoint is
            saved and training ends.

    Raises:
        TrainingCanceled: ``should_stop`` returned True (the checkpoint of that step is saved).
    """
    built = build_trainer(task, model, tokenizer, train_ds, eval_ds, info, hp, output_dir, device, sink,
                          should_stop=should_stop)
    outcome = run_trainer(built, hp, sink, resume_from_checkpoint=resume_from_checkpoint)
    if outcome.canceled_at is not None:
        raise TrainingCanceled(outcome.canceled_at)
    return outcome
