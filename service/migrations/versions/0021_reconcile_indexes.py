"""the reconciler's due work by index: occurrences undecided / dropped / unarmed / by prep
nudge, outbox by status, accounts by status; markers: occurrences' prep_nudged_at,
prep_due_at, prep_due_for, accounts' reconsent_emailed_for

Revision ID: 0021
Revises: 0014
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.db

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

# the same condition as service.pairs.models.UNARMED_DROP (a migration keeps its own copy)
UNARMED_DROP = ("outcome IS NULL AND check_due_at IS NULL AND (status = 'cancelled'"
                " OR manager_response = 'declined' OR report_response = 'declined')")


def upgrade() -> None:
    with op.batch_alter_table("occurrences") as batch:
        for column in ("prep_nudged_at", "prep_due_at", "prep_due_for"):
            batch.add_column(sa.Column(column, service.db.UTCDateTime(timezone=True),
                                       nullable=True))
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("reconsent_emailed_for",
                                   service.db.UTCDateTime(timezone=True), nullable=True))
    op.create_index("ix_occurrences_undecided_end", "occurrences",
                    ["outcome", "check_due_at", "scheduled_end"])
    op.create_index("ix_occurrences_outcome_start", "occurrences", ["outcome", "original_start"])
    op.create_index("ix_occurrences_prep_due", "occurrences", ["prep_nudged_at", "prep_due_at"])
    op.create_index("ix_occurrences_prep_window", "occurrences",
                    ["prep_nudged_at", "scheduled_start", "prep_due_for"])
    op.create_index("ix_occurrences_unarmed_drops", "occurrences", ["id"],
                    sqlite_where=sa.text(UNARMED_DROP), postgresql_where=sa.text(UNARMED_DROP))
    op.create_index("ix_outbox_status_not_before", "outbox", ["status", "not_before"])
    op.create_index("ix_accounts_status", "accounts", ["status"])


def downgrade() -> None:
    op.drop_index("ix_accounts_status", "accounts")
    op.drop_index("ix_outbox_status_not_before", "outbox")
    op.drop_index("ix_occurrences_unarmed_drops", "occurrences")
    op.drop_index("ix_occurrences_prep_window", "occurrences")
    op.drop_index("ix_occurrences_prep_due", "occurrences")
    op.drop_index("ix_occurrences_outcome_start", "occurrences")
    op.drop_index("ix_occurrences_undecided_end", "occurrences")
    with op.batch_alter_table("occurrences") as batch:
        for column in ("prep_due_for", "prep_due_at", "prep_nudged_at"):
            batch.drop_column(column)
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("reconsent_emailed_for")
