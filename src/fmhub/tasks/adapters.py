"""LoRA adapter folders: recognise them and load a causal LM with its adapter on its base.

A LoRA fine-tune registers an adapter version: PEFT's ``adapter_config.json`` and
``adapter_model.safetensors`` (a few MB), the tokenizer, the generation config, and
:data:`ADAPTER_FILE`, which names the base model version the adapter belongs to. Whoever resolves
the adapter's version (``services.models.resolve_model``) also resolves its base and passes the
base's local folder here, so ``predict``, ``evaluate`` and endpoints load an adapter as they load a
full model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ADAPTER_CONFIG = "adapter_config.json"
"""PEFT's adapter configuration file: its presence marks an adapter folder."""
ADAPTER_FILE = "fmhub_adapter.json"
"""``{"base_model": "NAME" | "NAME:VERSION", "method": "lora"}``: the base an adapter belongs to."""


def is_adapter_folder(path: str | Path) -> bool:
    """True when ``path`` holds a PEFT adapter (``adapter_config.json``) rather than full weights."""
    return (Path(path) / ADAPTER_CONFIG).is_file()


def adapter_base_ref(path: str | Path) -> str | None:
    """The base model reference an adapter folder names (:data:`ADAPTER_FILE`), or None.

    Falls back to PEFT's ``base_model_name_or_path`` for adapters made elsewhere.
    """
    folder = Path(path)
    for name, key in ((ADAPTER_FILE, "base_model"), (ADAPTER_CONFIG, "base_model_name_or_path")):
        try:
            value = json.loads((folder / name).read_text(encoding="utf-8")).get(key)
        except (OSError, ValueError):
            continue
        if isinstance(value, str) and value:
            return value
    return None


def write_adapter_file(path: str | Path, base_ref: str, method: str = "lora") -> None:
    """Write :data:`ADAPTER_FILE` into an adapter folder (the base version it was trained on)."""
    (Path(path) / ADAPTER_FILE).write_text(json.dumps({"base_model": base_ref, "method": method}, indent=2),
                                           encoding="utf-8")


def load_causal_lm(path: str | Path, base_path: str | Path | None = None, *, merge: bool = True,
                   dtype: Any = None) -> Any:
    """Load a causal LM folder, or an adapter folder on its base.

    Args:
        path: A full model folder, or an adapter folder (:func:`is_adapter_folder`).
        base_path: The base model's local folder, required for an adapter folder.
        merge: Fold the adapter into the base weights (``merge_and_unload``): inference then costs
            what the base costs. False keeps a ``PeftModel`` (e.g. to train the adapter further).
        dtype: ``torch_dtype`` for the weights (None: as saved).

    Returns:
        An ``AutoModelForCausalLM`` (or ``PeftModel`` with ``merge=False``).

    Raises:
        ValueError: an adapter folder without ``base_path``.
    """
    from transformers import AutoModelForCausalLM

    kwargs = {"dtype": dtype} if dtype is not None else {}
    if not is_adapter_folder(path):
        return AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
    if base_path is None:
        raise ValueError(f"{path} holds a LoRA adapter; its base model ({adapter_base_ref(path) or 'unknown'}) "
                         "must be given to load it")
    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(str(base_path), **kwargs)
    model = PeftModel.from_pretrained(base, str(path), is_trainable=not merge)
    return model.merge_and_unload() if merge else model
