"""Data asset use cases: register a data file (copied, hashed), list and show assets."""

from __future__ import annotations

import re
from pathlib import Path

from fmhub.data.fingerprint import sha256_file
from fmhub.data.readers import read_table
from fmhub.entities import DataAsset
from fmhub.errors import DataError
from fmhub.services.context import Context
from fmhub.store import assets_repo


def default_asset_name(path: Path) -> str:
    """A name for a data file: ``<parent folder>-<file stem>``, e.g. ``text-classification-train``."""
    raw = f"{path.parent.name}-{path.stem}" if path.parent.name else path.stem
    return re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-.") or "data"


def register_data_file(ctx: Context, path: str | Path, name: str | None = None, format: str | None = None,
                       encoding: str = "utf-8") -> DataAsset:
    """Register ``path`` as a data asset, or return the existing version with the same sha256.

    The file is copied into the artifact store, so later edits of the user's file do not change
    what a job trained on.

    Raises:
        DataError: when the file is missing or unreadable.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"data file '{path}' does not exist", hint="check the path")
    asset_name = name or default_asset_name(p.resolve())
    digest = sha256_file(p)
    existing = assets_repo.find_by_sha(ctx.db_url, asset_name, digest)
    if existing is not None:
        return existing
    table = read_table(p, format=format, encoding=encoding)
    version = assets_repo.next_version(ctx.db_url, asset_name)
    dest = ctx.artifacts.place_file(p, ctx.artifacts.data_dir(asset_name, version) / p.name)
    asset = DataAsset(name=asset_name, version=version, path=str(dest), format=table.format, sha256=digest,
                      rows=len(table.rows), columns=table.columns, source_path=str(p.resolve()))
    return assets_repo.add_asset(ctx.db_url, asset)


def list_assets(ctx: Context, name: str | None = None) -> list[DataAsset]:
    """Registered data assets."""
    return assets_repo.list_assets(ctx.db_url, name)
