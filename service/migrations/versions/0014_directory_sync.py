"""directory sync bookkeeping and coverage mentions: directory_grants' pass number and page
token, people's manager reference and the pass that last listed them, coverage_mentions

Revision ID: 0014
Revises: 0016
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.db

revision = "0014"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("directory_grants") as batch:
        batch.add_column(sa.Column("directory_pass", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("directory_page_token", sa.Text(), nullable=True))
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("directory_manager_ref", sa.String(400), nullable=True))
        batch.add_column(sa.Column("directory_seen_pass", sa.Integer(), nullable=True))
    op.create_table(
        "coverage_mentions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("manager_id", sa.Integer(),
                  sa.ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
        sa.Column("report_id", sa.Integer(),
                  sa.ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
        sa.Column("mentioned_at", service.db.UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("manager_id", "report_id"),
    )


def downgrade() -> None:
    op.drop_table("coverage_mentions")
    with op.batch_alter_table("people") as batch:
        batch.drop_column("directory_seen_pass")
        batch.drop_column("directory_manager_ref")
    with op.batch_alter_table("directory_grants") as batch:
        batch.drop_column("directory_page_token")
        batch.drop_column("directory_pass")
