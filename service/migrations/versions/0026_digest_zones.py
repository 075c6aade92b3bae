"""digest zones: the managers' time zones and, per zone, the week whose digests were all
queued, so the reconciler's digest pass reads a few rows instead of every manager

Revision ID: 0026
Revises: 0022
Create Date: 2026-12-01

A new table only (no batch operation): the triggers of 0022 stay in place.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.db

revision = "0026"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digest_zones",
        sa.Column("zone", sa.String(length=64), primary_key=True),
        sa.Column("iso_week", sa.String(length=8), nullable=True),
        sa.Column("done_at", service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("seen_at", service.db.UTCDateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("digest_zones")
