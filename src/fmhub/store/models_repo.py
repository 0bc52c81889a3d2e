"""Queries on workspace model versions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text

from fmhub.entities import ModelVersion
from fmhub.errors import NotFoundError
from fmhub.store.db import session_scope
from fmhub.store.tables import ModelLatestRow, ModelVersionRow
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
    """The ids of the latest version of each name matching the filters (unordered).

    Answered from :class:`~fmhub.store.tables.ModelLatestRow` (one narrow row per name, kept by
    the database): filters on ``task`` or the license from its indexes, the search from its
    ``search_text`` (a trigram index on PostgreSQL). The filters match
    :func:`fmhub.catalog.cards.filter_cards` on the version's card (``services.models.version_card``):
    the license of a version without one is ``unknown``; the search looks at the name, the
    description and the architecture recorded in the lineage (``unknown`` when absent).
    """
    q = select(ModelLatestRow.version_id)
    if task:
        q = q.where(ModelLatestRow.task == task)
    if license:
        q = q.where(ModelLatestRow.license_key == license.strip().lower())
    if search:
        q = q.where(ModelLatestRow.search_text.like(_like(search.lower()), escape="\\"))
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
        # The page's ids first (answered from the narrow table), then only those rows with their JSON.
        # A search reads its matches once (the trigram index on PostgreSQL), counting them as it
        # pages them: walking the name order instead would filter every row of the names before the
        # first match. Otherwise the page comes from an index in name order; a short page is the last
        # one and gives the total without a count.
        ids: list[int] = []
        total = None
        if limit and search:
            matches = q.add_columns(ModelLatestRow.name).cte("matches").prefix_with("MATERIALIZED")
            page = s.execute(select(matches.c.version_id, func.count().over()).order_by(matches.c.name)
                             .offset(offset).limit(limit)).all()
            ids = [r[0] for r in page]
            total = int(page[0][1]) if page else (0 if offset == 0 else None)
        elif limit:
            ids = list(s.scalars(q.order_by(ModelLatestRow.name).offset(offset).limit(limit)))
            if len(ids) < limit and (ids or offset == 0):
                total = offset + len(ids)
        if total is None:
            total = int(s.scalar(select(func.count()).select_from(q.subquery())) or 0)
        rows = {r.id: r for r in s.scalars(select(ModelVersionRow).where(ModelVersionRow.id.in_(ids)))} if ids else {}
        return [_to_entity(rows[i]) for i in ids], total


def count_latest_by(url: str, column: str, task: str | None = None, license: str | None = None,
                    search: str | None = None) -> dict[str, int]:
    """Count the latest versions matching the filters, grouped by ``column`` (catalog facets).

    Args:
        url: Database URL.
        column: ``task`` or ``license`` (lower-cased; a version without a license counts as ``unknown``).
        task / license / search: As in :func:`search_latest`.

    Returns:
        Value -> number of workspace models.
    """
    if column not in ("task", "license"):
        raise ValueError(f"cannot group by {column!r}")
    col = ModelLatestRow.task if column == "task" else ModelLatestRow.license_key
    if task is None and license is None and search is None:
        q = _DISTINCT_COUNTS.format(col=col.key)  # a whitelisted column name
        with session_scope(url) as s:
            rows = s.execute(text(q)).all()
    else:
        q = _latest_query(task, license, search).with_only_columns(col, func.count()).group_by(col)
        with session_scope(url) as s:
            rows = s.execute(q).all()
    return {str(value): int(n) for value, n in rows}


# Unfiltered facet counts from the index on the column alone: its distinct values found by one index
# probe each (a "loose index scan"), then one index-only count per value; a GROUP BY would read every
# row (the filter checks of every license-filtered list request ask for these counts).
_DISTINCT_COUNTS = """
WITH RECURSIVE v(value) AS (
  SELECT min({col}) FROM model_latest
  UNION ALL
  SELECT (SELECT min({col}) FROM model_latest WHERE {col} > v.value) FROM v WHERE v.value IS NOT NULL
)
SELECT value, (SELECT count(*) FROM model_latest WHERE {col} = v.value) FROM v WHERE value IS NOT NULL
"""


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
