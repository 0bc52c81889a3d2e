"""The predict use case: load a registered (or catalog) model and predict for raw inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import re

from fmhub.errors import SpecError
from fmhub.services.context import Context
from fmhub.services.models import resolve_model
from fmhub.tasks import get_task
from fmhub.devices import choose_device


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
    inputs = check_inputs(t, inputs, "inputs")
    tokenizer = AutoTokenizer.from_pretrained(str(resolved.path))
    model = t.load_model(str(resolved.path), None)
    require_trained_head(model, resolved.ref, task_name)
    model.to(choose_device(device).device)
    predictions = t.predict(model, tokenizer, inputs, batch_size=batch_size, top_k=top_k) if inputs else []
    return {"model": resolved.ref, "task": task_name, "predictions": predictions}


def check_inputs(task: Any, values: list[Any], field: str) -> list[Any]:
    """Check every raw input against the task's request form (predict and endpoint scoring alike).

    Args:
        task: The task module.
        values: The inputs as sent.
        field: Their name in the request, for messages (``input_data[3]: expected ...``).

    Returns:
        The inputs in the form ``task.predict`` takes.

    Raises:
        SpecError: naming the first input of the wrong shape.
    """
    import json

    checked = []
    for i, value in enumerate(values):
        try:
            checked.append(task.check_score_input(value))
        except ValueError as exc:
            raise SpecError(f"{field}[{i}]: {exc}", hint=f"e.g. {json.dumps(task.score_example)}") from None
        problem = text_problem(value)
        if problem:
            raise SpecError(f"{field}[{i}]: {problem}",
                            hint="send UTF-8 text; in JSON, a \\uD800-\\uDFFF escape must be one half of a pair")
    return checked


def text_problem(value: Any) -> str | None:
    """Why a raw input holds text that cannot be encoded (an unpaired surrogate such as ``"\\ud800"``,
    which JSON allows and no tokenizer takes), or None. Looks into lists and objects."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return (f"the text holds an unpaired surrogate {ascii(value[exc.start])[1:-1]} at character "
                    f"{exc.start}, which is not Unicode text")
        return None
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for item in items:
        problem = text_problem(item)
        if problem:
            return problem
    return None


def require_trained_head(model: Any, ref: str, task: str) -> None:
    """Refuse a classification model whose labels are the placeholders ``LABEL_0``, ``LABEL_1``...

    Such a head was never trained (a base model loaded for a task); its answers would be noise.

    Raises:
        SpecError: naming the model and what to do instead.
    """
    labels = list(getattr(model.config, "id2label", {}).values())
    if task in ("text-classification", "token-classification") and labels and \
            all(re.fullmatch(r"LABEL_\d+", str(x)) for x in labels):
        raise SpecError(f"model '{ref}' has no trained {task} head (its labels are {labels[:3]}...)",
                        hint=f"fine-tune it first: fmhub finetune --model {ref} --task {task} --train FILE")


LABELLED_TASKS = ("text-classification", "token-classification")
"""Tasks whose head is untrained while its labels are the placeholders ``LABEL_0``, ``LABEL_1``..."""


def head_problem(path: str | Path, task: str) -> str | None:
    """Why the model folder at ``path`` cannot be evaluated for ``task``, or None.

    Reads only ``config.json`` (no weights): a classifier whose labels are all placeholders was never
    trained for the task.
    """
    folder = Path(path)
    if not folder.is_dir():
        return "its files are not on this machine"
    if task not in LABELLED_TASKS:
        return None
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "its config.json cannot be read"
    labels = [str(x) for x in (config.get("id2label") or {}).values()]
    if not labels or all(re.fullmatch(r"LABEL_\d+", x) for x in labels):
        which = f"its labels are {', '.join(labels[:3])}" if labels else "it has no label names"
        return f"its {task} head was never trained ({which}): fine-tune it first"
    return None
