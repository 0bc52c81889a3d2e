"""Data assets remember their task, column mapping, reading options and validation report.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("data_assets") as batch:
        batch.add_column(sa.Column("task", sa.String(64), nullable=True))
        batch.add_column(sa.Column("column_mapping", sa.JSON, nullable=True))
        batch.add_column(sa.Column("read_options", sa.JSON, nullable=True))
        batch.add_column(sa.Column("report", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("data_assets") as batch:
        for name in ("report", "read_options", "column_mapping", "task"):
            batch.drop_column(name)
