"""calendars: when the last sync failed (last_error_at)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calendars") as batch:
        batch.add_column(sa.Column("last_error_at", service.db.UTCDateTime(timezone=True),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calendars") as batch:
        batch.drop_column("last_error_at")
