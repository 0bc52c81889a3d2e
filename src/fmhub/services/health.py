"""Readiness checks for the server: the database is migrated and answers, the artifact store can be used."""

from __future__ import annotations

from fmhub.services.context import Context


def prepare_database(ctx: Context) -> None:
    """Make the database ready: a SQLite file is created or migrated to the latest schema; a shared
    database (PostgreSQL) is only checked, since ``fmhub db upgrade`` migrates it.

    Raises:
        DatabaseError: the database is unreachable, or its schema is not this fmhub's (the message
            says to run ``fmhub db upgrade``).
    """
    from fmhub.store.db import get_engine

    get_engine(ctx.db_url)


def check_artifact_store(ctx: Context) -> None:
    """Make sure the artifact store can be used before start-up: a bucket (``FMHUB_ARTIFACTS_URL=
    s3://...``) is listed once; a local folder needs nothing.

    Raises:
        ArtifactStoreError: the bucket does not exist, the credentials are refused or the endpoint
            cannot be reached (one line naming the ``s3://`` URL, with what to do).
    """
    ctx.artifacts.check()


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
