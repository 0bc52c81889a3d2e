"""The evaluate use case: a registered model's metrics on the user's own test file, as a job."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmhub.data.report import SplitReport, ValidationReport
from fmhub.devices import choose_device
from fmhub.entities import Job
from fmhub.errors import JobCanceledError, SpecError
from fmhub.evaluation.split import evaluate_split, generation_options
from fmhub.services import assets as assets_service
from fmhub.services import jobs as jobs_service
from fmhub.services.context import Context
from fmhub.data.problems import Problem
from fmhub.services.data_prep import check_examples, read_examples, report_error
from fmhub.services.model_loading import load_resolved
from fmhub.services.models import resolve_model
from fmhub.services.specs import DataSpec, EvaluateSpec
from fmhub.tasks import get_task
from fmhub.tasks.base import LabelInfo
from fmhub.tasks.generation import Seq2SeqTask
from fmhub.training.precision import inference_copy, use_cpu_bf16_inference


CANCEL_CHECK_S = 1.0
"""Seconds between two looks at the job's ``cancel_requested`` while predicting, at least."""


@dataclass
class EvaluatePlan:
    """A checked evaluation: the model loaded, the test rows read and validated.

    Attributes:
        spec: The spec, with data asset references resolved to files.
        resolved: The model's files and card.
        task: The task module.
        model: The loaded model (label names from its config).
        tokenizer: Its tokenizer.
        info: Label space (the model's labels; target language for generation tasks).
        examples: The test rows.
        report: The validation report of the test rows.
    """

    spec: EvaluateSpec
    resolved: Any
    task: Any
    model: Any
    tokenizer: Any
    info: LabelInfo
    examples: Any
    report: ValidationReport


def check_evaluate(ctx: Context, spec: EvaluateSpec,
                   on_report: Callable[[ValidationReport], None] | None = None) -> EvaluatePlan:
    """Load the model and read and check the test rows (no prediction).

    The test rows are checked like training data; a label the model does not know is an error
    naming its line.

    Raises:
        DataError: the test data has errors (all listed).
        SpecError: the task cannot be known, or the model has no label names.
    """
    from transformers import AutoTokenizer

    from fmhub.services.compute_checks import check_compute

    check_compute(spec.compute, spec.resources, spec.device)  # the runner's devices and cluster, before the model loads
    resolved = resolve_model(ctx, spec.model)
    task_name = spec.task or (resolved.version.task if resolved.version else None)
    spec = spec.model_copy(update={"data": assets_service.resolve_data_spec(ctx, spec.data, task_name)})
    if task_name is None:
        raise SpecError(f"'{spec.model}' is a catalog model; say which task to evaluate with --task")
    task = get_task(task_name)
    model = load_resolved(task, resolved)  # an adapter version loads on its base
    task.require_trained_head(model, resolved.ref)
    labels = [model.config.id2label[i] for i in range(len(model.config.id2label))]
    info = LabelInfo(labels=labels, extra={"label_source": f"the labels of model {resolved.ref}"})
    tokenizer = AutoTokenizer.from_pretrained(str(resolved.path))

    report = ValidationReport(task=task.name)
    dspec = DataSpec(train=spec.data.test, validation="none", test="none", **spec.data.model_dump(exclude={"test"}))
    _, examples, mapping = read_examples(spec.data.test, dspec, task, report)
    report.mapping = mapping
    examples.split = "test"
    read = len(examples)
    examples, dropped = check_examples(examples, task, spec.data.on_invalid_row, report,
                                       spec.data.label_options())
    if not read:
        report.errors.append(Problem("no test rows", file=spec.data.test, hint="give a test file with rows"))
    if report.ok:
        from fmhub.tasks.base import Examples

        empty = Examples("train", "", [], [])
        for p in task.check_splits({"train": empty, "test": examples}, info):
            (report.errors if p.severity == "error" else report.warnings).append(p)
        for p in task.check_label_values({"test": examples}, spec.data.label_options()):
            p.column = examples.columns.get(p.column or "", p.column)
            (report.errors if p.severity == "error" else report.warnings).append(p)
    if report.ok and isinstance(task, Seq2SeqTask):
        info.extra.update(task.label_info(examples).extra)  # e.g. the target language for BLEU
    split = SplitReport(name="test", source=spec.data.test, rows_read=read, rows_kept=len(examples), dropped=dropped)
    if report.ok:
        split.distribution = task.distribution(examples)
        for p in task.tokenizer_warnings(tokenizer, examples):  # e.g. NER words with no sub-word
            p.column = examples.columns.get(p.column or "", p.column)
            report.warnings.append(p)
    report.splits.append(split)
    if spec.max_predict_samples is not None and len(examples) > spec.max_predict_samples:
        report.notes.append(f"test: scoring the first {spec.max_predict_samples} of {len(examples)} rows "
                            f"(--max-predict-samples {spec.max_predict_samples})")
        examples = examples.subset(list(range(spec.max_predict_samples)), "test")
    if on_report:
        on_report(report)
    if not report.ok:
        raise report_error(report)
    return EvaluatePlan(spec, resolved, task, model, tokenizer, info, examples, report)


def submit_evaluate(ctx: Context, spec: EvaluateSpec,
                    on_report: Callable[[ValidationReport], None] | None = None) -> tuple[Job, ValidationReport]:
    """Check an evaluation (model, test rows) and queue it as a job.

    Raises:
        DataError, SpecError, NotFoundError: as :func:`check_evaluate`.
    """
    plan = check_evaluate(ctx, spec, on_report)
    stored = plan.spec.model_dump(mode="json")
    stored["data"] = assets_service.queued_data_refs(ctx, stored["data"])
    job = jobs_service.new_job(ctx, "evaluate", stored, compute=spec.compute)
    jobs_service.write_job_file(ctx, job, "report.json", json.dumps(plan.report.to_dict(), indent=2))
    return job, plan.report


def run_evaluate(ctx: Context, spec: EvaluateSpec,
                 on_report: Callable[[ValidationReport], None] | None = None,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Evaluate ``spec.model`` on ``spec.data.test`` in this process; the result is stored as an
    ``evaluate`` job (run by :func:`execute_evaluate`, as a queued job is).

    ``on_report`` receives the validation report before any prediction; ``progress(rows_done,
    rows_total)`` is called while predicting.

    Returns:
        ``{"job_id", "status", "model", "task", "test": metrics, "report"}``.

    Raises:
        DataError: the test data has errors (all listed).
        SpecError: the task cannot be known, or the model has no label names.
    """
    if spec.compute != "local":  # never run a cluster job silently on this machine
        raise SpecError(f"a compute '{spec.compute}' job runs on its cluster, not in this process",
                        hint="queue it with submit_evaluate (fmhub evaluate queues it for you)")
    plan = check_evaluate(ctx, spec, on_report)
    job = jobs_service.new_job(ctx, "evaluate", plan.spec.model_dump(mode="json"))
    job = jobs_service.claim_foreground(ctx, job)
    return execute_evaluate(ctx, job, plan, progress)


def execute_evaluate(ctx: Context, job: Job, plan: EvaluatePlan | None = None,
                     progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Run an evaluate job that is marked ``running``; a job process checks the data again first.

    Returns:
        As :func:`run_evaluate`.
    """
    events = jobs_service.JobEventSink(ctx, job)
    should_stop, last_check = jobs_service.cancel_check(ctx, job.id), [time.monotonic()]

    def tick(done: int, total: int) -> None:
        events.event("predict", {"split": "test", "done": done, "total": total})
        if progress:
            progress(done, total)
        if time.monotonic() - last_check[0] >= CANCEL_CHECK_S:  # cancel is checked inside the job
            last_check[0] = time.monotonic()
            if should_stop():
                raise JobCanceledError(f"job {job.id} canceled by the user after {done} of {total} rows")

    folder = Path(job.folder)
    try:
        with jobs_service.job_log(job, ctx):
            if plan is None:
                plan = check_evaluate(ctx, EvaluateSpec.model_validate(job.spec))
            spec, resolved, task = plan.spec, plan.resolved, plan.task
            trained = ((resolved.version.lineage or {}).get("hyperparameters") or {}) if resolved.version else {}
            max_seq_length = spec.max_seq_length or int(trained.get("max_seq_length") or 512)
            asset = assets_service.register_data_file(ctx, spec.data.test, format=spec.data.format,
                                                      encoding=spec.data.encoding, delimiter=spec.data.delimiter)
            plan.model.to(choose_device(spec.device).device)
            events.event("stage", {"stage": "evaluating test", "model": resolved.ref})
            # a causal LM on a CPU with native bf16 generates with a bf16 copy, as a fine-tune's test does
            with inference_copy(plan.model, use_cpu_bf16_inference(plan.model)) as scorer:
                metrics = evaluate_split(task, scorer, plan.tokenizer, plan.examples, plan.info,
                                         batch_size=spec.per_device_eval_batch_size, max_seq_length=max_seq_length,
                                         predictions_path=folder / "predictions-test.jsonl", progress=tick,
                                         **{**generation_options(resolved.card.defaults, task.name),
                                            **spec.generation.options()})
    except BaseException as exc:
        jobs_service.record_outcome(ctx, job, exc=exc)
        if isinstance(exc, KeyboardInterrupt):
            raise JobCanceledError(f"job {job.id} canceled: interrupted") from None
        raise
    (folder / "report.json").write_text(json.dumps(plan.report.to_dict(), indent=2), encoding="utf-8")
    (folder / "metrics.json").write_text(json.dumps({"test": metrics}, indent=2), encoding="utf-8")
    jobs_service.push_job_folder(ctx, job)
    outputs = {"model": resolved.ref, "metrics": {"test": metrics},
               "predictions": jobs_service.output_location(ctx, job, "predictions-test.jsonl"),
               "data": [{"split": "test", "asset": asset.ref, "sha256": asset.sha256, "file": spec.data.test}]}
    job = jobs_service.record_outcome(ctx, job, outputs=outputs)
    events.event("eval", {"split": "test", "metrics": metrics})
    events.event("done", {"status": "completed"})
    return {"job_id": job.id, "status": job.status.value, "model": resolved.ref, "task": task.name,
            "test": metrics, "report": plan.report.to_dict()}
