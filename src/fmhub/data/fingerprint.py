"""Content fingerprints for data files (data assets and lineage record them)."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK_BYTES = 1024 * 1024


def sha256_file(path: str | Path) -> str:
    """Return the SHA-256 of a file's bytes as 64 lowercase hex digits.

    The file is read in 1 MiB chunks, so memory use does not grow with its size.

    Args:
        path: The file.

    Returns:
        The hex digest.

    Raises:
        OSError: The file cannot be opened or read (e.g. ``FileNotFoundError``).
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
