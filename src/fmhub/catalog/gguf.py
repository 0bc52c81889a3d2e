"""Catalog models whose weights come as a GGUF file inside an installed Python package.

The GGUF file is found through the package's metadata (``importlib.metadata``; the package is never
imported) and dequantised once, with transformers' GGUF loader (needs the ``gguf`` package), into a
Hugging Face folder (config, tokenizer, safetensors) under
``FMHUB_HOME/artifacts/cache/gguf/<name>``. Later loads read that folder (~0.2 s instead of ~20 s).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from fmhub.catalog.cache import save_model_folder
from fmhub.config import get_settings
from fmhub.entities import ModelCard


def gguf_file(card: ModelCard) -> Path | None:
    """The GGUF file the card's package installed, or None when the package is not installed.

    Args:
        card: A card whose source has ``package`` (distribution name) and ``gguf_file``.
    """
    name = card.source.gguf_file
    if not card.source.package or not name:
        return None
    try:
        dist = importlib.metadata.distribution(card.source.package)
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in dist.files or []:
        if entry.name == name:
            path = Path(str(dist.locate_file(entry)))
            return path if path.is_file() else None
    return None


def dequantised_path(card: ModelCard) -> Path:
    """Where the dequantised copy lives: ``FMHUB_HOME/artifacts/cache/gguf/<name>``."""
    return get_settings().artifacts_dir / "cache" / "gguf" / card.name


def dequantise(gguf: Path, dest: Path) -> Path:
    """Load ``gguf`` with transformers (weights dequantised to float32) and save it to ``dest``.

    The folder is written beside ``dest`` and renamed into place, so a crash leaves no half copy.

    Returns:
        ``dest``, holding config.json, model.safetensors, generation_config.json and the tokenizer.

    Raises:
        ImportError: the ``gguf`` package is missing.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The loader has already dequantised every tensor; drop the quantizer so the model saves as a
    # plain checkpoint (transformers refuses to serialise a model it still marks as GGUF-quantised).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return save_model_folder(model, tokenizer, dest)
