"""reschedule times: when an occurrence was dropped, when a one-off meeting was booked or moved

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-30
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.db

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("occurrences") as batch:
        batch.add_column(sa.Column("dropped_at", service.db.UTCDateTime(timezone=True),
                                   nullable=True))
    with op.batch_alter_table("adhoc_meetings") as batch:
        batch.add_column(sa.Column("booked_at", service.db.UTCDateTime(timezone=True),
                                   nullable=True))
        batch.add_column(sa.Column("moved_at", service.db.UTCDateTime(timezone=True),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("adhoc_meetings") as batch:
        batch.drop_column("moved_at")
        batch.drop_column("booked_at")
    with op.batch_alter_table("occurrences") as batch:
        batch.drop_column("dropped_at")
