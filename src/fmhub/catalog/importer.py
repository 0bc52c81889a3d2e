"""Checking and copying a local Hugging Face model folder before it is registered.

A folder is accepted when it holds ``config.json`` for a built-in transformers architecture,
safetensors weights (pickle weights only when explicitly allowed) and tokenizer files. Nothing
in the folder is executed: configs are read as JSON and weights only through safetensors headers.
"""

from __future__ import annotations

import fnmatch
import json
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmhub.errors import ConflictError, ImportRefusedError

#: Weight files that are Python pickles (loading them can run arbitrary code).
PICKLE_WEIGHT_PATTERNS = ("pytorch_model*.bin", "*.pt", "*.pth", "*.pkl", "*.ckpt")
#: Pickle files a Trainer checkpoint holds next to the weights; never weights, never copied.
TRAINER_STATE_FILES = ("optimizer.pt", "scheduler.pt", "rng_state*.pth", "training_args.bin", "scaler.pt")
#: Any one of these makes a tokenizer (vocab.json needs merges.txt too).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "spm.model",
    "tokenizer.model",
    "source.spm",
)
#: Files copied into the artifact store (besides pickle weights when allowed).
COPY_PATTERNS = (
    "*.json", "*.safetensors", "tokenizer*", "*.txt", "*.model", "*.spm", "README.md", "LICENSE*",
)
_INTEGER_DTYPES = {"BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64"}


@dataclass
class FolderInfo:
    """What :func:`inspect_model_folder` found in an accepted folder.

    Attributes:
        path: The folder.
        config: ``config.json`` as a dict.
        model_type: ``config["model_type"]``.
        architectures: ``config["architectures"]`` (may be empty).
        weight_files: Weight file names (safetensors, or pickle files when allowed).
        has_tokenizer: Always True for an accepted folder.
        parameters: Number of floating-point values in the safetensors files (integer buffers
            such as ``position_ids`` are not counted); None for pickle weights.
        uses_pickle: True when the weights are pickle files.
        tokenizer_files: Tokenizer file names found.
    """

    path: Path
    config: dict[str, Any]
    model_type: str | None
    architectures: list[str]
    weight_files: list[str]
    has_tokenizer: bool
    parameters: int | None
    uses_pickle: bool
    tokenizer_files: list[str] = field(default_factory=list)


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def _is_pickle_weight(name: str) -> bool:
    return _matches(name, PICKLE_WEIGHT_PATTERNS) and not _matches(name, TRAINER_STATE_FILES)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportRefusedError(
            f"{path} is not readable JSON: {exc}", hint="Fix or regenerate the file."
        ) from exc


def _check_no_remote_code(path: Path, config: dict[str, Any]) -> None:
    hint = (
        "Convert the model to a standard transformers architecture (one that loads without "
        "trust_remote_code) and import that folder."
    )
    for name in ("config.json", "tokenizer_config.json"):
        data = config if name == "config.json" else None
        if data is None and (path / name).is_file():
            data = _read_json(path / name)
        if isinstance(data, dict) and "auto_map" in data:
            raise ImportRefusedError(
                f"{path / name} has an auto_map (custom model code): refused, fmhub never runs "
                "remote code.",
                hint=hint,
            )
    code = sorted(str(p.relative_to(path)) for p in path.rglob("*.py"))
    if code:
        raise ImportRefusedError(
            f"{path} contains Python code ({', '.join(code[:5])}): refused, fmhub never runs "
            "remote code.",
            hint=hint,
        )
    model_type = config.get("model_type")
    if model_type is not None:
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

        if model_type not in CONFIG_MAPPING_NAMES:
            raise ImportRefusedError(
                f"{path / 'config.json'}: model_type {model_type!r} is not a built-in "
                "transformers architecture: refused, fmhub never runs remote code.",
                hint=hint,
            )


def _count_parameters(path: Path, files: list[str]) -> int:
    from safetensors import safe_open

    total = 0
    for name in files:
        try:
            with safe_open(str(path / name), framework="pt") as handle:
                for key in handle.keys():
                    tensor = handle.get_slice(key)
                    if tensor.get_dtype() not in _INTEGER_DTYPES:
                        total += math.prod(tensor.get_shape())
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            raise ImportRefusedError(
                f"{path / name} is not a valid safetensors file: {exc}",
                hint="Save the weights again with `model.save_pretrained(folder)`.",
            ) from exc
    return total


def _tokenizer_files(names: set[str]) -> list[str]:
    found = [n for n in TOKENIZER_FILES if n in names]
    if "vocab.json" in names and "merges.txt" in names:
        found += ["vocab.json", "merges.txt"]
    return found


def inspect_model_folder(path: Path, allow_pickle: bool = False) -> FolderInfo:
    """Check that a local folder is an importable Hugging Face model, without running its code.

    Args:
        path: The folder (config, weights and tokenizer files at its top level).
        allow_pickle: Accept pickle weights (``pytorch_model.bin``, ``*.pt``, ``*.pth``,
            ``*.pkl``, ``*.ckpt``) when the folder has no safetensors weights.

    Returns:
        What the folder holds, with the parameter count read from safetensors headers.

    Raises:
        ImportRefusedError: If the folder is missing or not a directory; has no readable
            ``config.json``; carries custom code (``auto_map``, ``*.py`` files, a
            ``model_type`` transformers does not know); has only pickle weights and
            ``allow_pickle`` is false; has no weights; or has no tokenizer files. The message
            names the files concerned.
    """
    path = Path(path)
    if not path.exists():
        raise ImportRefusedError(
            f"Model folder {path} does not exist.", hint="Check the path and try again."
        )
    if not path.is_dir():
        raise ImportRefusedError(
            f"{path} is not a directory.",
            hint="Pass the folder that holds config.json, the weights and the tokenizer files.",
        )
    config_path = path / "config.json"
    if not config_path.is_file():
        raise ImportRefusedError(
            f"{path} has no config.json.",
            hint="Save the model with `model.save_pretrained(folder)` or download the full repo.",
        )
    config = _read_json(config_path)
    if not isinstance(config, dict):
        raise ImportRefusedError(f"{config_path} is not a JSON object.", hint="Fix the file.")
    _check_no_remote_code(path, config)

    names = {p.name for p in path.iterdir() if p.is_file()}
    safetensors_files = sorted(n for n in names if n.endswith(".safetensors"))
    pickle_files = sorted(n for n in names if _is_pickle_weight(n))
    uses_pickle = False
    if safetensors_files:
        weight_files = safetensors_files
    elif pickle_files:
        if not allow_pickle:
            raise ImportRefusedError(
                f"{path} has only pickle weights ({', '.join(pickle_files)}); loading pickle "
                "files can run arbitrary code, so they are refused.",
                hint="Convert the weights to safetensors (`model.save_pretrained(folder)`), or "
                "pass `--allow-pickle` if you trust where the file came from.",
            )
        weight_files, uses_pickle = pickle_files, True
    else:
        raise ImportRefusedError(
            f"{path} has no weight files (expected *.safetensors).",
            hint="Download the weights too, or save the model with `model.save_pretrained`.",
        )

    tokenizer_files = _tokenizer_files(names)
    if not tokenizer_files:
        raise ImportRefusedError(
            f"{path} has no tokenizer files: expected one of {', '.join(TOKENIZER_FILES)} "
            "or vocab.json + merges.txt.",
            hint="Save the tokenizer into the same folder with `tokenizer.save_pretrained(folder)`.",
        )
    architectures = config.get("architectures") or []
    return FolderInfo(
        path=path,
        config=config,
        model_type=config.get("model_type"),
        architectures=list(architectures),
        weight_files=weight_files,
        has_tokenizer=True,
        parameters=None if uses_pickle else _count_parameters(path, weight_files),
        uses_pickle=uses_pickle,
        tokenizer_files=tokenizer_files,
    )


def copy_model_folder(src: Path, dest: Path, allow_pickle: bool = False) -> None:
    """Copy the Hugging Face files of ``src`` into a new folder ``dest``, all or nothing.

    Only top-level config, JSON, safetensors, tokenizer, ``*.txt``, ``*.model``, ``*.spm``,
    README and LICENSE files are copied (pickle weights only when ``allow_pickle``); files go
    to a temporary sibling folder that is renamed to ``dest`` at the end, so a failure leaves
    nothing behind.

    Args:
        src: The checked model folder.
        dest: The new folder; it must not exist yet.
        allow_pickle: Also copy pickle weight files.

    Raises:
        ConflictError: If ``dest`` already exists.
        OSError: If copying fails (``dest`` is then not created).
    """
    src, dest = Path(src), Path(dest)
    if dest.exists():
        raise ConflictError(f"{dest} already exists.", hint="Choose another destination.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        for item in sorted(src.iterdir()):
            if not item.is_file():
                continue
            wanted = _matches(item.name, COPY_PATTERNS) or (
                allow_pickle and _is_pickle_weight(item.name)
            )
            if wanted:
                shutil.copy2(item, tmp / item.name)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
