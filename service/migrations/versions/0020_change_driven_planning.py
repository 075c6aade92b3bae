"""change-driven agenda planning: pairs to plan again, the planner's watermark, the writes
still owed (agendas.needs_write) and the occurrences settled since a pass (an index)

Revision ID: 0020
Revises: 0014
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.db

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plan_wanted",
        sa.Column("pair_id", sa.Integer(), sa.ForeignKey("pairs.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("token", sa.String(length=32), nullable=False),
    )
    op.create_table(
        "planning_watermark",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("passed_at", service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("planned_until", service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("settings_key", sa.String(length=64), nullable=False),
    )
    with op.batch_alter_table("agendas") as batch:
        batch.add_column(sa.Column("needs_write", sa.Boolean(), nullable=False,
                                   server_default="0"))
        batch.create_index("ix_agendas_needs_write", ["needs_write"])
    # existing rows start at false: with no watermark row yet, the first planning pass plans
    # every pair again and sets it for every upcoming agenda
    with op.batch_alter_table("occurrences") as batch:
        batch.create_index("ix_occurrences_outcome_decided_at", ["outcome_decided_at"])


def downgrade() -> None:
    with op.batch_alter_table("occurrences") as batch:
        batch.drop_index("ix_occurrences_outcome_decided_at")
    with op.batch_alter_table("agendas") as batch:
        batch.drop_index("ix_agendas_needs_write")
        batch.drop_column("needs_write")
    op.drop_table("planning_watermark")
    op.drop_table("plan_wanted")
