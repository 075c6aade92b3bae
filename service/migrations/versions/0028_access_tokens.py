"""access tokens: an account's current access token (encrypted) and its expiry, so a token
one worker process obtained serves every other until it expires

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-02

A new table only (no batch operation): the triggers of 0022 stay in place.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.db

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_tokens",
        sa.Column("account_id", sa.Integer(),
                  sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("token_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", service.db.UTCDateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("access_tokens")
