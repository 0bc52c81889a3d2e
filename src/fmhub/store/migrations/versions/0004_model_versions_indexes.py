"""Indexes for listing workspace models: by task and by license (case-insensitive), each followed by
name and version so that a filtered, name-ordered page and its "latest version" check are answered
from the index.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_model_versions_task_name_version", "model_versions", ["task", "name", "version"])
    op.create_index("ix_model_versions_license_name_version", "model_versions",
                    [sa.text("lower(license)"), "name", "version"])


def downgrade() -> None:
    op.drop_index("ix_model_versions_license_name_version", table_name="model_versions")
    op.drop_index("ix_model_versions_task_name_version", table_name="model_versions")
