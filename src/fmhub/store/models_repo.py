"""Queries on workspace model versions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import aliased

from fmhub.entities import ModelVersion
from fmhub.errors import NotFoundError
from fmhub.store.db import session_scope
from fmhub.store.tables import ModelVersionRow
from fmhub.store.versions import reserve


def _to_entity(row: ModelVersionRow) -> ModelVersion:
    return ModelVersion(
        name=row.name,
        version=row.version,
        task=row.task,
        path=row.path,
        license=row.license,
        description=row.description or "",
        base_model=row.base_model,
        lineage=row.lineage or {},
        metrics=row.metrics or {},
        created_at=row.created_at,
    )


def next_version(url: str, name: str) -> int:
    """Reserve the version number of the next registration of ``name`` (highest + 1, from 1).

    Each call hands out a new number, also to concurrent callers in other processes (see
    :func:`fmhub.store.versions.reserve`): register the version with :func:`add_version`.
    """
    with session_scope(url) as s:
        return reserve(s, "model_versions", name)


def add_version(url: str, version: ModelVersion) -> ModelVersion:
    """Insert a model version row (the files must already be in place).

    Raises:
        sqlalchemy.exc.IntegrityError: when ``name:version`` exists (a concurrent registration).
    """
    with session_scope(url) as s:
        row = ModelVersionRow(
            name=version.name,
            version=version.version,
            task=version.task,
            path=version.path,
            license=version.license,
            description=version.description,
            base_model=version.base_model,
            lineage=version.lineage,
            metrics=version.metrics,
        )
        s.add(row)
        s.flush()
        return _to_entity(row)


def list_versions(url: str, name: str | None = None, latest_only: bool = False) -> list[ModelVersion]:
    """List workspace model versions, newest first within each name (all names sorted).

    Args:
        url: Database URL.
        name: Only this model's versions.
        latest_only: One row per name, its highest version.
    """
    with session_scope(url) as s:
        q = select(ModelVersionRow)
        if name:
            q = q.where(ModelVersionRow.name == name)
        rows = s.scalars(q.order_by(ModelVersionRow.name, ModelVersionRow.version.desc())).all()
        out = [_to_entity(r) for r in rows]
    if latest_only:
        seen: set[str] = set()
        out = [v for v in out if not (v.name in seen or seen.add(v.name))]
    return out


def _like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with ``%``, ``_`` and ``\\`` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _latest_query(task: str | None, license: str | None, search: str | None) -> Any:
    """The rows that are the latest version of their name and match the filters (unordered).

    "Latest" is "no version of the same name is higher": an index probe per candidate row on the
    ``(name, version)`` unique index, so filters on ``task`` or the license are answered from their
    indexes before it, and no per-name aggregate over the whole table is built. The filters match
    :func:`fmhub.catalog.cards.filter_cards` on the version's card (``services.models.version_card``):
    the license of a version without one is ``unknown``; the search looks at the name, the
    description and the architecture recorded in the lineage (``unknown`` when absent).
    """
    newer = aliased(ModelVersionRow)
    newer_exists = select(newer.id).where(newer.name == ModelVersionRow.name,
                                          newer.version > ModelVersionRow.version).exists()
    q = select(ModelVersionRow).where(~newer_exists)
    if task:
        q = q.where(ModelVersionRow.task == task)
    if license:
        wanted = license.strip().lower()
        clause = func.lower(ModelVersionRow.license) == wanted
        if wanted == "unknown":
            clause = or_(clause, ModelVersionRow.license.is_(None), ModelVersionRow.license == "")
        q = q.where(clause)
    if search:
        needle = _like(search.lower())
        architecture = func.coalesce(ModelVersionRow.lineage["architecture"].as_string(), "unknown")
        q = q.where(or_(ModelVersionRow.name.ilike(needle, escape="\\"),
                        ModelVersionRow.description.ilike(needle, escape="\\"),
                        architecture.ilike(needle, escape="\\")))
    return q


def search_latest(url: str, task: str | None = None, license: str | None = None, search: str | None = None,
                  limit: int = 50, offset: int = 0) -> tuple[list[ModelVersion], int]:
    """The latest version of each workspace model matching the filters, a page of them and the count.

    Args:
        url: Database URL.
        task: The version's task.
        license: License id (case-insensitive; ``unknown`` also matches versions without one).
        search: Text in the name, description or architecture (case-insensitive).
        limit: Page size.
        offset: Rows skipped (ordered by name).

    Returns:
        ``(versions, total)``.
    """
    q = _latest_query(task, license, search)
    with session_scope(url) as s:
        total = int(s.scalar(select(func.count()).select_from(q.with_only_columns(ModelVersionRow.id).subquery()))
                    or 0)
        if not limit or offset >= total:
            return [], total
        # The page's ids first (answered from the indexes), then only those rows with their JSON.
        ids = list(s.scalars(q.with_only_columns(ModelVersionRow.id)
                             .order_by(ModelVersionRow.name).offset(offset).limit(limit)))
        rows = {r.id: r for r in s.scalars(select(ModelVersionRow).where(ModelVersionRow.id.in_(ids)))} if ids else {}
        return [_to_entity(rows[i]) for i in ids], total


def count_latest_by(url: str, column: str, task: str | None = None, license: str | None = None,
                    search: str | None = None) -> dict[str, int]:
    """Count the latest versions matching the filters, grouped by ``column`` (catalog facets).

    Args:
        url: Database URL.
        column: ``task`` or ``license`` (a version without a license counts as ``unknown``).
        task / license / search: As in :func:`search_latest`.

    Returns:
        Value -> number of workspace models.
    """
    if column not in ("task", "license"):
        raise ValueError(f"cannot group by {column!r}")
    sub = _latest_query(task, license, search).subquery()
    col = sub.c[column]
    if column == "license":
        col = func.lower(func.coalesce(func.nullif(col, ""), "unknown"))
    with session_scope(url) as s:
        rows = s.execute(select(col, func.count()).group_by(col)).all()
    return {str(value): int(n) for value, n in rows}


def get_version(url: str, name: str, version: int | None = None) -> ModelVersion:
    """Return ``name:version`` (the latest version when ``version`` is None).

    Raises:
        NotFoundError: when there is no such model or version.
    """
    versions = list_versions(url, name=name)
    if not versions:
        raise NotFoundError(
            f"no workspace model named '{name}'",
            hint="list models with `fmhub models list --registry workspace`",
        )
    if version is None:
        return versions[0]
    for v in versions:
        if v.version == version:
            return v
    have = ", ".join(str(v.version) for v in versions)
    raise NotFoundError(f"model '{name}' has no version {version}", hint=f"versions: {have}")


def update_metrics(url: str, name: str, version: int, metrics: dict[str, Any]) -> None:
    """Replace the stored metrics of ``name:version``."""
    with session_scope(url) as s:
        row = s.scalars(
            select(ModelVersionRow).where(ModelVersionRow.name == name, ModelVersionRow.version == version)
        ).one()
        row.metrics = metrics
