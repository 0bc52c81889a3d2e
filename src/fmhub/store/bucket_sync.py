"""Keeping a local working folder (a job's) and its copy in a bucket in step: push and pull."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

LAST = ("trainer_state.json",)
"""Files uploaded after the rest of their folder: a checkpoint counts as complete once its
``trainer_state.json`` is there, so an upload cut short never looks like a checkpoint."""


def push_dir(fs: Any, local: Path, key: str, mirror: bool = False, only: str | None = None) -> int:
    """Upload the files of ``local`` that are new or changed to bucket folder ``key``.

    A file is uploaded when the bucket lacks it, its size differs, or it was modified after the
    stored copy (a bucket keeps whole seconds; an append within that second changes the size).
    Within a folder, the files named in :data:`LAST` go last.

    Args:
        fs: The bucket's fsspec filesystem.
        mirror: Also delete stored files under ``key`` (within ``only``) that ``local`` lacks.
        only: Limit the push to this sub-folder or file of ``local``, e.g. ``checkpoints``.

    Returns:
        The number of files uploaded.
    """
    key = key.rstrip("/")
    scope = f"{key}/{only.strip('/')}" if only else key
    try:
        remote = {p[len(key) + 1:]: info for p, info in fs.find(scope, detail=True).items()}
    except FileNotFoundError:
        remote = {}
    base = local / only if only else local
    found = [base] if base.is_file() else ([p for p in base.rglob("*") if p.is_file()] if base.is_dir() else [])
    files = sorted(found, key=lambda p: (p.parent.as_posix(), p.name in LAST, p.name))
    sent, present = 0, set()
    for path in files:
        rel = path.relative_to(local).as_posix()
        present.add(rel)
        stat = path.stat()
        info = remote.get(rel)
        if info is not None and int(info.get("size", -1)) == stat.st_size:
            modified = info.get("LastModified")
            if modified is not None and modified.timestamp() >= int(stat.st_mtime):
                continue
        fs.put_file(str(path), f"{key}/{rel}")
        sent += 1
    if mirror:
        gone = [f"{key}/{rel}" for rel in remote if rel not in present]
        if gone:
            fs.rm(gone)
    return sent


def pull_dir(fs: Any, key: str, local: Path, only: str | None = None) -> int:
    """Download the files of bucket folder ``key`` that ``local`` lacks or has at another size.

    Args:
        fs: The bucket's fsspec filesystem.
        only: Limit the pull to this sub-folder or file.

    Returns:
        The number of files downloaded.
    """
    key = key.rstrip("/")
    scope = f"{key}/{only.strip('/')}" if only else key
    try:
        remote = fs.find(scope, detail=True)
    except FileNotFoundError:
        return 0
    got = 0
    for path, info in remote.items():
        target = Path(local) / path[len(key) + 1:]
        if target.is_file() and target.stat().st_size == int(info.get("size", -1)):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
        fs.get_file(path, str(tmp))
        tmp.replace(target)
        got += 1
    return got
