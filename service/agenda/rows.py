"""Insert-or-get of agenda rows: the manager's and the report's syncs plan the same
occurrence at once, and the one that comes second must find the first one's row, not fail.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.agenda.models import AgendaRecord
from service.db import dialect_insert


def agenda_row(session: Session, *, occurrence_id: int, pair_id: int, content_hash: str,
               kind: str, areas: list[str] | None = None, question_ids: list[str] | None = None,
               needs_write: bool = False) -> AgendaRecord:
    """The agenda row of the occurrence, created with these values when missing (the plan's
    own, so a new row costs no UPDATE after its INSERT).

    INSERT ... ON CONFLICT DO NOTHING RETURNING waits for a concurrent insert of the same
    occurrence to commit (PostgreSQL) and then returns nothing; only then the SELECT after it
    (a new snapshot under READ COMMITTED) finds whichever row won. No IntegrityError, no
    rolled-back transaction.
    """
    made = session.scalars(
        dialect_insert(session, AgendaRecord)
        .values(occurrence_id=occurrence_id, pair_id=pair_id, content_hash=content_hash,
                kind=kind, areas=areas or [], question_ids=question_ids or [],
                needs_write=needs_write)
        .on_conflict_do_nothing(index_elements=[AgendaRecord.occurrence_id])
        .returning(AgendaRecord)).first()
    return made if made is not None else session.scalars(select(AgendaRecord).where(
        AgendaRecord.occurrence_id == occurrence_id)).one()
