"""Evaluation use cases: a model's metrics on one split, and on a user's test file."""

from __future__ import annotations

from typing import Any

from fmhub.tasks.base import Examples, LabelInfo, Task


def evaluate_split(task: Task, model: Any, tokenizer: Any, examples: Examples, info: LabelInfo, *,
                   batch_size: int = 64, max_seq_length: int = 512, **options: Any) -> dict[str, Any]:
    """Predict ``examples`` in length-sorted batches and compute the task's metrics.

    Returns:
        The metrics dict of :meth:`Task.compute_metrics` (e.g. accuracy, f1_macro, ...).
    """
    options = {**info.extra, **options}
    results = task.predict(model, tokenizer, task.model_inputs(examples), batch_size=batch_size,
                           max_seq_length=max_seq_length, **options)
    return task.compute_metrics(task.predictions_for_metrics(results), task.references(examples), info)
