"""graph_series_uids: a Graph series master's iCalUId, read once per mailbox and kept

Revision ID: 0019
Revises: 0014
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "graph_series_uids",
        sa.Column("account_id", sa.Integer(),
                  sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("master_id", sa.String(length=500), nullable=False),
        sa.Column("ical_uid", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "master_id"),
    )


def downgrade() -> None:
    op.drop_table("graph_series_uids")
