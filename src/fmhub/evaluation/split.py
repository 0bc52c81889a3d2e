"""Evaluating a model on one split: its predictions in length-sorted chunks, the task's metrics, and
the predictions written beside them (the fine-tune and evaluate jobs alike)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fmhub.tasks.base import Examples, LabelInfo, Task


PROGRESS_CHUNK_BATCHES = 8


def generation_options(defaults: dict[str, Any], task: str) -> dict[str, Any]:
    """Per-model settings from the card for the text-to-text tasks.

    Args:
        defaults: The card's ``defaults`` map: ``source_prefix`` and ``instruction`` (a string, or a
            map task -> string) and ``generation`` (``num_beams``, ``max_new_tokens``,
            ``length_penalty``).
        task: The task name.

    Returns:
        The options :meth:`Seq2SeqTask.predict` and ``encode`` take (only those the card sets).
    """
    out: dict[str, Any] = {}
    for key in ("source_prefix", "instruction"):
        value = defaults.get(key)
        if isinstance(value, dict):
            value = value.get(task)
        if value:
            out[key] = value
    for key in ("num_beams", "max_new_tokens", "length_penalty"):
        if key in (defaults.get("generation") or {}):
            out[key] = defaults["generation"][key]
    return out


def evaluate_split(task: Task, model: Any, tokenizer: Any, examples: Examples, info: LabelInfo, *,
                   batch_size: int = 64, max_seq_length: int = 512, predictions_path: Path | None = None,
                   progress: Callable[[int, int], None] | None = None, warnings: list[str] | None = None,
                   **options: Any) -> dict[str, Any]:
    """Predict ``examples`` in length-sorted batches and compute the task's metrics.

    Rows are predicted in chunks of ``PROGRESS_CHUNK_BATCHES`` batches (sorted by length inside a
    chunk), so that long evaluations can report progress.

    Args:
        predictions_path: When given, one JSON line per example is written there: its ``line`` in
            the user's file, the model ``input``, the ``prediction`` and the ``reference``.
        progress: Called as ``progress(rows_done, rows_total)`` after each chunk.
        warnings: When given, the task's warnings about the predictions as a whole (one class
            only, no entity at all) are appended to it.

    Returns:
        The metrics dict of :meth:`Task.compute_metrics` (e.g. accuracy, f1_macro, ...).
    """
    options = {**info.extra, **options}
    inputs = task.model_inputs(examples)
    chunk = max(1, batch_size * PROGRESS_CHUNK_BATCHES)
    results: list[Any] = []
    for start in range(0, len(inputs), chunk):
        results.extend(task.predict(model, tokenizer, inputs[start:start + chunk], batch_size=batch_size,
                                    max_seq_length=max_seq_length, **options))
        if progress:
            progress(len(results), len(inputs))
    references = task.references(examples)
    if predictions_path is not None:
        with Path(predictions_path).open("w", encoding="utf-8") as f:
            for line, inp, pred, ref in zip(examples.lines, inputs, results, references):
                f.write(json.dumps({"line": line, "input": inp, "prediction": pred, "reference": ref},
                                   ensure_ascii=False, default=str) + "\n")
    predictions = task.predictions_for_metrics(results)
    if warnings is not None:
        warnings.extend(task.prediction_warnings(predictions, info, examples.split or "evaluated"))
    return task.compute_metrics(predictions, references, info)
