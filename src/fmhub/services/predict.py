"""The predict use case: load a registered (or catalog) model and predict for raw inputs."""

from __future__ import annotations

from typing import Any

from fmhub.devices import choose_device
from fmhub.errors import OverloadedError, SpecError
from fmhub.services.context import Context
from fmhub.services.model_loading import load_resolved
from fmhub.services.models import resolve_model
from fmhub.serving.held_model import HeldModel
from fmhub.serving.instance import model_max_tokens
from fmhub.tasks import get_task
from fmhub.tasks.clipping import clip_input

MAX_PREDICT_TOKENS = 4096
"""Texts are cut to this many tokens' worth of characters before tokenizing (see
:mod:`fmhub.tasks.clipping`); every model truncates to its own, smaller limit after."""

PREDICT_WAIT_S = 30.0
"""Longest a predict call waits for the one before it (seconds); past it the call is refused with
429. One process predicts one call at a time: a server's ``POST /api/v1/models/{ref}/predict``
would otherwise load a model per concurrent request and run out of memory."""

HELD = HeldModel(PREDICT_WAIT_S)
"""The model the last call loaded, by (version, folder, task, device): the next call for the same
model reuses it (registered versions never change)."""


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
        OverloadedError: another call held the model for over :data:`PREDICT_WAIT_S` (429).
    """
    resolved = resolve_model(ctx, ref)
    task_name = task or (resolved.version.task if resolved.version else None)
    if task_name is None:
        raise SpecError(f"'{ref}' is a catalog model; say which task to predict with --task")
    if task and resolved.version is not None and resolved.version.task and task != resolved.version.task:
        raise SpecError(f"'{resolved.ref}' was registered for {resolved.version.task}, not {task}",
                        hint=f"leave out the task, or fine-tune the model for {task} first "
                             "(its head was not trained for it: its predictions would be noise)")
    t = get_task(task_name)
    inputs = [clip_input(x, MAX_PREDICT_TOKENS)[0] for x in check_inputs(t, inputs, "inputs")]
    try:
        with HELD.use((resolved.ref, str(resolved.path), task_name, device),
                      lambda: _load(t, resolved, device)) as (tokenizer, model):
            predictions = t.predict(model, tokenizer, inputs, batch_size=batch_size, top_k=top_k,
                                    max_seq_length=_max_seq_length(t, model)) if inputs else []
    except TimeoutError as exc:
        raise OverloadedError(str(exc), "retry later; for concurrent traffic deploy the model to an endpoint "
                              "(`fmhub endpoints deploy`), which batches requests", headers={"Retry-After": "10"}) from exc
    return {"model": resolved.ref, "task": task_name, "predictions": predictions}


def _max_seq_length(task: Any, model: Any) -> int:
    """The task's own input length for ``predict``, lowered to the model's position embeddings."""
    import inspect

    default = inspect.signature(task.predict).parameters["max_seq_length"].default
    return model_max_tokens(model, cap=default)


def _load(task: Any, resolved: Any, device: str) -> tuple[Any, Any]:
    """The tokenizer and model of ``resolved`` on ``device``."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(resolved.path))
    model = load_resolved(task, resolved)  # an adapter version loads on its base
    task.require_trained_head(model, resolved.ref)
    model.to(choose_device(device).device)
    return tokenizer, model


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
