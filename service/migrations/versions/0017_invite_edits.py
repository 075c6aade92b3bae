"""two-way agenda in the invite: the block last written (merge base), the lines people deleted
from it, and who closed an action item

Revision ID: 0017
Revises: 0011
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agendas") as batch:
        batch.add_column(sa.Column("written_text", sa.Text(), nullable=True))
        batch.add_column(sa.Column("dismissed", sa.JSON(), nullable=False,
                                   server_default="[]"))
    with op.batch_alter_table("action_items") as batch:
        batch.add_column(sa.Column("closed_by", sa.String(20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("action_items") as batch:
        batch.drop_column("closed_by")
    with op.batch_alter_table("agendas") as batch:
        batch.drop_column("dismissed")
        batch.drop_column("written_text")
