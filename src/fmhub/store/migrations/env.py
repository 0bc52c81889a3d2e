"""Alembic environment: runs on the connection handed over by :func:`fmhub.store.db.upgrade`."""

from alembic import context

from fmhub.store.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when run from the alembic CLI
    from fmhub.config import get_settings
    from sqlalchemy import create_engine

    connection = create_engine(get_settings().db_url).connect()

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
