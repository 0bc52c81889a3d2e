"""Queries on data assets."""

from __future__ import annotations

from sqlalchemy import select

from fmhub.entities import DataAsset
from fmhub.errors import NotFoundError
from fmhub.store.db import session_scope
from fmhub.store.tables import DataAssetRow
from fmhub.store.versions import reserve


def _to_entity(row: DataAssetRow) -> DataAsset:
    return DataAsset(
        name=row.name,
        version=row.version,
        path=row.path,
        format=row.format,
        sha256=row.sha256,
        rows=row.rows,
        columns=row.columns or [],
        source_path=row.source_path,
        created_at=row.created_at,
        task=row.task,
        column_mapping=row.column_mapping,
        read_options=row.read_options,
        report=row.report,
    )


def next_version(url: str, name: str) -> int:
    """Reserve the version number of the next registration of ``name`` (highest + 1, from 1).

    Each call hands out a new number, also to concurrent callers in other processes (see
    :func:`fmhub.store.versions.reserve`): register the version with :func:`add_asset`.
    """
    with session_scope(url) as s:
        return reserve(s, "data_assets", name)


def find_by_sha(url: str, name: str, sha256: str) -> DataAsset | None:
    """Return the version of ``name`` whose file has this sha256, if one exists."""
    with session_scope(url) as s:
        row = s.scalars(
            select(DataAssetRow)
            .where(DataAssetRow.name == name, DataAssetRow.sha256 == sha256)
            .order_by(DataAssetRow.version.desc())
        ).first()
        return _to_entity(row) if row else None


def find_any_by_sha(url: str, sha256: str) -> DataAsset | None:
    """Return the oldest asset version (any name) whose file has this sha256, if one exists."""
    with session_scope(url) as s:
        row = s.scalars(select(DataAssetRow).where(DataAssetRow.sha256 == sha256)
                        .order_by(DataAssetRow.created_at, DataAssetRow.id)).first()
        return _to_entity(row) if row else None


def add_asset(url: str, asset: DataAsset) -> DataAsset:
    """Insert a data asset row (its file must already be in the artifact store)."""
    with session_scope(url) as s:
        row = DataAssetRow(**asset.model_dump(exclude={"created_at"}))
        s.add(row)
        s.flush()
        return _to_entity(row)


def list_assets(url: str, name: str | None = None) -> list[DataAsset]:
    """List data assets, by name then newest version first."""
    with session_scope(url) as s:
        q = select(DataAssetRow)
        if name:
            q = q.where(DataAssetRow.name == name)
        rows = s.scalars(q.order_by(DataAssetRow.name, DataAssetRow.version.desc())).all()
        return [_to_entity(r) for r in rows]


def get_asset(url: str, name: str, version: int | None = None) -> DataAsset:
    """Return ``name:version`` (latest when ``version`` is None).

    Raises:
        NotFoundError: when there is no such data asset or version.
    """
    assets = list_assets(url, name)
    for a in assets:
        if version is None or a.version == version:
            return a
    raise NotFoundError(f"no data asset '{name}'" + (f" version {version}" if version else ""),
                        hint="list data assets with `fmhub data list`")
