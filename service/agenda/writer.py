"""Write a planned agenda into the invite: our block only, with If-Match, merge on conflict.

Text outside the block is kept byte for byte. What people changed inside the block since our
last write is read first (`invite_edits`) and becomes the pair's state, so the plan written
carries it: a three-way merge of the last block written, the invite and the plan. On 412 the
event is read again, the fresh edits are absorbed the same way, the agenda is planned again and
put into the fresh text, so a person's concurrent edit survives, inside the block or out.
An invite that already holds this exact block (our own write echoing back, or nothing
changed) costs no write. When the provider shows the occurrence cancelled or gone (a 404/410
that a read of the event confirms, or a re-read with status cancelled: the organizer dropped it
before our sync heard of it), the write ends there: the agenda is marked abandoned and its
topics go back to the queue for the next occurrence.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, case, literal, select, update
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import CalendarConnector, CalendarEvent, EventStatus
from connectors.errors import ConnectorError, NotFound, PreconditionFailed
from service.accounts.models import Account, AccountStatus
from service.accounts.pace import ACTING_COLUMNS, ActingAccount, acting_account
from service.agenda.block import (
    DescriptionTooLarge,
    block_hash_in,
    block_lines,
    content_hash,
    replace_block,
)
from service.agenda.generator import Agenda
from service.agenda.invite_edits import absorb_invite_edits
from service.agenda.items import release_topics
from service.agenda.models import AgendaRecord
from service.agenda.planner import is_abandoned, plan_occurrence, target_copy_id
from service.calendars.models import Calendar
from service.observability import AGENDA_WRITES
from service.pairs.models import Occurrence, OccurrenceCopy, OccurrenceStatus, Series
from service.settings import Settings

log = logging.getLogger(__name__)

MAX_CONFLICT_RETRIES = 3


class WriteOutcome(enum.StrEnum):
    WRITTEN = "written"
    UNCHANGED = "unchanged"  # the invite already holds this agenda: no write
    SKIPPED = "skipped"  # occurrence gone, started, or no copy we can write
    ABANDONED = "abandoned"  # the provider shows the occurrence cancelled or gone


ABANDONED_NOTE = "not written: the occurrence was cancelled or removed at the provider"
MAX_NOTE = 300  # characters of a failure kept on the agenda


class _OccurrenceGone(Exception):
    """The provider says the occurrence is cancelled or no longer exists: stop writing."""


class _RefusedButThere(Exception):
    """The write was answered 404/410 but the event reads back alive and not cancelled (a
    proxy or a provider glitch): nothing to abandon; the reconciler writes it again later."""


REFUSED_NOTE = ("not written: the provider answered the write with not found (404/410), but "
                "the event is still there; tried again at the next pass")


ConnectorFor = Callable[[int], CalendarConnector]  # calendar id -> connector of its account


def writing_account(session: Session, *, agenda_id: int) -> ActingAccount | None:
    """The account whose grant the write of this agenda uses (the organizer's, through the
    copy `target_copy` picks), None when there is none or it is not active (re-consent
    needed: no write until it signs in). One statement, with the account's pace."""
    return acting_account(session.execute(
        select(*ACTING_COLUMNS).select_from(AgendaRecord)
        .join(OccurrenceCopy,
              OccurrenceCopy.id == target_copy_id(AgendaRecord.occurrence_id))
        .join(Calendar, Calendar.id == OccurrenceCopy.calendar_id)
        .join(Account, Account.id == Calendar.account_id)
        .where(AgendaRecord.id == agenda_id, Account.status == AccountStatus.ACTIVE)).first())


def write_agenda(factory: sessionmaker[Session], *, agenda_id: int, connector_for: ConnectorFor,
                 settings: Settings, now: datetime,
                 request_sync: Callable[[int], object] | None = None) -> WriteOutcome:
    """Make the invite of one occurrence carry its planned agenda; idempotent.

    Three short transactions, none held across HTTP: plan, write to the provider, record.
    A provider that says the occurrence is gone is news our sync has not heard: the calendar's
    sync is requested (`sync_requested_at`, which the reconciler honours) and, with
    `request_sync`, sent right away, so the cancellation is recorded now, not at the next poll.
    """
    with factory() as session:
        found = _planning_inputs(session, agenda_id=agenda_id)
        if found is None:
            return WriteOutcome.SKIPPED
        record, occurrence, series, copy, provider_calendar_id = found
        if occurrence is None or series is None or series.pair_id is None \
                or occurrence.status != OccurrenceStatus.CONFIRMED \
                or occurrence.scheduled_start <= now:
            return WriteOutcome.SKIPPED
        if is_abandoned(record, copy):
            return WriteOutcome.SKIPPED  # found cancelled already; waiting for the sync
        if copy is not None and copy.description is not None \
                and copy.block_hash != record.written_hash:
            absorb_invite_edits(session, record=record, description=copy.description, at=now)
        planned = plan_occurrence(session, occurrence=occurrence, series=series,
                                  settings=settings, record=record)
        if copy is None or copy.description is None:
            session.commit()
            return WriteOutcome.SKIPPED
        if copy.block_hash == planned.content_hash:
            _mark_written(record, copy, planned.agenda, now)
            session.commit()
            return WriteOutcome.UNCHANGED
        assert provider_calendar_id is not None
        target = _Target(copy.calendar_id, provider_calendar_id, copy.id,
                         copy.provider_event_id, copy.description, copy.description_is_html,
                         copy.etag)
        occurrence_id = occurrence.id
        session.commit()

    def replan(fresh: CalendarEvent) -> Agenda:
        """After a 412: absorb what people changed meanwhile, and plan again."""
        with factory.begin() as session:
            record = session.get(AgendaRecord, agenda_id)
            occurrence = session.get(Occurrence, occurrence_id)
            current = session.get(Series, occurrence.series_id) if occurrence else None
            if record is None or occurrence is None or current is None \
                    or current.pair_id is None:
                raise _OccurrenceGone(target.event_id)  # removed by a sync meanwhile
            absorb_invite_edits(session, record=record, description=fresh.description,
                                at=fresh.updated or now)
            return plan_occurrence(session, occurrence=occurrence, series=current,
                                   settings=settings, record=record).agenda

    try:
        event, agenda = _patch_with_merge(connector_for(target.calendar_id), target,
                                          planned.agenda, replan)
    except _OccurrenceGone:
        with factory.begin() as session:
            _abandon(session, agenda_id=agenda_id, occurrence_id=occurrence_id,
                     held_etag=target.etag)
            session.execute(update(Calendar).where(Calendar.id == target.calendar_id)
                            .values(sync_requested_at=now))
        log.info("agenda %s not written: occurrence %s is cancelled or gone at the provider; "
                 "syncing calendar %s", agenda_id, occurrence_id, target.calendar_id)
        if request_sync is not None:
            request_sync(target.calendar_id)
        return WriteOutcome.ABANDONED
    except _RefusedButThere as err:
        _record_failure(factory, agenda_id=agenda_id, note=REFUSED_NOTE)
        log.warning("agenda %s not written: the write into occurrence %s was answered 404/410 "
                    "but event %s is still there; trying again at the next pass", agenda_id,
                    occurrence_id, err)
        return WriteOutcome.SKIPPED
    except ConnectorError as err:
        _record_failure(factory, agenda_id=agenda_id, note=failure_note(err))
        raise

    with factory.begin() as session:
        if event is None:  # the description cannot take a block: owed no more until a
            # sync brings a new description (which plans it again)
            _owe_no_write(session, agenda_id=agenda_id, copy_id=target.copy_id)
            return WriteOutcome.SKIPPED
        if not _record_written(session, agenda_id=agenda_id, copy_id=target.copy_id,
                               event=event, agenda=agenda, now=now):
            return WriteOutcome.SKIPPED  # the agenda or the copy was removed meanwhile
    AGENDA_WRITES.inc()
    log.info("agenda %s written into occurrence %s (calendar %s)", agenda_id, occurrence_id,
             target.calendar_id)
    return WriteOutcome.WRITTEN


_PlanningInputs = tuple[AgendaRecord, Occurrence | None, Series | None, OccurrenceCopy | None,
                        str | None]


def _planning_inputs(session: Session, *, agenda_id: int) -> _PlanningInputs | None:
    """The agenda, its occurrence and series, the copy to write into and its calendar's
    provider id, in one statement (None: no such agenda)."""
    row = session.execute(
        select(AgendaRecord, Occurrence, Series, OccurrenceCopy, Calendar.provider_calendar_id)
        .select_from(AgendaRecord)
        .outerjoin(Occurrence, Occurrence.id == AgendaRecord.occurrence_id)
        .outerjoin(Series, Series.id == Occurrence.series_id)
        .outerjoin(OccurrenceCopy,
                   OccurrenceCopy.id == target_copy_id(AgendaRecord.occurrence_id))
        .outerjoin(Calendar, Calendar.id == OccurrenceCopy.calendar_id)
        .where(AgendaRecord.id == agenda_id)).first()
    if row is None:
        return None
    record, occurrence, series, copy, provider_calendar_id = row
    return record, occurrence, series, copy, provider_calendar_id


def _owe_no_write(session: Session, *, agenda_id: int, copy_id: int) -> None:
    """The agenda is owed no write (while its copy is still there), in one UPDATE."""
    session.execute(update(AgendaRecord)
                    .where(AgendaRecord.id == agenda_id, _exists(OccurrenceCopy, copy_id))
                    .values(needs_write=False).execution_options(synchronize_session=False))


def _record_written(session: Session, *, agenda_id: int, copy_id: int, event: CalendarEvent,
                    agenda: Agenda, now: datetime) -> bool:
    """Store the event as written on its copy and mark the agenda written, with UPDATEs and
    no read first; False when either row is gone (then the agenda is not marked)."""
    copied = session.execute(  # type: ignore[attr-defined]
        update(OccurrenceCopy)
        .where(OccurrenceCopy.id == copy_id, _exists(AgendaRecord, agenda_id))
        .values(etag=event.etag, description=event.description,
                description_is_html=event.description_is_html,
                block_hash=block_hash_in(event.description))
        .execution_options(synchronize_session=False)).rowcount
    if not copied:
        return False
    values = _written_values(agenda, copy_id=copy_id, etag=event.etag)
    first_time = AgendaRecord.written_hash.is_distinct_from(values["written_hash"])
    marked = session.execute(  # type: ignore[attr-defined]
        update(AgendaRecord).where(AgendaRecord.id == agenda_id)
        .values(written_at=case((first_time, literal(now, AgendaRecord.written_at.type)),
                                else_=AgendaRecord.written_at), **values)
        .execution_options(synchronize_session=False)).rowcount
    return bool(marked)


def _exists(model: type[AgendaRecord] | type[OccurrenceCopy], row_id: int) -> ColumnElement[bool]:
    """SQL: the row with this id is still there."""
    return select(model.id).where(model.id == row_id).exists()


@dataclass(frozen=True)
class _Target:
    """The copy to write into, as it stood when we planned (the merge base)."""

    calendar_id: int
    provider_calendar_id: str
    copy_id: int
    event_id: str
    description: str
    is_html: bool
    etag: str | None


def _patch_with_merge(connector: CalendarConnector, target: _Target, agenda: Agenda,
                      replan: Callable[[CalendarEvent], Agenda]
                      ) -> tuple[CalendarEvent | None, Agenda]:
    """Write the block with If-Match; on 412 read again, let `replan` absorb the fresh edits,
    and write the new plan into the fresh text. Returns the event written and its agenda."""
    description, is_html, etag = target.description, target.is_html, target.etag
    for attempt in range(MAX_CONFLICT_RETRIES + 1):
        try:
            merged = replace_block(description, is_html=is_html, agenda=agenda)
        except DescriptionTooLarge:
            log.warning("event %s: description too large for an agenda; skipped",
                        target.event_id)
            return None, agenda
        try:
            return connector.patch_description(target.provider_calendar_id, target.event_id,
                                               description=merged, is_html=is_html,
                                               etag=etag), agenda
        except PreconditionFailed:
            if attempt == MAX_CONFLICT_RETRIES:
                raise
            log.info("event %s changed under us; reading it again to merge", target.event_id)
            fresh = _read_again(connector, target)
            if _holds(fresh.description, content_hash(agenda)):
                return fresh, agenda  # another worker of ours wrote this very agenda
            agenda = replan(fresh)
            if _holds(fresh.description, content_hash(agenda)):
                return fresh, agenda
            description, is_html, etag = fresh.description, fresh.description_is_html, fresh.etag
        except NotFound as err:
            # believed only once a read agrees: a cancelled or vanished event ends the write
            _read_again(connector, target)
            raise _RefusedButThere(target.event_id) from err
    return None, agenda


def _read_again(connector: CalendarConnector, target: _Target) -> CalendarEvent:
    """The event as it is now; a cancelled or vanished one ends the write (no PATCH into it:
    Google keeps a cancelled event readable, and writable, on the organizer's calendar)."""
    try:
        fresh = connector.get_event(target.provider_calendar_id, target.event_id)
    except NotFound as err:
        raise _OccurrenceGone(target.event_id) from err
    if fresh.status == EventStatus.CANCELLED:
        raise _OccurrenceGone(target.event_id)
    return fresh


def _abandon(session: Session, *, agenda_id: int, occurrence_id: int,
             held_etag: str | None) -> None:
    """Record that this agenda was not written and free its topics for the next occurrence."""
    record = session.get(AgendaRecord, agenda_id)
    if record is not None:
        record.abandoned_etag = held_etag or ""
        record.last_error = ABANDONED_NOTE
        record.needs_write = False
    release_topics(session, occurrence_id=occurrence_id)


def failure_note(err: ConnectorError) -> str:
    """One line for `AgendaRecord.last_error`: the connector's own message, bounded."""
    first = (str(err).strip().splitlines() or [""])[0]
    return f"not written: {type(err).__name__}: {first}"[:MAX_NOTE]


def _record_failure(factory: sessionmaker[Session], *, agenda_id: int, note: str) -> None:
    """Keep why the write failed on the agenda (the caller re-raises: retry or give up is the
    worker's call); a later successful write clears it."""
    with factory.begin() as session:
        session.execute(update(AgendaRecord).where(AgendaRecord.id == agenda_id)
                        .values(last_error=note).execution_options(synchronize_session=False))


def _holds(description: str, digest: str) -> bool:
    """Whether the description already carries the block with this content hash."""
    try:
        return block_hash_in(description) == digest
    except DescriptionTooLarge:
        return False


def _mark_written(record: AgendaRecord, copy: OccurrenceCopy, agenda: Agenda,
                  now: datetime) -> None:
    """The invite holds this agenda now (its copy as loaded in this session)."""
    values = _written_values(agenda, copy_id=copy.id, etag=copy.etag)
    if record.written_hash != values["written_hash"]:
        record.written_at = now
    for name, value in values.items():
        setattr(record, name, value)


def _written_values(agenda: Agenda, *, copy_id: int, etag: str | None) -> dict[str, object]:
    """The agenda's columns once the invite holds `agenda`; its lines are the base for
    reading people's edits (`written_at` moves only when the content does)."""
    return {"written_hash": content_hash(agenda), "written_text": "\n".join(block_lines(agenda)),
            "written_copy_id": copy_id, "provider_etag": etag, "last_error": None,
            "abandoned_etag": None, "needs_write": False}
