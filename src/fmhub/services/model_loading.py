"""Loading a resolved model for a task: a full model folder, or a LoRA adapter on its base.

Every caller that holds a :class:`~fmhub.services.models.ResolvedModel` (predict, evaluate, the
fine-tune's own evaluation and zero-shot comparison, deployments) loads through here, so an adapter
version loads as transparently as a full model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fmhub.tasks.adapters import ADAPTER_FILE, is_adapter_folder
from fmhub.tasks.base import LabelInfo, Task

CONFIG_KEY = "config"
"""Key of :data:`~fmhub.tasks.adapters.ADAPTER_FILE` holding the ``fmhub_*`` settings a full model
keeps in its ``config.json`` (e.g. the instruction of a causal LM's prompt); an adapter has no
``config.json`` of its own."""


def config_folder(resolved: Any) -> Path:
    """The folder whose ``config.json`` describes the weights: the base's for an adapter version."""
    return Path(resolved.base_path or resolved.path)


def is_causal_lm_folder(path: Path) -> bool:
    """True when the model folder holds a decoder-only model (its config is not encoder-decoder)."""
    from transformers import AutoConfig

    from fmhub.tasks.causal_lm import is_causal_lm

    return is_causal_lm(AutoConfig.from_pretrained(str(path)))


def model_max_length(path: Path) -> int | None:
    """The longest input (tokens) a model's position embeddings allow, from its config.json."""
    try:
        config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for key in ("max_position_embeddings", "n_positions", "max_seq_len"):
        value = config.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return None


def load_for_task(task: Task, path: str | Path, info: LabelInfo | None = None,
                  base_path: str | Path | None = None) -> Any:
    """Load ``path`` for ``task``; an adapter folder loads on ``base_path`` (merged for inference).

    The task's ``load_model`` is given ``base_path`` (the text-to-text and chat tasks load adapters
    through :func:`fmhub.tasks.adapters.load_causal_lm`).

    Raises:
        ValueError: an adapter folder without ``base_path``.
    """
    if base_path is None or not is_adapter_folder(path):
        return task.load_model(str(path), info)
    model = task.load_model(str(path), info, base_path=str(base_path))
    apply_adapter_settings(model, path)
    return model


def load_resolved(task: Task, resolved: Any, info: LabelInfo | None = None) -> Any:
    """:func:`load_for_task` for a resolved model reference (its ``base_path`` passed on)."""
    return load_for_task(task, resolved.path, info, resolved.base_path)


def apply_adapter_settings(model: Any, path: str | Path) -> None:
    """Set the ``fmhub_*`` settings an adapter folder keeps (see :data:`CONFIG_KEY`) on ``model.config``."""
    try:
        saved = json.loads((Path(path) / ADAPTER_FILE).read_text(encoding="utf-8")).get(CONFIG_KEY) or {}
    except (OSError, ValueError):
        return
    for key, value in saved.items():
        if key.startswith("fmhub_"):
            setattr(model.config, key, value)


def serving_paths(ctx: Any, resolved: Any, loads_from_store: bool) -> dict[str, str | None]:
    """The model files of a deployment's instance config (``model_path``, ``base_model_path``).

    Args:
        ctx: Service context (to resolve an adapter's base version).
        resolved: The deployment's resolved model.
        loads_from_store: The serving backend's replicas read versions from the artifact store
            (Ray Serve): workspace versions are given as artifact URLs then.

    Returns:
        ``{"model_path": ..., "base_model_path": ...}``; ``base_model_path`` is None for a full
        model, else the base's folder, or its artifact URL when the base is a workspace version and
        ``loads_from_store`` (a catalog base is its folder on this machine).
    """
    from fmhub.services.models import resolve_model
    from fmhub.tasks.adapters import adapter_base_ref

    model_path = str(resolved.path)
    if loads_from_store and resolved.version is not None:
        model_path = resolved.version.path
    base: str | None = None
    if resolved.base_path is not None:
        base = str(resolved.base_path)
        base_ref = adapter_base_ref(resolved.path)
        if loads_from_store and base_ref:
            base_resolved = resolve_model(ctx, base_ref)
            if base_resolved.version is not None:
                base = base_resolved.version.path
    return {"model_path": model_path, "base_model_path": base}
