"""agendas: remember an agenda abandoned because the occurrence was cancelled or gone

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agendas") as batch:
        batch.add_column(sa.Column("abandoned_etag", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agendas") as batch:
        batch.drop_column("abandoned_etag")
