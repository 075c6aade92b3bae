"""incremental metric snapshots: the week's facts on each snapshot, a change log filled by
triggers on the inputs (occurrences, agendas, action items, series, pairs, people), and the
state row of ended weeks

Revision ID: 0022
Revises: 0014
Create Date: 2026-12-01

The triggers name the (pair, instant) whose snapshot week is stale, so `refresh_snapshots`
finds its work with one indexed read of `metric_changes` and no scan of the inputs; they fire
for every writer (the ORM, Core batches, psql), so no code that writes inputs needs to know
about snapshots. Updates only log when a column the metrics read changed.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.db

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

LOG = "INSERT INTO metric_changes (pair_id, at)"

# (name, table, event, columns whose change matters on UPDATE, statements)
OCC_NEW = (f"{LOG} SELECT s.pair_id, NEW.original_start FROM series s"
           " WHERE s.id = NEW.series_id AND s.pair_id IS NOT NULL")
OCC_OLD = OCC_NEW.replace("NEW.", "OLD.")
AGENDA_NEW = (f"{LOG} SELECT NEW.pair_id, o.original_start FROM occurrences o"
              " WHERE o.id = NEW.occurrence_id")
AGENDA_OLD = AGENDA_NEW.replace("NEW.", "OLD.")
ITEM_NEW = f"{LOG} SELECT NEW.pair_id, NEW.closed_at WHERE NEW.closed_at IS NOT NULL"
ITEM_OLD = ITEM_NEW.replace("NEW.", "OLD.")
SERIES_NEW = f"{LOG} SELECT NEW.pair_id, NULL WHERE NEW.pair_id IS NOT NULL"
SERIES_OLD = SERIES_NEW.replace("NEW.", "OLD.")
PAIR_NEW = f"{LOG} SELECT NEW.id, NULL"
ZONE_NEW = f"{LOG} SELECT p.id, NULL FROM pairs p WHERE p.manager_id = NEW.id"
TRIGGERS: list[tuple[str, str, str, tuple[str, ...], list[str]]] = [
    ("occurrence_added", "occurrences", "INSERT", (), [OCC_NEW]),
    ("occurrence_changed", "occurrences", "UPDATE",
     ("outcome", "scheduled_start", "original_start", "series_id"), [OCC_OLD, OCC_NEW]),
    ("occurrence_removed", "occurrences", "DELETE", (), [OCC_OLD]),
    ("agenda_added", "agendas", "INSERT", (), [AGENDA_NEW]),
    ("agenda_changed", "agendas", "UPDATE", ("kind", "areas", "occurrence_id", "pair_id"),
     [AGENDA_OLD, AGENDA_NEW]),
    ("agenda_removed", "agendas", "DELETE", (), [AGENDA_OLD]),
    ("item_added", "action_items", "INSERT", (), [ITEM_NEW]),
    ("item_changed", "action_items", "UPDATE", ("closed_at", "pair_id"), [ITEM_OLD, ITEM_NEW]),
    ("item_removed", "action_items", "DELETE", (), [ITEM_OLD]),
    ("series_changed", "series", "UPDATE", ("pair_id", "cadence_days"),
     [SERIES_OLD, SERIES_NEW]),
    ("series_removed", "series", "DELETE", (), [SERIES_OLD]),
    ("pair_added", "pairs", "INSERT", (), [PAIR_NEW]),
    ("pair_changed", "pairs", "UPDATE", ("manager_id",), [PAIR_NEW]),
    ("manager_zone_changed", "people", "UPDATE", ("time_zone",), [ZONE_NEW]),
]
JSON_COLUMNS = {"areas"}  # PostgreSQL's json has no equality: compare its text


def _when(columns: tuple[str, ...], dialect: str) -> str:
    """`WHEN (...)`: any of the columns differs, NULLs included (SQLite `IS NOT`,
    PostgreSQL `IS DISTINCT FROM`); empty for INSERT and DELETE."""
    if not columns:
        return ""
    if dialect == "postgresql":
        parts = [f"OLD.{c}::text IS DISTINCT FROM NEW.{c}::text" if c in JSON_COLUMNS
                 else f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in columns]
    else:
        parts = [f"OLD.{c} IS NOT NEW.{c}" for c in columns]
    return f"WHEN ({' OR '.join(parts)})"


def _create_triggers(dialect: str) -> None:
    for name, table, event, columns, statements in TRIGGERS:
        body = ";\n  ".join(statements)
        when = _when(columns, dialect)
        if dialect == "postgresql":
            op.execute(f"CREATE FUNCTION metric_{name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                       f"BEGIN\n  {body};\n  RETURN NULL;\nEND $$")
            op.execute(f"CREATE TRIGGER metric_{name} AFTER {event} ON {table} FOR EACH ROW "
                       f"{when} EXECUTE FUNCTION metric_{name}()")
        else:
            op.execute(f"CREATE TRIGGER metric_{name} AFTER {event} ON {table} FOR EACH ROW "
                       f"{when}\nBEGIN\n  {body};\nEND")


def _drop_triggers(dialect: str) -> None:
    for name, table, *_ in TRIGGERS:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS metric_{name} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS metric_{name}()")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS metric_{name}")


def upgrade() -> None:
    with op.batch_alter_table("metric_snapshots") as batch:
        batch.add_column(sa.Column("facts", sa.JSON(), nullable=False, server_default="[]"))
    op.create_table(
        "metric_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("at", service.db.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_metric_changes_pair_id", "metric_changes", ["pair_id"])
    op.create_table(
        "metric_snapshot_state",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("weeks_through", service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_check", service.db.UTCDateTime(timezone=True), nullable=False),
    )
    _create_triggers(op.get_bind().dialect.name)


def downgrade() -> None:
    _drop_triggers(op.get_bind().dialect.name)
    op.drop_table("metric_snapshot_state")
    op.drop_index("ix_metric_changes_pair_id", table_name="metric_changes")
    op.drop_table("metric_changes")
    with op.batch_alter_table("metric_snapshots") as batch:
        batch.drop_column("facts")
