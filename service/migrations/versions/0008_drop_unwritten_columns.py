"""occurrences.actual_start and adhoc_meetings.extra: never written, so dropped

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

SQLite drops the columns in place (ALTER TABLE ... DROP COLUMN, SQLite 3.35+) rather than
by Alembic's copy-and-rename batch: rebuilding `occurrences` would drop the old table, and
with foreign keys on that deletes every copy and agenda that points at it (ON DELETE CASCADE).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_column("occurrences", "actual_start")
    op.drop_column("adhoc_meetings", "extra")


def downgrade() -> None:
    op.add_column("adhoc_meetings", sa.Column("extra", sa.JSON(), nullable=False,
                                              server_default="{}"))
    op.add_column("occurrences", sa.Column("actual_start",
                                           service.db.UTCDateTime(timezone=True), nullable=True))
