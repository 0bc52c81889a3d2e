"""Evaluating a model on one split: its predictions in length-sorted chunks, the task's metrics, and
the predictions written beside them (the fine-tune and evaluate jobs alike)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fmhub.data.mapping import GROUP_KEY
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
        The metrics dict of :meth:`Task.compute_metrics` (e.g. accuracy, f1_macro, ...); when the
        rows carry a ``group`` (``--group-by``), also ``"groups": {value: metrics}``, the same
        metrics on each group's rows (see :func:`group_metrics`).
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
            for line, row, inp, pred, ref in zip(examples.lines, examples.rows, inputs, results, references):
                record = {"line": line, "input": inp, "prediction": pred, "reference": ref}
                if GROUP_KEY in row:
                    record["group"] = row[GROUP_KEY]
                f.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    predictions = task.predictions_for_metrics(results)
    if warnings is not None:
        warnings.extend(task.prediction_warnings(predictions, info, examples.split or "evaluated"))
    metrics = task.compute_metrics(predictions, references, info)
    groups = group_metrics(task, examples, predictions, references, info)
    if groups is not None:
        metrics["groups"] = groups
    return metrics


def group_metrics(task: Task, examples: Examples, predictions: list[Any], references: list[Any],
                  info: LabelInfo) -> dict[str, dict[str, Any]] | None:
    """The task's metrics on each group's rows (rows with a ``group`` value).

    Args:
        task: The task module.
        examples: The evaluated rows (``[n]``), each with ``row["group"]`` when grouped.
        predictions, references: ``[n]``, in the form :meth:`Task.compute_metrics` takes.
        info: The label space.

    Returns:
        ``{group value: metrics}`` sorted by value, or None when no row has a group (or the
        predictions are not one per row).
    """
    values = [row.get(GROUP_KEY) for row in examples.rows]
    if not any(v is not None for v in values) or not (len(values) == len(predictions) == len(references)):
        return None
    out: dict[str, dict[str, Any]] = {}
    for value in sorted({str(v) for v in values if v is not None}):
        idx = [i for i, v in enumerate(values) if v is not None and str(v) == value]
        out[value] = task.compute_metrics([predictions[i] for i in idx], [references[i] for i in idx], info)
    return out
