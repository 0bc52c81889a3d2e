"""The evaluate use case: a registered model's metrics on the user's own test file, as a job."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fmhub.data.report import SplitReport, ValidationReport
from fmhub.entities import JobStatus
from fmhub.errors import FmhubError, SpecError
from fmhub.services import assets as assets_service
from fmhub.services import jobs as jobs_service
from fmhub.services.context import Context
from fmhub.data.problems import Problem
from fmhub.services.data_prep import check_examples, read_examples, report_error
from fmhub.services.evaluation import evaluate_split, generation_options
from fmhub.services.models import resolve_model
from fmhub.services.predict import require_trained_head
from fmhub.services.specs import DataSpec, EvaluateSpec
from fmhub.tasks import get_task
from fmhub.tasks.base import LabelInfo
from fmhub.tasks.generation import Seq2SeqTask
from fmhub.training.device import choose_device


def run_evaluate(ctx: Context, spec: EvaluateSpec,
                 on_report: Callable[[ValidationReport], None] | None = None,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Evaluate ``spec.model`` on ``spec.data.test``; the result is stored as an ``evaluate`` job.

    ``on_report`` receives the validation report before any prediction; ``progress(rows_done,
    rows_total)`` is called while predicting.

    The test rows are checked like training data; a label the model does not know is an error
    naming its line.

    Returns:
        ``{"job_id", "status", "model", "task", "test": metrics, "report"}``.

    Raises:
        DataError: the test data has errors (all listed).
        SpecError: the task cannot be known, or the model has no label names.
    """
    from transformers import AutoTokenizer

    resolved = resolve_model(ctx, spec.model)
    task_name = spec.task or (resolved.version.task if resolved.version else None)
    spec = spec.model_copy(update={"data": assets_service.resolve_data_spec(ctx, spec.data, task_name)})
    if task_name is None:
        raise SpecError(f"'{spec.model}' is a catalog model; say which task to evaluate with --task")
    task = get_task(task_name)
    model = task.load_model(str(resolved.path), None)
    require_trained_head(model, resolved.ref, task.name)
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
    if report.ok and isinstance(task, Seq2SeqTask):
        info.extra.update(task.label_info(examples).extra)  # e.g. the target language for BLEU
    split = SplitReport(name="test", source=spec.data.test, rows_read=read, rows_kept=len(examples), dropped=dropped)
    if report.ok:
        split.distribution = task.distribution(examples)
    report.splits.append(split)
    if on_report:
        on_report(report)
    if not report.ok:
        raise report_error(report)

    trained = ((resolved.version.lineage or {}).get("hyperparameters") or {}) if resolved.version else {}
    max_seq_length = spec.max_seq_length or int(trained.get("max_seq_length") or 512)
    job = jobs_service.new_job(ctx, "evaluate", spec.model_dump(mode="json"))
    job = jobs_service.mark(ctx, job, JobStatus.running)
    try:
        asset = assets_service.register_data_file(ctx, spec.data.test, format=spec.data.format,
                                                  encoding=spec.data.encoding)
        model.to(choose_device(spec.device).device)
        metrics = evaluate_split(task, model, tokenizer, examples, info,
                                 batch_size=spec.per_device_eval_batch_size, max_seq_length=max_seq_length,
                                 predictions_path=Path(job.folder) / "predictions-test.jsonl", progress=progress,
                                 **{**generation_options(resolved.card.defaults, task.name),
                                    **spec.generation.options()})
    except FmhubError as exc:
        jobs_service.mark(ctx, job, JobStatus.failed, error=str(exc))
        raise
    except Exception as exc:
        jobs_service.mark(ctx, job, JobStatus.failed, error=f"{type(exc).__name__}: {exc}")
        raise
    folder = Path(job.folder)
    (folder / "report.json").write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    (folder / "metrics.json").write_text(json.dumps({"test": metrics}, indent=2), encoding="utf-8")
    outputs = {"model": resolved.ref, "metrics": {"test": metrics},
               "predictions": str(folder / "predictions-test.jsonl"),
               "data": [{"split": "test", "asset": asset.ref, "sha256": asset.sha256, "file": spec.data.test}]}
    job = jobs_service.mark(ctx, job, JobStatus.completed, outputs=outputs)
    return {"job_id": job.id, "status": job.status.value, "model": resolved.ref, "task": task.name,
            "test": metrics, "report": report.to_dict()}
