"""A database several servers and workers share: JSONB on PostgreSQL, unique event numbers per job,
version counters, trigram indexes for the model search.

- PostgreSQL only: every JSON column becomes JSONB; the ``pg_trgm`` extension (when the role may
  create it) and trigram indexes for the case-insensitive search over model names, descriptions and
  architectures. SQLite keeps its JSON (text) columns.
- ``jobs``: an index in claim order (status, created, id) for the queue.
- ``jobs.event_seq``: the last event number of the job, incremented when an event is appended;
  ``job_events`` gets a unique ``(job_id, seq)`` (duplicates left by concurrent appends before this
  revision are renumbered first, in the order they were written).
- ``version_counters``: the last version number handed out per model or data asset name.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JSON_COLUMNS = {
    "model_versions": ("lineage", "metrics"),
    "data_assets": ("columns", "column_mapping", "read_options", "report"),
    "jobs": ("spec", "outputs"),
    "job_events": ("data",),
    "deployments": ("settings",),
}

# The search expressions of ``store.models_repo`` on PostgreSQL; an index serves a query only when
# its expression is the query's, token for token.
TRIGRAM_INDEXES = {
    "ix_model_versions_name_trgm": "name",
    "ix_model_versions_description_trgm": "description",
    "ix_model_versions_architecture_trgm": "(coalesce(lineage ->> 'architecture', 'unknown'))",
}


def _create_trigram_indexes(bind) -> None:
    """``pg_trgm`` and its indexes; skipped (the search still works, scanning) when the role may not
    create the extension."""
    has = bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).scalar()
    if not has:
        savepoint = bind.begin_nested()
        try:
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        except sa.exc.DBAPIError:
            savepoint.rollback()
            return
        savepoint.commit()
    for name, expression in TRIGRAM_INDEXES.items():
        bind.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {name} ON model_versions "
                             f"USING gin ({expression} gin_trgm_ops)"))


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        for table, columns in JSON_COLUMNS.items():
            for column in columns:
                op.alter_column(table, column, type_=postgresql.JSONB(), existing_type=sa.JSON(),
                                postgresql_using=f'"{column}"::jsonb')

    # Renumber the events of jobs whose numbers repeat (written before this revision), then count.
    dup_jobs = [r[0] for r in bind.execute(sa.text(
        "SELECT DISTINCT job_id FROM job_events GROUP BY job_id, seq HAVING count(*) > 1"))]
    for job_id in dup_jobs:
        ids = [r[0] for r in bind.execute(sa.text(
            "SELECT id FROM job_events WHERE job_id = :j ORDER BY seq, id"), {"j": job_id})]
        bind.execute(sa.text("UPDATE job_events SET seq = -seq WHERE job_id = :j"), {"j": job_id})
        bind.execute(sa.text("UPDATE job_events SET seq = :s WHERE id = :i"),
                     [{"s": n, "i": i} for n, i in enumerate(ids, start=1)])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("event_seq", sa.Integer, nullable=False, server_default="0"))
    bind.execute(sa.text("UPDATE jobs SET event_seq = coalesce("
                         "(SELECT max(seq) FROM job_events WHERE job_events.job_id = jobs.id), 0)"))
    op.create_index("uq_job_events_job_id_seq", "job_events", ["job_id", "seq"], unique=True)
    op.create_index("ix_jobs_status_created_at_id", "jobs", ["status", "created_at", "id"])

    op.create_table(
        "version_counters",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("last", sa.Integer, nullable=False, server_default="0"),
    )
    for table in ("model_versions", "data_assets"):
        bind.execute(sa.text(f"INSERT INTO version_counters (kind, name, last) "
                             f"SELECT '{table}', name, max(version) FROM {table} GROUP BY name"))

    if postgres:
        _create_trigram_indexes(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for name in TRIGRAM_INDEXES:
            bind.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))
    op.drop_table("version_counters")
    op.drop_index("ix_jobs_status_created_at_id", table_name="jobs")
    op.drop_index("uq_job_events_job_id_seq", table_name="job_events")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("event_seq")
    if bind.dialect.name == "postgresql":
        for table, columns in JSON_COLUMNS.items():
            for column in columns:
                op.alter_column(table, column, type_=sa.JSON(), existing_type=postgresql.JSONB(),
                                postgresql_using=f'"{column}"::json')
