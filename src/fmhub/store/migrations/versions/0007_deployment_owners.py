"""Deployment owners (lease, scoring URL, state) and endpoint logs shared by every server.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("owner", sa.String(300), nullable=True))
        batch.add_column(sa.Column("owner_url", sa.String(500), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("live_state", sa.String(32), nullable=True))
    op.create_table(
        "endpoint_logs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False, server_default="lifecycle"),
        sa.Column("line", sa.Text, nullable=False),
    )
    op.create_index("ix_endpoint_logs_endpoint_id", "endpoint_logs", ["endpoint", "id"])
    op.create_index("ix_endpoint_logs_endpoint_kind_id", "endpoint_logs", ["endpoint", "kind", "id"])


def downgrade() -> None:
    op.drop_index("ix_endpoint_logs_endpoint_kind_id", table_name="endpoint_logs")
    op.drop_index("ix_endpoint_logs_endpoint_id", table_name="endpoint_logs")
    op.drop_table("endpoint_logs")
    with op.batch_alter_table("deployments") as batch:
        for column in ("live_state", "lease_until", "owner_url", "owner"):
            batch.drop_column(column)
