"""What a fine-tune form offers: the model's fine-tuning tasks and each hyperparameter with its
effective default and help text (the wizard and ``--help`` texts alike; the local devices are
:func:`fmhub.devices.local_devices`)."""

from __future__ import annotations

import re
import typing
from typing import Any

from fmhub.services.context import Context
from fmhub.training.hyperparameters import Hyperparameters

MAIN_HYPERPARAMETERS = ("learning_rate", "num_train_epochs", "per_device_train_batch_size")
"""Shown first; the others are advanced."""


def finetune_target(ctx: Context, ref: str) -> dict[str, Any]:
    """The model a fine-tune starts from and the tasks fmhub can fine-tune it for.

    Args:
        ctx: Service context.
        ref: Catalog name or workspace ``name[:version]``.

    Returns:
        ``{"ref", "card", "tasks"}``: ``card`` is the model card as a dict, ``tasks`` the card's
        fine-tuning tasks this release can train, in the card's order.

    Raises:
        NotFoundError: no such model.
        SpecError: a malformed reference.
    """
    from fmhub.services.models import show_model
    from fmhub.tasks import task_names

    shown = show_model(ctx, ref)
    card = shown["card"]
    known = task_names()
    return {"ref": ref, "card": card, "tasks": [t for t in card.get("finetuning_tasks", []) if t in known]}


def default_registered_name(model: str, task: str) -> str:
    """The workspace name a fine-tune registers its result under by default: ``<model>-<task>``."""
    return f"{model.split(':', 1)[0]}-{task}"


def hyperparameter_fields(task: str, card_defaults: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every field of :class:`~fmhub.training.hyperparameters.Hyperparameters`, for a form.

    Args:
        task: The task (its default hyperparameters and metrics apply).
        card_defaults: The model card's ``defaults`` (they override the task's).

    Returns:
        One dict per field, main ones first: ``name``, ``kind`` (``float``, ``int`` or
        ``choice``), ``default`` (the value a job uses when the field is left empty; None when
        computed at run time), ``help`` (from the class docstring), ``choices`` (for ``choice``),
        ``min``/``max`` (bounds, None when open), ``main`` (one of :data:`MAIN_HYPERPARAMETERS`).

    Raises:
        SpecError: unknown task.
    """
    from fmhub.tasks import get_task

    task_obj = get_task(task)
    resolved = Hyperparameters().resolve(task_obj.default_hyperparameters, card_defaults or {},
                                         task_obj.metric_for_best_model)
    helps = _attribute_docs(Hyperparameters.__doc__ or "")
    fields = []
    for name, info in Hyperparameters.model_fields.items():
        kind, choices = _kind(info.annotation)
        if name == "metric_for_best_model":
            kind, choices = "choice", [*task_obj.metric_names, "loss"]
        lower, upper = _bounds(info.metadata)
        default = getattr(resolved, name)
        fields.append({"name": name, "kind": kind, "default": default, "help": helps.get(name, ""),
                       "choices": choices, "min": lower, "max": upper, "main": name in MAIN_HYPERPARAMETERS})
    fields.sort(key=lambda f: (not f["main"], MAIN_HYPERPARAMETERS.index(f["name"]) if f["main"] else 0))
    return fields


def _attribute_docs(doc: str) -> dict[str, str]:
    """``name: text`` entries of a Google-style ``Attributes:`` section (continuation lines joined)."""
    section = doc.split("Attributes:", 1)[1] if "Attributes:" in doc else ""
    out: dict[str, str] = {}
    current = None
    for line in section.splitlines():
        match = re.match(r"^\s{4,8}(\w+):\s*(.*)$", line)
        if match and len(line) - len(line.lstrip()) <= 8:
            current = match.group(1)
            out[current] = match.group(2).strip()
        elif current and line.strip():
            out[current] += " " + line.strip()
    return {k: " ".join(v.replace("``", "").split()) for k, v in out.items()}


def _kind(annotation: Any) -> tuple[str, list[str] | None]:
    first = annotation
    if typing.get_origin(annotation) is not typing.Literal:
        first = next((a for a in typing.get_args(annotation) if a is not type(None)), annotation)
    if typing.get_origin(first) is typing.Literal:
        return "choice", [str(v) for v in typing.get_args(first)]
    if first is int:
        return "int", None
    if first is float:
        return "float", None
    return "text", None


def _bounds(metadata: list[Any]) -> tuple[float | None, float | None]:
    lower = upper = None
    for item in metadata:
        for attr in ("ge", "gt"):
            if getattr(item, attr, None) is not None:
                lower = getattr(item, attr)
        for attr in ("le", "lt"):
            if getattr(item, attr, None) is not None:
                upper = getattr(item, attr)
    return lower, upper
