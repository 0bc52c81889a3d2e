"""Writing a model folder built on this machine (derived or dequantised catalog models) into the
cache under FMHUB_HOME, atomically."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any


def save_model_folder(model: Any, tokenizer: Any, dest: Path) -> Path:
    """Save ``model`` (safetensors) and ``tokenizer`` into ``dest``.

    The folder is written beside ``dest`` and renamed into place, so a crash or interrupt leaves no
    half-written copy that would later be taken for a built model.

    Returns:
        ``dest``.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".tmp-{dest.name}-{uuid.uuid4().hex[:8]}"
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
