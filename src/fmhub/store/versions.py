"""Version numbers of models and data assets, handed out once each, even to concurrent registrations."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fmhub.store.tables import DataAssetRow, ModelVersionRow, VersionCounterRow

_TABLES = {"model_versions": ModelVersionRow, "data_assets": DataAssetRow}


def reserve(session: Session, kind: str, name: str) -> int:
    """Hand out the next version number of ``name`` in one atomic statement.

    The counter row ``(kind, name)`` is created at the highest registered version + 1, or
    incremented (never below the highest registered version + 1): an upsert that PostgreSQL and
    SQLite both run atomically, so two registrations never get the same number. A number whose
    registration then fails is not handed out again (a gap, as in other model registries).

    Args:
        session: An open session; the number is taken when it commits.
        kind: ``model_versions`` or ``data_assets``.
        name: The model or data asset name.

    Returns:
        The reserved version (1 for a new name).
    """
    table = _TABLES[kind]
    highest = (select(func.coalesce(func.max(table.version), 0)).where(table.name == name)).scalar_subquery()
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert

        greater = func.greatest
    else:
        from sqlalchemy.dialects.sqlite import insert

        greater = func.max  # SQLite's two-argument max() is the larger of the two
    stmt = insert(VersionCounterRow).values(kind=kind, name=name, last=highest + 1)
    stmt = stmt.on_conflict_do_update(index_elements=[VersionCounterRow.kind, VersionCounterRow.name],
                                      set_={"last": greater(VersionCounterRow.last, highest) + 1})
    return int(session.execute(stmt.returning(VersionCounterRow.last)).scalar_one())
