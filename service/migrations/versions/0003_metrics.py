"""metrics: weekly snapshots per pair

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("iso_week", sa.String(length=8), nullable=False),
        sa.Column("week_start", service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("scheduled", sa.Integer(), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.Column("moved", sa.Integer(), nullable=False),
        sa.Column("rescheduled", sa.Integer(), nullable=False),
        sa.Column("cancelled", sa.Integer(), nullable=False),
        sa.Column("declined_by_report", sa.Integer(), nullable=False),
        sa.Column("declined_by_manager", sa.Integer(), nullable=False),
        sa.Column("series_ended", sa.Integer(), nullable=False),
        sa.Column("unknown", sa.Integer(), nullable=False),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.Column("agendas", sa.Integer(), nullable=False),
        sa.Column("areas", sa.JSON(), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("action_items_closed", sa.Integer(), nullable=False),
        sa.Column("computed_at", service.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["pair_id"], ["pairs.id"], ondelete="CASCADE",
                                name=op.f("fk_metric_snapshots_pair_id_pairs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_snapshots")),
        sa.UniqueConstraint("pair_id", "iso_week", name=op.f("uq_metric_snapshots_pair_id_iso_week")),
    )


def downgrade() -> None:
    op.drop_table("metric_snapshots")
