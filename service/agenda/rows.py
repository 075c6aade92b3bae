"""Insert-or-get of agenda rows: the manager's and the report's syncs plan the same
occurrence at once, and the one that comes second must find the first one's row, not fail.

For the lead: this is the same ON CONFLICT dialect switch as `service.email.outbox._insert_for`;
fold it into the shared helper in `service/db.py` once that lands.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.agenda.models import AgendaRecord


def _insert_for(session: Session) -> Callable[..., Any]:
    """The dialect's INSERT that knows ON CONFLICT (SQLite and PostgreSQL only)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"agenda rows need SQLite or PostgreSQL, not {dialect}")


def agenda_row(session: Session, *, occurrence_id: int, pair_id: int, content_hash: str,
               kind: str) -> AgendaRecord:
    """The agenda row of the occurrence, created when missing.

    INSERT ... ON CONFLICT DO NOTHING waits for a concurrent insert of the same occurrence to
    commit (PostgreSQL) and then does nothing; the SELECT after it (a new snapshot under READ
    COMMITTED) finds whichever row won. No IntegrityError, no rolled-back transaction.
    """
    session.execute(
        _insert_for(session)(AgendaRecord)
        .values(occurrence_id=occurrence_id, pair_id=pair_id, content_hash=content_hash,
                kind=kind, areas=[], question_ids=[])
        .on_conflict_do_nothing(index_elements=[AgendaRecord.occurrence_id]))
    return session.scalars(select(AgendaRecord).where(
        AgendaRecord.occurrence_id == occurrence_id)).one()
