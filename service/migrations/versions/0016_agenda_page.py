"""the shared agenda page: pair_topics.private (the manager's own prep)

Revision ID: 0016
Revises: 0018
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pair_topics") as batch:
        batch.add_column(sa.Column("private", sa.Boolean(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("pair_topics") as batch:
        batch.drop_column("private")
