"""SQLAlchemy tables. Every change goes with an Alembic migration in ``migrations/versions``."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# JSON documents: JSONB on PostgreSQL (its ``json`` type has no equality operator and is re-parsed
# on every read), plain JSON (text) on SQLite. A migration adding a JSON column uses the same type.
JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """Timezone-aware current time (UTC)."""
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base of all fmhub tables."""


class ModelVersionRow(Base):
    """A workspace model version ``name:version`` (imported or fine-tuned)."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("name", "version", name="uq_model_versions_name_version"),
        # Listing filters (migration 0004): a task or a license, then name order and the latest version.
        Index("ix_model_versions_task_name_version", "task", "name", "version"),
        Index("ix_model_versions_license_name_version", func.lower(text("license")), "name", "version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    task: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    license: Mapped[str | None] = mapped_column(String(64), nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    base_model: Mapped[str | None] = mapped_column(String(300), nullable=True)
    lineage: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DataAssetRow(Base):
    """A registered data asset ``name:version``."""

    __tablename__ = "data_assets"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_data_assets_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    rows: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list[str]] = mapped_column(JSONType, default=list)
    source_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    task: Mapped[str | None] = mapped_column(String(64), nullable=True)
    column_mapping: Mapped[dict | None] = mapped_column(JSONType, nullable=True)
    read_options: Mapped[dict | None] = mapped_column(JSONType, nullable=True)
    report: Mapped[dict | None] = mapped_column(JSONType, nullable=True)


class JobRow(Base):
    """A job: status, spec, outputs and the folder with its log and checkpoints."""

    __tablename__ = "jobs"
    # The queue order of claims (migration 0006): the oldest queued job first.
    __table_args__ = (Index("ix_jobs_status_created_at_id", "status", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    compute: Mapped[str] = mapped_column(String(64), default="local")
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    outputs: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    folder: Mapped[str | None] = mapped_column(Text, nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    resume: Mapped[bool] = mapped_column(Boolean, default=False)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    exit_cause: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The last progress event's ``seq``: appending an event increments it in the same transaction.
    event_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class JobEventRow(Base):
    """An append-only progress event of a job (step, total, loss, metrics, eta_s).

    ``seq`` is 1, 2, 3... per job, taken from :attr:`JobRow.event_seq` (migration 0006).
    """

    __tablename__ = "job_events"
    __table_args__ = (Index("uq_job_events_job_id_seq", "job_id", "seq", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKeyRow(Base):
    """An API key: only its SHA-256 hash and a short prefix (to recognise it) are stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class EndpointRow(Base):
    """An online endpoint: name, keys and description."""

    __tablename__ = "endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    primary_key: Mapped[str] = mapped_column(String(128))
    secondary_key: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DeploymentRow(Base):
    """A deployment of an endpoint: the model it serves, its instances, batching and traffic share."""

    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("endpoint_id", "name", name="uq_deployments_endpoint_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(300))
    task: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    traffic: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    owner: Mapped[str | None] = mapped_column(String(300), nullable=True)
    owner_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    live_state: Mapped[str | None] = mapped_column(String(32), nullable=True)


class EndpointLogRow(Base):
    """One line of an endpoint's log (instance starts, loads, failures, error answers), from any server."""

    __tablename__ = "endpoint_logs"
    __table_args__ = (Index("ix_endpoint_logs_endpoint_id", "endpoint", "id"),
                      Index("ix_endpoint_logs_endpoint_kind_id", "endpoint", "kind", "id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16), default="lifecycle")
    line: Mapped[str] = mapped_column(Text)


class VersionCounterRow(Base):
    """The last version number handed out per ``(kind, name)``: ``kind`` is ``model_versions`` or
    ``data_assets``. Incremented atomically, so concurrent registrations never get the same number."""

    __tablename__ = "version_counters"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class ModelLatestRow(Base):
    """The latest version of each workspace model name: what the model list filters, counts and pages.

    Kept by database triggers on every insert or update of a model version (migration 0006), whoever
    writes it; never written by fmhub itself. ``license_key``: the lower-cased license, ``unknown``
    when none. ``search_text``: the lower-cased name, description and architecture (``unknown`` when
    the lineage has none), separated by the character 0x1F.
    """

    __tablename__ = "model_latest"
    __table_args__ = (
        Index("ix_model_latest_task_name", "task", "name"),
        Index("ix_model_latest_license_name", "license_key", "name"),
        {"sqlite_with_rowid": False},  # SQLite: rows stored in name order, as the list pages them
    )

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    version_id: Mapped[int] = mapped_column(Integer)
    task: Mapped[str] = mapped_column(String(64))
    license_key: Mapped[str] = mapped_column(String(64))
    search_text: Mapped[str] = mapped_column(Text)
