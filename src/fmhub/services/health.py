"""Readiness checks for the server: the database is migrated and answers."""

from __future__ import annotations

from fmhub.services.context import Context


def prepare_database(ctx: Context) -> None:
    """Create or migrate the database to the latest schema (idempotent)."""
    from fmhub.store.db import get_engine

    get_engine(ctx.db_url)


def database_problem(ctx: Context) -> str | None:
    """None when the database answers a query, else what went wrong."""
    from sqlalchemy import text

    from fmhub.store.db import get_engine

    try:
        with get_engine(ctx.db_url).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # the caller reports it
        return f"{type(exc).__name__}: {exc}"
    return None
