"""The database's schema: where it stands and upgrading it (``fmhub db``)."""

from __future__ import annotations

from typing import Any

from fmhub.services.context import Context
from fmhub.store import db


def database_status(ctx: Context) -> dict[str, Any]:
    """The schema revision of the database in force and the one this fmhub needs.

    Returns:
        ``{"url": the URL without its password, "current": revision or None (an empty database),
        "head": this fmhub's revision, "up_to_date": bool, "migrates_itself": bool}`` (SQLite
        migrates itself on first use; a shared database is migrated by ``fmhub db upgrade``).

    Raises:
        fmhub.store.db.DatabaseError: the database cannot be reached.
    """
    status = db.schema_status(ctx.db_url)
    return {**status, "up_to_date": status["current"] == status["head"], "migrates_itself": db.is_sqlite(ctx.db_url)}


def upgrade_database(ctx: Context) -> dict[str, Any]:
    """Migrate the database in force to this fmhub's schema (creates the tables of an empty one).

    Returns:
        ``{"url", "before", "after"}``: the URL without its password and the revisions.

    Raises:
        fmhub.store.db.DatabaseError: the database cannot be reached, or a newer fmhub upgraded it.
    """
    return db.upgrade_url(ctx.db_url)
