"""calendars: a lease holder token and a failure backoff; accounts: a "not before" pace

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.db

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calendars") as batch:
        batch.add_column(sa.Column("sync_lease_holder", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("failures", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("retry_not_before", service.db.UTCDateTime(timezone=True),
                                   nullable=True))
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("not_before", service.db.UTCDateTime(timezone=True),
                                   nullable=True))
        batch.add_column(sa.Column("not_before_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("not_before_reason")
        batch.drop_column("not_before")
    with op.batch_alter_table("calendars") as batch:
        batch.drop_column("retry_not_before")
        batch.drop_column("failures")
        batch.drop_column("sync_lease_holder")
