"""A database several servers and workers share: JSONB on PostgreSQL, unique event numbers per job,
version counters, the latest version of each model name for the model list.

- PostgreSQL only: every JSON column becomes JSONB (SQLite keeps its JSON text columns).
- ``model_latest``: the latest version of each model name, kept by triggers, with indexes for the
  model list (by name, task, license; on PostgreSQL a trigram index, ``pg_trgm``, for the search,
  when the role may create the extension).
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

# ``model_latest``: the latest version of each model name, one narrow row per name, kept by the
# database itself on every insert or update of a version (whoever writes it). The model list filters,
# counts and pages this table instead of probing for a higher version per row of the wide
# ``model_versions``. Concurrent registrations of one name are safe: the upsert keeps the higher
# version whatever the commit order. ``license_key`` is the lower-cased license (``unknown`` when
# none); ``search_text`` the lower-cased name, description and architecture (separated by a
# character no search holds), where the model search looks. A SQLite table rebuilt by a later batch
# migration loses its triggers: such a migration re-creates them (``create_latest_triggers``).
SEP = {"postgresql": "E'\\x1f'", "sqlite": "char(31)"}
ARCHITECTURE = {"postgresql": "{row}.lineage ->> 'architecture'", "sqlite": "json_extract({row}.lineage, '$.architecture')"}


def _latest_values(dialect: str, row: str) -> str:
    """The ``model_latest`` values of model version ``row`` (``NEW`` in a trigger)."""
    sep, architecture = SEP[dialect], ARCHITECTURE[dialect].format(row=row)
    return (f"{row}.name, {row}.version, {row}.id, {row}.task, lower(coalesce(nullif({row}.license, ''), 'unknown')), "
            f"lower({row}.name || {sep} || coalesce({row}.description, '') || {sep} || "
            f"coalesce({architecture}, 'unknown'))")


LATEST_COLUMNS = "name, version, version_id, task, license_key, search_text"
UPSERT_SET = ("SET version = excluded.version, version_id = excluded.version_id, task = excluded.task, "
              "license_key = excluded.license_key, search_text = excluded.search_text "
              "WHERE model_latest.version <= excluded.version")


def create_latest_triggers(bind) -> None:
    """The triggers that keep ``model_latest`` (PostgreSQL or SQLite)."""
    dialect = bind.dialect.name
    upsert = (f"INSERT INTO model_latest ({LATEST_COLUMNS}) VALUES ({_latest_values(dialect, 'NEW')}) "
              f"ON CONFLICT (name) DO UPDATE {UPSERT_SET}")
    if dialect == "postgresql":
        bind.execute(sa.text("CREATE OR REPLACE FUNCTION fmhub_model_latest() RETURNS trigger LANGUAGE plpgsql AS "
                             f"$$ BEGIN {upsert}; RETURN NULL; END $$"))
        bind.execute(sa.text("CREATE TRIGGER model_versions_latest AFTER INSERT OR UPDATE ON model_versions "
                             "FOR EACH ROW EXECUTE FUNCTION fmhub_model_latest()"))
    else:
        for event in ("INSERT", "UPDATE"):
            bind.execute(sa.text(f"CREATE TRIGGER model_versions_latest_{event.lower()} AFTER {event} ON "
                                 f"model_versions BEGIN {upsert}; END"))


def _create_trigram_index(bind) -> None:
    """``pg_trgm`` and the trigram index of the search text; skipped (the search still works,
    scanning) when the role may not create the extension."""
    has = bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).scalar()
    if not has:
        savepoint = bind.begin_nested()
        try:
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        except sa.exc.DBAPIError:
            savepoint.rollback()
            return
        savepoint.commit()
    bind.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_model_latest_search_trgm ON model_latest "
                         "USING gin (search_text gin_trgm_ops)"))


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

    op.create_table(
        "model_latest",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("license_key", sa.String(64), nullable=False),
        sa.Column("search_text", sa.Text, nullable=False),
        sqlite_with_rowid=False,  # SQLite: rows stored in name order, as the list pages them
    )
    op.create_index("ix_model_latest_task_name", "model_latest", ["task", "name"])
    op.create_index("ix_model_latest_license_name", "model_latest", ["license_key", "name"])
    if bind.dialect.name in SEP:
        bind.execute(sa.text(f"INSERT INTO model_latest ({LATEST_COLUMNS}) SELECT {_latest_values(bind.dialect.name, 'm')} "
                             "FROM model_versions m WHERE m.version = "
                             "(SELECT max(x.version) FROM model_versions x WHERE x.name = m.name)"))
        create_latest_triggers(bind)
    if postgres:
        _create_trigram_index(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.execute(sa.text("DROP TRIGGER IF EXISTS model_versions_latest ON model_versions"))
        bind.execute(sa.text("DROP FUNCTION IF EXISTS fmhub_model_latest()"))
    else:
        for event in ("insert", "update"):
            bind.execute(sa.text(f"DROP TRIGGER IF EXISTS model_versions_latest_{event}"))
    op.drop_table("model_latest")
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
