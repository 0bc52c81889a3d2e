"""A fine-tune's evaluations after training: the validation and test splits, the validation loss and
perplexity, and for tasks whose base model answers without training (chat) the base model's
zero-shot metrics on the same test rows (``test_zero_shot``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fmhub.data.report import ValidationReport
from fmhub.evaluation.split import evaluate_split
from fmhub.tasks.base import Examples, LabelInfo, Task
from fmhub.training.precision import inference_copy
from fmhub.training.progress import ProgressSink

log = logging.getLogger("fmhub.finetune")

ZERO_SHOT = "test_zero_shot"
"""Metrics key of the base model's zero-shot metrics on the test split."""


def perplexity(loss: float | None) -> float | None:
    """``exp(loss)`` of a mean token cross-entropy (None for a missing or non-finite loss; ``inf``
    when the exponent overflows)."""
    if not isinstance(loss, (int, float)) or not math.isfinite(loss):
        return None
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


def last_validation_loss(log_history: list[dict[str, Any]]) -> float | None:
    """The last per-epoch (or per-``save_steps``) validation loss of a Trainer's log history."""
    losses = [h["eval_loss"] for h in log_history if isinstance(h.get("eval_loss"), (int, float))]
    return float(losses[-1]) if losses else None


def evaluate_splits(task: Task, model: Any, tokenizer: Any, splits: dict[str, Examples], info: LabelInfo,
                    hp: Any, folder: Path, sink: ProgressSink, options: dict[str, Any],
                    warnings: list[str], split_names: tuple[str, ...] = ("validation", "test"),
                    suffix: str = "") -> dict[str, Any]:
    """Evaluate ``model`` on each split of ``split_names`` present in ``splits``.

    Predictions go to ``folder/predictions-<split><suffix>.jsonl``; ``eval`` events name the split
    as ``<split><suffix>``.

    Returns:
        ``{"<split><suffix>": metrics}``.
    """
    metrics: dict[str, Any] = {}
    for split in split_names:
        if split not in splits:
            continue
        name = f"{split}{suffix}"
        sink.event("stage", {"stage": f"evaluating {name}"})
        t0 = time.perf_counter()
        metrics[name] = evaluate_split(task, model, tokenizer, splits[split], info,
                                       batch_size=hp.per_device_eval_batch_size, max_seq_length=hp.max_seq_length,
                                       predictions_path=folder / f"predictions-{name}.jsonl",
                                       progress=lambda done, total, name=name: sink.event(
                                           "predict", {"split": name, "done": done, "total": total}),
                                       warnings=warnings, **options)
        sink.event("eval", {"split": name, "metrics": metrics[name],
                            "runtime_s": round(time.perf_counter() - t0, 2)})
    return metrics


@contextlib.contextmanager
def merged_for_inference(model: Any) -> Iterator[Any]:
    """A ``PeftModel``'s adapters folded into its weights while predicting (``merge_adapter``; the
    adapter layers are skipped, so generation costs what the base costs), unfolded afterwards
    (``unmerge_adapter``; the adapter weights are unchanged). Other models as they are."""
    merge = getattr(model, "merge_adapter", None)
    if not (callable(merge) and hasattr(model, "peft_config")) or getattr(model, "is_loaded_in_4bit", False):
        yield model
        return
    merge()
    try:
        yield model
    finally:
        model.unmerge_adapter()


@contextlib.contextmanager
def base_model_of(model: Any, load_base: Any) -> Iterator[Any]:
    """The base model of a trained ``model``: the same weights with the LoRA adapters switched off
    (a ``PeftModel``), else a fresh load with ``load_base()`` (a full fine-tune)."""
    disable = getattr(model, "disable_adapter", None)
    if callable(disable) and hasattr(model, "peft_config"):
        with disable():
            yield model
        return
    base = load_base()
    base.to(next(model.parameters()).device)
    try:
        yield base
    finally:
        del base


def zero_shot_metrics(task: Task, model: Any, load_base: Any, tokenizer: Any, splits: dict[str, Examples],
                      info: LabelInfo, hp: Any, folder: Path, sink: ProgressSink,
                      options: dict[str, Any], bf16: bool = False) -> dict[str, Any]:
    """The base model's metrics on the test split with the same generation settings and precision
    (``{"test_zero_shot": metrics}``; empty without a test split). ``bf16``: predict with a bf16
    copy (:func:`~fmhub.training.precision.inference_copy`), as the fine-tuned model is scored."""
    if "test" not in splits:
        return {}
    with base_model_of(model, load_base) as base, inference_copy(base, bf16) as scorer:
        return evaluate_splits(task, scorer, tokenizer, splits, info, hp, folder, sink, options, [],
                               split_names=("test",), suffix=ZERO_SHOT.removeprefix("test"))


def record_prediction_warnings(report: ValidationReport, warnings: list[str], folder: Path,
                               sink: ProgressSink) -> None:
    """Put warnings about a trained model's predictions (one class only, no entity at all) in the
    job's log, its progress events and its report (``report.json`` is written again); the model is
    still registered."""
    from fmhub.data.problems import Problem

    if not warnings:
        return
    for text in warnings:
        log.warning("%s", text)
        sink.event("warning", {"message": text})
        report.warnings.append(Problem(text, severity="warning"))
    (folder / "report.json").write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
