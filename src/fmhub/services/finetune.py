"""The fine-tune use case: validate data, train, evaluate, register — as one job."""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmhub.data.report import ValidationReport
from fmhub.devices import choose_device
from fmhub.entities import Job, ModelVersion
from fmhub.errors import FmhubError, JobCanceledError, SpecError
from fmhub.evaluation.split import generation_options
from fmhub.services import assets as assets_service
from fmhub.services import jobs as jobs_service
from fmhub.services import registration
from fmhub.services.context import Context
from fmhub.services.data_prep import PreparedData, prepare_data, report_error
from fmhub.services.finetune_checks import cap_evaluated_rows, check_hyperparameters
from fmhub.services.finetune_eval import (ZERO_SHOT, evaluate_splits, last_validation_loss, merged_for_inference,
                                          perplexity, record_prediction_warnings, zero_shot_metrics)
from fmhub.services.finetune_lora import (check_lora, is_peft_model, load_model_to_train, lora_lineage,
                                          save_adapter_or_merged, write_generation_config)
from fmhub.services.compute_checks import check_compute
from fmhub.services.finetune_ray import RAY_TRAIN_DIR, compute_record, is_distributed, train_on_ray
from fmhub.services.model_loading import config_folder, is_causal_lm_folder, load_resolved, model_max_length
from fmhub.services.models import ResolvedModel, resolve_model
from fmhub.services.specs import FinetuneSpec
from fmhub.tasks import get_task
from fmhub.tasks.base import Task
from fmhub.training.lora import trainable_parameters
from fmhub.serving import runtimes
from fmhub.training.precision import inference_copy, training_precision, use_cpu_bf16_inference
from fmhub.training.progress import ProgressSink, SinkFanout

log = logging.getLogger("fmhub.finetune")


@dataclass
class FinetuneResult:
    """The outcome of :func:`run_finetune`.

    Attributes:
        report: The validation report (always).
        job: The job row (None for a dry run).
        metrics: ``{"validation": {...}, "test": {...}}`` (splits that exist).
        model_version: The registered version (None for a dry run or ``register_model: false``).
        train: Training figures: runtime_s, samples_per_s, global_step, device, stopped_early.
        warnings: Warnings about the trained model's predictions (one class only, no entity at
            all); the model is registered all the same.
    """

    report: ValidationReport
    job: Job | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    model_version: ModelVersion | None = None
    train: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document ``fmhub finetune --json`` prints (the REST API returns the same)."""
        return {
            "job_id": self.job.id if self.job else None,
            "status": self.job.status.value if self.job else "validated",
            "dry_run": self.dry_run,
            "registered_model": self.model_version.ref if self.model_version else None,
            "validation": self.metrics.get("validation"),
            "test": self.metrics.get("test"),
            ZERO_SHOT: self.metrics.get(ZERO_SHOT),
            "train": self.train,
            "warnings": self.warnings,
            "report": self.report.to_dict(),
        }


def _check_model_task(resolved: ResolvedModel, task: str) -> None:
    card = resolved.card
    if card.registry == "system" and task not in card.finetuning_tasks:
        raise SpecError(f"model '{card.name}' cannot be fine-tuned for {task}",
                        hint=f"its fine-tuning tasks are: {', '.join(card.finetuning_tasks) or 'none'}; "
                             f"find others with `fmhub models list --task {task}`")


def validate(ctx: Context, spec: FinetuneSpec) -> tuple[Task, ResolvedModel, Any, Any, PreparedData]:
    """Resolve the model, fill hyperparameter defaults and check the data (no training).

    Returns:
        (task, resolved model, tokenizer, resolved hyperparameters, prepared data).
    """
    from transformers import AutoTokenizer

    task = get_task(spec.task)
    resolved = resolve_model(ctx, spec.model)
    _check_model_task(resolved, spec.task)
    hp = spec.hyperparameters.resolve(task.default_hyperparameters, resolved.card.defaults,
                                      task.metric_for_best_model)
    check_compute(spec.compute, spec.resources, spec.device)  # the runner's devices and cluster, before any data is read
    check_lora(task, resolved, hp, choose_device(spec.device).is_cuda if spec.compute == "local" else None)
    limit = model_max_length(config_folder(resolved))
    capped = limit is not None and hp.max_seq_length > limit
    if capped:
        requested = hp.max_seq_length
        hp = hp.model_copy(update={"max_seq_length": limit})
    check_hyperparameters(spec, task, hp)
    tokenizer = AutoTokenizer.from_pretrained(str(resolved.path))
    data = assets_service.resolve_data_spec(ctx, spec.data, spec.task)
    prepared = prepare_data(data, task, tokenizer, hp.max_seq_length, hp.seed)
    for key in ("train", "validation", "test"):  # name data assets by their reference in the report
        given, path = getattr(spec.data, key), getattr(data, key)
        if given != path:
            for split in prepared.report.splits:
                split.source = split.source.replace(path, f"{given} ({path})")
    if capped:
        prepared.report.notes.append(f"max_seq_length {requested} is more than {resolved.ref} takes; "
                                     f"using {limit} tokens")
    cap_evaluated_rows(prepared, hp)
    return task, resolved, tokenizer, hp, prepared


Validated = tuple[Task, ResolvedModel, Any, Any, PreparedData]
"""What :func:`validate` returns: task, resolved model, tokenizer, hyperparameters, prepared data."""


def _create_job(ctx: Context, spec: FinetuneSpec, hp: Any, report: ValidationReport, queued: bool = False) -> Job:
    full_spec = spec.model_dump(mode="json")
    full_spec["hyperparameters"] = hp.model_dump(mode="json")
    anywhere = queued or not ctx.artifacts.is_local  # a queued job, or one a shared store may resume elsewhere
    full_spec["data"] = (assets_service.queued_data_refs(ctx, full_spec["data"]) if anywhere
                         else assets_service.absolute_data_paths(full_spec["data"]))
    job = jobs_service.new_job(ctx, "finetune", full_spec, compute=spec.compute)
    jobs_service.write_job_file(ctx, job, "report.json", json.dumps(report.to_dict(), indent=2))
    return job


def submit_finetune(ctx: Context, spec: FinetuneSpec,
                    on_report: Callable[[ValidationReport], None] | None = None) -> tuple[Job, ValidationReport]:
    """Check a fine-tune spec and its data, then queue it as a job (a scheduler runs it).

    Nothing is queued while the data or the spec has errors.

    Returns:
        The queued job and the validation report.

    Raises:
        DataError, SpecError, ModelUnavailableError, NotFoundError: as :func:`run_finetune`.
    """
    task, resolved, tokenizer, hp, prepared = validate(ctx, spec)
    if on_report:
        on_report(prepared.report)
    if not prepared.report.ok:
        raise report_error(prepared.report)
    return _create_job(ctx, spec, hp, prepared.report, queued=True), prepared.report


def run_finetune(ctx: Context, spec: FinetuneSpec, sink: ProgressSink | None = None,
                 on_report: Callable[[ValidationReport], None] | None = None,
                 dry_run: bool = False) -> FinetuneResult:
    """Fine-tune ``spec.model`` on the user's data in this process, evaluate it and register the result.

    The job row is created and run at once with :func:`execute_finetune`, the function a queued
    job's process runs too.

    Args:
        ctx: Service context.
        spec: The job spec.
        sink: Extra progress sink (e.g. the terminal's progress bar); the job's own event log is
            always written.
        on_report: Called with the validation report before any training (and before raising
            when the data has errors).
        dry_run: Validate data and mapping only.

    Raises:
        DataError: the data has errors (all listed; the report is in ``details``).
        SpecError, ModelUnavailableError, NotFoundError: bad spec or model.
        JobFailedError: training or evaluation failed (the job row says why; see its log).
        JobCanceledError: interrupted (Ctrl-C or SIGTERM); checkpoints are kept for a resume.
    """
    if spec.compute != "local" and not dry_run:  # never run a cluster job silently on this machine
        raise SpecError(f"a compute '{spec.compute}' job runs on its cluster, not in this process",
                        hint="queue it with submit_finetune (fmhub finetune queues it for you)")
    validated = validate(ctx, spec)
    report = validated[4].report
    if on_report:
        on_report(report)
    if not report.ok:
        raise report_error(report)
    if dry_run:
        return FinetuneResult(report=report, dry_run=True)
    job = _create_job(ctx, spec, validated[3], report)
    job = jobs_service.claim_foreground(ctx, job)
    return execute_finetune(ctx, job, sink=sink, validated=validated)


def latest_checkpoint(folder: Path) -> Path | None:
    """The ``checkpoint-<step>`` folder with the highest step under ``folder/checkpoints``."""
    root = Path(folder) / "checkpoints"
    found = [(int(p.name.rsplit("-", 1)[1]), p) for p in root.glob("checkpoint-*")
             if p.is_dir() and p.name.rsplit("-", 1)[1].isdigit() and (p / "trainer_state.json").is_file()]
    return max(found)[1] if found else None


def execute_finetune(ctx: Context, job: Job, sink: ProgressSink | None = None,
                     validated: Validated | None = None) -> FinetuneResult:
    """Run a fine-tune job that is marked ``running``: train, evaluate, register, mark completed.

    A job whose ``resume`` flag is set continues from its latest checkpoint (the step count goes
    on from there). Foreground runs pass the already ``validated`` data; a job process checks the
    data again from the stored spec.

    Raises:
        DataError: the data no longer passes validation (the job is marked failed).
        JobFailedError: training or evaluation failed (the job row says why; see its log).
        JobCanceledError: interrupted (Ctrl-C or SIGTERM); the job is marked canceled and its
            checkpoints are kept.
    """
    spec = FinetuneSpec.model_validate(job.spec)
    job = jobs_service.working_folder(ctx, job)  # a bucket store: this machine's copy, checkpoints included
    folder = Path(job.folder)
    events = jobs_service.JobEventSink(ctx, job)
    fan = SinkFanout(events, sink)
    try:
        with jobs_service.job_log(job, ctx):
            if validated is None:
                validated = validate(ctx, spec)
                if not validated[4].report.ok:
                    raise report_error(validated[4].report)
            task, resolved, tokenizer, hp, prepared = validated
            checkpoint = latest_checkpoint(folder) if job.resume else None
            result = _train_and_register(ctx, spec, job, task, resolved, tokenizer, hp, prepared, fan,
                                         checkpoint)
    except BaseException as exc:
        jobs_service.record_outcome(ctx, job, exc=exc)
        if isinstance(exc, (KeyboardInterrupt, JobCanceledError)):
            checkpoints = folder / "checkpoints"
            if checkpoints.is_dir() and not any(checkpoints.iterdir()):
                checkpoints.rmdir()
            why = "interrupted" if isinstance(exc, KeyboardInterrupt) else "canceled by the user"
            raise JobCanceledError(f"job {job.id} canceled: {why}",
                                   hint=f"its folder and checkpoints are kept: {folder}; continue with "
                                        f"`fmhub jobs resume {job.id}`") from None
        if isinstance(exc, FmhubError) or not isinstance(exc, Exception):
            raise
        log.exception("job %s failed", job.id)
        from fmhub.errors import JobFailedError

        raise JobFailedError(f"job {job.id} failed: {type(exc).__name__}: {exc}",
                             hint=f"see the log: {folder / jobs_service.LOG_FILE}") from exc
    result.report = validated[4].report
    return result


def keep_runtime_check_rows(task: Task, folder: Path, out_dir: Path) -> None:
    """Keep the first test (else validation) predictions in the model folder, for the check of a
    deployment's ``--runtime auto`` (:mod:`fmhub.serving.runtimes`); tasks it does not check keep none."""
    if not task.runtime_checked:
        return
    for split in ("test", "validation"):
        path = folder / f"predictions-{split}.jsonl"
        if path.is_file() and path.stat().st_size:
            runtimes.write_check_rows(path, out_dir)
            return


def trained_on(device: Any, bf16: bool) -> str:
    """The device's description with the precision training used, e.g. ``cpu (2 threads, bf16
    autocast)`` for a CPU run under bf16 autocast (the device itself is described as fp32)."""
    text = device.description
    if bf16 and not device.is_cuda:
        return text.replace("fp32", "bf16 autocast") if "fp32" in text else f"{text}, bf16 autocast"
    return text


def _train_and_register(ctx: Context, spec: FinetuneSpec, job: Job, task: Task, resolved: ResolvedModel,
                        tokenizer: Any, hp: Any, prepared: PreparedData, sink: SinkFanout,
                        checkpoint: Path | None = None) -> FinetuneResult:
    from fmhub.training.trainer import train_model

    folder = Path(job.folder)
    device = choose_device(spec.device)
    bf16, _ = training_precision(hp.precision, device)  # the precision training will use, said up front
    sink.event("stage", {"stage": "preparing", "device": trained_on(device, bf16), "model": resolved.ref})
    data_assets = []
    for split, file in prepared.files.items():
        asset = assets_service.register_data_file(ctx, file, format=spec.data.format, encoding=spec.data.encoding,
                                                  delimiter=spec.data.delimiter)
        entry = {"split": split, "asset": asset.ref, "sha256": asset.sha256, "file": str(Path(file).resolve())}
        if entry not in data_assets:
            data_assets.append(entry)
    splits, info = prepared.splits, prepared.info
    options = {"doc_stride": hp.doc_stride, **generation_options(resolved.card.defaults, spec.task),
               **spec.generation.options()}
    info.extra.update({k: v for k, v in options.items() if k != "doc_stride" and v is not None})
    options["causal_lm"] = is_causal_lm_folder(config_folder(resolved))
    train_ds = task.encode(splits["train"], tokenizer, info, hp.max_seq_length, **options)
    eval_ds = (task.encode(splits["validation"], tokenizer, info, hp.max_seq_length, **options)
               if "validation" in splits else None)
    from transformers import set_seed

    set_seed(hp.seed)  # the new head's (and LoRA's) initial weights come from the seed, so runs repeat exactly
    model = load_model_to_train(task, resolved, info, hp, device)
    if is_peft_model(model):
        sink.event("stage", {"stage": "lora", "trainable_parameters": trainable_parameters(model)[0], "rank": hp.lora_r,
                             "alpha": hp.lora_alpha, "targets": ",".join(hp.lora_target_modules or [])})
    if checkpoint is not None:
        step = int(checkpoint.name.rsplit("-", 1)[1])
        sink.event("stage", {"stage": "resuming", "from_step": step, "checkpoint": checkpoint.name,
                             "attempt": job.attempts})
    if is_distributed(spec):
        outcome = train_on_ray(ctx, spec, job, task, model, tokenizer, train_ds, eval_ds, info, hp, device, sink,
                               checkpoint)
    else:
        outcome = train_model(task, model, tokenizer, train_ds, eval_ds, info, hp, folder / "checkpoints", device,
                              sink, resume_from_checkpoint=str(checkpoint) if checkpoint else None,
                              should_stop=jobs_service.cancel_check(ctx, job.id))
    model = outcome.model
    losses = [h["loss"] for h in outcome.log_history if isinstance(h.get("loss"), (int, float))]
    if losses and not math.isfinite(losses[-1]):
        from fmhub.errors import JobFailedError

        raise JobFailedError(f"training diverged: the loss is {losses[-1]} at step {outcome.global_step}",
                             hint=f"lower the learning rate (it was {hp.learning_rate}); nothing was registered")
    train_figures = {"runtime_s": round(outcome.train_runtime_s, 2),
                     "eval_runtime_s": round(outcome.eval_runtime_s, 2),
                     "samples_per_s": round(outcome.train_samples_per_s, 2),
                     "global_step": outcome.global_step, "device": trained_on(device, outcome.bf16),
                     "workers": outcome.workers,
                     "best_checkpoint": Path(outcome.best_checkpoint).name if outcome.best_checkpoint else None}
    train_figures["stopped_early"] = outcome.stopped_early
    prediction_warnings: list[str] = []
    zero_shot: dict[str, Any] = {}
    eval_bf16 = use_cpu_bf16_inference(model)  # as `fmhub evaluate` decides, so the figures agree
    if task.zero_shot_baseline and spec.zero_shot and "test" in splits:  # first: the base's exact weights
        try:
            zero_shot = zero_shot_metrics(task, model, lambda: load_resolved(task, resolved, info), tokenizer,
                                          splits, info, hp, folder, sink, options, bf16=eval_bf16)
        except Exception as exc:  # noqa: BLE001 - a comparison only: the trained model is still scored and registered
            prediction_warnings.append(f"the base model's zero-shot evaluation failed ({type(exc).__name__}: {exc}); "
                                       "the fine-tuned model's metrics stand alone")
    predicted = ("validation", "test") if task.validation_predictions else ("test",)
    with merged_for_inference(model) as merged, inference_copy(merged, eval_bf16) as scorer:
        metrics = evaluate_splits(task, scorer, tokenizer, splits, info, hp, folder, sink, options,
                                  prediction_warnings, split_names=predicted)
    loss = last_validation_loss(outcome.log_history)
    if loss is not None and "validation" in splits:  # the Trainer's token loss on the validation split
        metrics.setdefault("validation", {}).setdefault("loss", loss)
        metrics["validation"].setdefault("perplexity", perplexity(loss))
    metrics.update(zero_shot)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    record_prediction_warnings(prepared.report, prediction_warnings, folder, sink)

    out_dir = folder / "model"
    settings = {f"fmhub_{key}": value for key, value in info.extra.items()}  # e.g. version_2 for question answering
    for key, value in settings.items():
        setattr(model.config, key, value)
    card = resolved.card
    lineage = {
        "base_model": resolved.ref,
        "base_model_source": card.source.model_dump(exclude_none=True),
        "architecture": card.architecture,
        "parameters": sum(p.numel() for p in model.parameters()),
        "languages": card.languages,
        "finetuning_tasks": [spec.task],
        "task": spec.task,
        "labels": info.labels,
        "data": data_assets,
        "column_mapping": prepared.report.mapping,
        "hyperparameters": hp.model_dump(mode="json"),
        "metrics": metrics,
        "warnings": prediction_warnings,
        "job_id": job.id,
        "train": train_figures,
        "compute": compute_record(spec),
        "license": card.license,
        "description": f"{card.name} fine-tuned for {spec.task} by job {job.id}.",
        **lora_lineage(model, resolved, hp, spec.merge_adapter),
    }
    version = registration.registered_by_job(ctx, spec.output_name(), job.id)  # a resumed job registered already
    if version is None:
        if is_peft_model(model):  # the adapter (a few MB, loaded on its base), or --merge: the full model
            save_adapter_or_merged(model, tokenizer, out_dir, resolved, spec.merge_adapter, settings)
            registration.write_lineage(out_dir, lineage)
        else:
            registration.save_model(model, tokenizer, out_dir, lineage)
            if options["causal_lm"]:
                write_generation_config(model, tokenizer, out_dir)
        keep_runtime_check_rows(task, folder, out_dir)
        if spec.register_model:
            sink.event("stage", {"stage": "registering"})
            version = registration.register_job_folder(ctx, out_dir, spec.output_name(), lineage)
            sink.event("stage", {"stage": "registered", "model": version.ref})
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)  # the registered copy is what counts
    shutil.rmtree(folder / RAY_TRAIN_DIR, ignore_errors=True)
    if is_distributed(spec) and not ctx.artifacts.is_local:
        ctx.artifacts.delete(ctx.artifacts.job_url(job.id, RAY_TRAIN_DIR))
    outputs = {"registered_model": version.ref if version else None, "metrics": metrics, "train": train_figures,
               "data": data_assets,
               "model_folder": None if version else jobs_service.output_location(ctx, job, "model"),
               "warnings": prediction_warnings}
    job = jobs_service.record_outcome(ctx, job, outputs=outputs)
    sink.event("done", {"status": "completed", "registered_model": outputs["registered_model"]})
    return FinetuneResult(report=prepared.report, job=job, metrics=metrics, model_version=version,
                          train=train_figures, warnings=prediction_warnings)


__all__ = ["FinetuneResult", "execute_finetune", "is_causal_lm_folder", "latest_checkpoint", "model_max_length",
           "record_prediction_warnings", "run_finetune", "submit_finetune", "validate"]
