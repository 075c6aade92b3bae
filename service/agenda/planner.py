"""Decide the agenda of each upcoming 1:1 occurrence from the pair's history.

Planning is deterministic for the same history (the generator is seeded by series and date),
so re-planning changes nothing and an unchanged agenda costs no write. Agendas of meetings
that have started are frozen: they are the pair's record of what was asked.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.agenda.block import content_hash
from service.agenda.generator import Agenda, FollowUp, compose_agenda, kind_for
from service.agenda.items import queued_topics
from service.agenda.links import invite_links
from service.agenda.models import ActionItem, AgendaRecord
from service.agenda.questions import Area
from service.agenda.rows import agenda_row
from service.calendars.queries import ready_calendar_ids
from service.pairs.models import (
    Occurrence,
    OccurrenceCopy,
    OccurrenceStatus,
    Pair,
    Series,
    SeriesStatus,
)
from service.people.models import Person
from service.people.names import display_name
from service.settings import Settings

RECENT_MEETINGS_FOR_BALANCE = 6
RECENT_MEETINGS_FOR_REPEATS = 16


@dataclass(frozen=True)
class PlannedAgenda:
    """An agenda with the record it is stored in."""

    record: AgendaRecord
    agenda: Agenda
    content_hash: str


def plan_occurrence(session: Session, *, occurrence: Occurrence, series: Series,
                    settings: Settings) -> PlannedAgenda:
    """Compose (or recompose) the agenda of one occurrence and store what it covers.

    The manager's private topics are planned into the occurrence too (so they leave the
    queue when it took place) but never into the agenda the invite carries."""
    assert series.pair_id is not None
    pair_id = series.pair_id
    rows = session.execute(
        select(AgendaRecord, Occurrence.series_id)
        .join(Occurrence, Occurrence.id == AgendaRecord.occurrence_id)
        .where(AgendaRecord.pair_id == pair_id,
               Occurrence.original_start < occurrence.original_start)
        .order_by(Occurrence.original_start.desc())
    ).all()
    earlier = [record for record, _ in rows]
    areas: Counter[Area] = Counter({area: 0 for area in Area})
    for record in earlier[:RECENT_MEETINGS_FOR_BALANCE]:
        areas.update(Area(a) for a in record.areas)
    # most recent first, so an exhausted pool brings back the question asked longest ago
    recently_asked = [q for r in earlier[:RECENT_MEETINGS_FOR_REPEATS] for q in r.question_ids]
    topics = queued_topics(session, pair_id=pair_id, for_occurrence_id=occurrence.id)
    for topic in topics:
        topic.used_in_occurrence_id = occurrence.id
    found = session.scalar(select(AgendaRecord).where(
        AgendaRecord.occurrence_id == occurrence.id))
    agenda = compose_agenda(
        series_key=f"pair-{pair_id}",
        occurrence_date=occurrence.original_start.date(),
        kind=kind_for(cadence=settings.kinds, occurrence_index=len(earlier)),
        report_topics=[t.text for t in topics if t.added_by == "report" and not t.private],
        manager_topics=[t.text for t in topics if t.added_by == "manager" and not t.private],
        invite_topics=[t.text for t in topics if t.added_by not in ("report", "manager")],
        open_action_items=_follow_ups(session, session.get(Pair, pair_id)),
        recent_area_counts=dict(areas),
        recently_asked=recently_asked,
        first_of_series=all(series_id != series.id for _, series_id in rows),
        dismissed=found.dismissed if found is not None else (),
    )
    agenda = replace(agenda, links=invite_links(session, settings, pair_id=pair_id,
                                                occurrence=occurrence))
    digest = content_hash(agenda)
    # insert-or-get: the other person's sync may be planning this occurrence right now
    record = found or agenda_row(session, occurrence_id=occurrence.id, pair_id=pair_id,
                                 content_hash=digest, kind=str(agenda.kind))
    record.pair_id = pair_id
    record.kind = str(agenda.kind)
    record.areas = sorted(str(a) for a in agenda.areas)
    record.question_ids = [*agenda.question_ids, *agenda.section_ids]
    record.content_hash = digest
    session.flush()
    return PlannedAgenda(record=record, agenda=agenda, content_hash=digest)


def _follow_ups(session: Session, pair: Pair | None) -> list[FollowUp]:
    """The pair's open action items, oldest first, each with its owner's first name (the
    role when no name is known): items belong to the pair, so they outlive any series."""
    if pair is None:
        return []
    owners = {role: _first_name(session.get(Person, person_id), role.capitalize())
              for role, person_id in (("report", pair.report_id), ("manager", pair.manager_id))}
    items = session.scalars(
        select(ActionItem).where(ActionItem.pair_id == pair.id, ActionItem.closed_at.is_(None))
        .order_by(ActionItem.created_at, ActionItem.id)).all()
    return [FollowUp(item.text, item_id=item.id, owner=owners.get(item.owner)) for item in items]


def _first_name(person: Person | None, fallback: str) -> str:
    name = display_name(person)
    return name.split()[0] if name else fallback


def target_copy(session: Session, occurrence_id: int) -> OccurrenceCopy | None:
    """The organizer's copy: the only one both people see, and the only one providers let us
    change (Google answers 403 forbiddenForNonOrganizer to an attendee). None until the
    organizer's calendar is connected and synced; the reconciler tries again then."""
    return session.scalars(
        select(OccurrenceCopy).where(OccurrenceCopy.occurrence_id == occurrence_id,
                                     OccurrenceCopy.removed.is_(False),
                                     OccurrenceCopy.is_organizer_copy.is_(True))
        .order_by(OccurrenceCopy.id).limit(1)
    ).first()


def is_abandoned(record: AgendaRecord | None, copy: OccurrenceCopy | None) -> bool:
    """Whether we already found this copy cancelled or gone at the provider, and no sync has
    brought news of it since (its etag is the one we held then)."""
    if record is None or record.abandoned_etag is None:
        return False
    return copy is None or record.abandoned_etag == (copy.etag or "")


def plan_due_agendas(session: Session, *, settings: Settings, now: datetime,
                     series_ids: set[int] | None = None) -> list[int]:
    """Plan every upcoming 1:1 occurrence in the horizon; ids of agendas the invite lacks
    whose writing account may call its provider now (active, not asked to wait: an account
    that needs re-consent or is throttled gets its writes once it can take them)."""
    query = select(Series).where(Series.pair_id.is_not(None),
                                 Series.status == SeriesStatus.ACTIVE)
    if series_ids is not None:
        if not series_ids:
            return []
        query = query.where(Series.id.in_(series_ids))
    due: list[int] = []
    ready = ready_calendar_ids(session)
    horizon = now + timedelta(days=settings.agenda_horizon_days)
    for series in session.scalars(query.order_by(Series.id)).all():
        upcoming = session.scalars(
            select(Occurrence).where(Occurrence.series_id == series.id,
                                     Occurrence.status == OccurrenceStatus.CONFIRMED,
                                     Occurrence.scheduled_start >= now,
                                     Occurrence.scheduled_start < horizon)
            .order_by(Occurrence.scheduled_start).limit(settings.agenda_occurrences)
        ).all()
        for occurrence in upcoming:
            copy = target_copy(session, occurrence.id)
            if is_abandoned(session.scalar(select(AgendaRecord).where(
                    AgendaRecord.occurrence_id == occurrence.id)), copy):
                continue  # cancelled at the provider; its topics went back to the queue
            planned = plan_occurrence(session, occurrence=occurrence, series=series,
                                      settings=settings)
            if copy is not None and copy.description is not None and \
                    copy.block_hash != planned.content_hash and copy.calendar_id in ready:
                due.append(planned.record.id)
    return due
