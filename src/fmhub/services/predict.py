"""The predict use case: load a registered (or catalog) model and predict for raw inputs."""

from __future__ import annotations

from typing import Any

from fmhub.errors import SpecError
from fmhub.services.context import Context
from fmhub.services.models import resolve_model
from fmhub.tasks import get_task
from fmhub.training.device import choose_device


def predict(ctx: Context, ref: str, inputs: list[Any], *, task: str | None = None, top_k: int = 1,
            device: str = "auto", batch_size: int = 64) -> dict[str, Any]:
    """Predict with model ``ref`` (``name[:version]``).

    Args:
        ctx: Service context.
        ref: Workspace ``name[:version]`` or catalog name.
        inputs: Raw inputs in the task's request form (strings, or ``[text, text_pair]`` pairs for
            text classification).
        task: The task; defaults to the workspace version's task.
        top_k: Labels returned per input (classification).
        device: ``auto``, ``cpu`` or ``cuda[:N]``.
        batch_size: Inputs per forward pass.

    Returns:
        ``{"model": "name:version", "task": ..., "predictions": [...]}`` with label names.

    Raises:
        SpecError: when the task cannot be known or inputs are empty.
    """
    from transformers import AutoTokenizer

    resolved = resolve_model(ctx, ref)
    task_name = task or (resolved.version.task if resolved.version else None)
    if task_name is None:
        raise SpecError(f"'{ref}' is a catalog model; say which task to predict with --task")
    t = get_task(task_name)
    tokenizer = AutoTokenizer.from_pretrained(str(resolved.path))
    model = t.load_model(str(resolved.path), None)
    model.to(choose_device(device).device)
    predictions = t.predict(model, tokenizer, inputs, batch_size=batch_size, top_k=top_k) if inputs else []
    return {"model": resolved.ref, "task": task_name, "predictions": predictions}
