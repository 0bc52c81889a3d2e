"""What a fine-tune form offers: the model's fine-tuning tasks, the devices of its compute, and each
hyperparameter with its effective default and help text (the wizard and ``--help`` texts alike)."""

from __future__ import annotations

import re
import typing
from functools import lru_cache
from typing import Any

from fmhub.services.context import Context
from fmhub.training.hyperparameters import Hyperparameters

MAIN_HYPERPARAMETERS = ("learning_rate", "num_train_epochs", "per_device_train_batch_size")
"""Shown first; the others are advanced."""

METHOD_HYPERPARAMETERS = ("finetuning_type", "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules")
"""The fine-tuning method and its LoRA settings, shown together (beside the main ones when the task
fine-tunes with LoRA by default)."""


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


@lru_cache(maxsize=4)
def job_devices(compute: str = "local") -> tuple[dict[str, str], ...]:
    """The devices a job of ``compute`` can be given, from its runner's capacity (not from the
    machine that serves the form): ``auto``, ``cpu`` and one ``cuda:N`` per GPU it offers.

    Counting GPUs does not initialise CUDA in this process.

    Returns:
        ``({"value": "auto", "label": ...}, {"value": "cpu", ...}, {"value": "cuda:0", ...}, ...)``.

    Raises:
        SpecError: no runner for ``compute``.
    """
    from fmhub.services.scheduler import runner_capacity

    gpus = runner_capacity(compute).gpus
    auto = f"a CUDA GPU ({gpus[0]})" if gpus else "the CPU (no GPU found)"
    devices = [{"value": "auto", "label": f"auto: {auto}"}, {"value": "cpu", "label": "cpu"}]
    devices += [{"value": g, "label": f"{g} (GPU {g.split(':', 1)[1]})"} for g in gpus]
    return tuple(devices)


def local_devices() -> tuple[dict[str, str], ...]:
    """The devices of a ``local`` job (see :func:`job_devices`)."""
    return job_devices("local")


def check_device(compute: str, device: str | None) -> str:
    """Check a job's ``device`` against what the runner of ``compute`` offers (its capacity), not
    against the machine that took the request.

    Args:
        compute: The job's compute (``local`` ...).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (None: ``auto``).

    Returns:
        The device, normalised (lower case, ``auto`` for empty).

    Raises:
        SpecError: the runner has no such device, or the value is not a device name.
    """
    from fmhub.errors import SpecError
    from fmhub.services.scheduler import runner_capacity

    requested = (device or "auto").strip().lower()
    if requested == "auto":
        return requested
    capacity = runner_capacity(compute)
    if requested == "cpu" and "cpu" in capacity.devices:
        return requested
    if requested == "cuda" or requested.startswith("cuda:"):
        gpus = capacity.gpus
        if not gpus:
            raise SpecError(f"device '{requested}' requested but no CUDA GPU is available "
                            f"({compute} compute: {capacity.description})",
                            hint="use --device cpu or --device auto")
        index = requested.partition(":")[2]
        if requested == "cuda" or requested in gpus:
            return requested
        if index.isdigit():
            raise SpecError(f"device '{requested}' does not exist ({len(gpus)} GPU(s); {compute} compute: "
                            f"{capacity.description})", hint="use --device cuda:0")
    raise SpecError(f"unknown device '{requested}'", hint="use auto, cpu, cuda or cuda:N")


def hyperparameter_fields(task: str, card_defaults: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every field of :class:`~fmhub.training.hyperparameters.Hyperparameters`, for a form.

    Args:
        task: The task (its default hyperparameters and metrics apply).
        card_defaults: The model card's ``defaults`` (they override the task's).

    Returns:
        One dict per field, main ones first: ``name``, ``kind`` (``float``, ``int``, ``choice``
        (booleans too: ``true``/``false``), ``list`` (comma-separated text) or ``text``),
        ``default`` (the value a job uses when the field is left empty; None when computed at run
        time; for the LoRA fields, the value a LoRA fine-tune uses: card > task > LoRA defaults),
        ``default_text`` (the default as the form writes it: a list comma-separated), ``help``
        (from the class docstring), ``choices`` (for ``choice``), ``min``/``max`` (bounds, None
        when open), ``main`` (one of :data:`MAIN_HYPERPARAMETERS`), ``method`` (one of
        :data:`METHOD_HYPERPARAMETERS`) and ``lora_default`` (True on every field when the task
        fine-tunes with LoRA unless told otherwise).

    Raises:
        SpecError: unknown task.
    """
    from fmhub.tasks import get_task

    task_obj = get_task(task)
    resolved = Hyperparameters().resolve(task_obj.default_hyperparameters, card_defaults or {},
                                         task_obj.metric_for_best_model)
    with_lora = Hyperparameters(finetuning_type="lora").resolve(task_obj.default_hyperparameters,
                                                                card_defaults or {}, task_obj.metric_for_best_model)
    lora_default = resolved.finetuning_type == "lora"
    helps = _attribute_docs(Hyperparameters.__doc__ or "")
    fields = []
    for name, info in Hyperparameters.model_fields.items():
        kind, choices = _kind(info.annotation)
        if name == "metric_for_best_model":
            kind, choices = "choice", [*task_obj.metric_names, "loss"]
        lower, upper = _bounds(info.metadata)
        default = getattr(resolved, name)
        if default is None and name in METHOD_HYPERPARAMETERS:
            default = getattr(with_lora, name)  # what a LoRA fine-tune of this model uses
        fields.append({"name": name, "kind": kind, "default": default, "default_text": _as_text(default),
                       "help": helps.get(name, ""), "choices": choices, "min": lower, "max": upper,
                       "main": name in MAIN_HYPERPARAMETERS, "method": name in METHOD_HYPERPARAMETERS,
                       "lora_default": lora_default})
    fields.sort(key=lambda f: (not f["main"], MAIN_HYPERPARAMETERS.index(f["name"]) if f["main"] else 0))
    return fields


def list_hyperparameters() -> tuple[str, ...]:
    """The hyperparameters whose value is a list (a form writes them as comma-separated text)."""
    return tuple(name for name, info in Hyperparameters.model_fields.items() if _kind(info.annotation)[0] == "list")


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


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
    if typing.get_origin(annotation) not in (typing.Literal, list):
        first = next((a for a in typing.get_args(annotation) if a is not type(None)), annotation)
    if typing.get_origin(first) is typing.Literal:
        return "choice", [str(v) for v in typing.get_args(first)]
    if first is bool:
        return "choice", ["true", "false"]
    if typing.get_origin(first) is list:
        return "list", None
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
