"""company grants and the org chart: directory_grants, accounts.grant_id, people's manager,
directory id, suspended and left_at, series.manager_override

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_grants",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("name", sa.String(320), nullable=False),
        sa.Column("scope", sa.JSON(), nullable=False),
        sa.Column("credentials_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("status_changed_at", service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_directory_sync_at", service.db.UTCDateTime(timezone=True),
                  nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", service.db.UTCDateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("provider", "name"),
    )
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("grant_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_accounts_grant_id", "directory_grants", ["grant_id"], ["id"],
                                 ondelete="CASCADE")
        batch.create_index("ix_accounts_grant_id", ["grant_id"])
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("manager_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("directory_grant_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("directory_id", sa.String(200), nullable=True))
        batch.add_column(sa.Column("suspended", sa.Boolean(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("left_at", service.db.UTCDateTime(timezone=True),
                                   nullable=True))
        batch.create_foreign_key("fk_people_manager_id", "people", ["manager_id"], ["id"],
                                 ondelete="SET NULL")
        batch.create_foreign_key("fk_people_directory_grant_id", "directory_grants",
                                 ["directory_grant_id"], ["id"], ondelete="SET NULL")
        batch.create_index("ix_people_manager_id", ["manager_id"])
        batch.create_index("ix_people_directory_grant_id", ["directory_grant_id"])
    with op.batch_alter_table("series") as batch:
        batch.add_column(sa.Column("manager_override", sa.String(320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("series") as batch:
        batch.drop_column("manager_override")
    with op.batch_alter_table("people") as batch:
        batch.drop_index("ix_people_directory_grant_id")
        batch.drop_index("ix_people_manager_id")
        batch.drop_constraint("fk_people_directory_grant_id", type_="foreignkey")
        batch.drop_constraint("fk_people_manager_id", type_="foreignkey")
        for column in ("left_at", "suspended", "directory_id", "directory_grant_id",
                       "manager_id"):
            batch.drop_column(column)
    with op.batch_alter_table("accounts") as batch:
        batch.drop_index("ix_accounts_grant_id")
        batch.drop_constraint("fk_accounts_grant_id", type_="foreignkey")
        batch.drop_column("grant_id")
    op.drop_table("directory_grants")
