"""pairs by report: an index on pairs.report_id, so finding a person's pairs as the report
(the sync's pair links, prep send times, a person's page) is an index probe, not a scan

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-02

A plain CREATE INDEX (no batch operation): the triggers of 0022 stay in place.
"""
from __future__ import annotations

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_pairs_report_id", "pairs", ["report_id"])


def downgrade() -> None:
    op.drop_index("ix_pairs_report_id", table_name="pairs")
