"""Decide the agenda of each upcoming 1:1 occurrence from the pair's history.

Planning is deterministic for the same history (the generator is seeded by series and date),
so re-planning changes nothing and an unchanged agenda costs no write. Agendas of meetings
that have started are frozen: they are the pair's record of what was asked.

A pair is planned when one of its inputs changed (`wanted`: marks and the time-driven ranges),
in batches of pairs that read their occurrences with copies and records in one query, and
their history (past areas and questions, the count, topics, open items) one query per kind;
the writes still owed are one indexed query (`AgendaRecord.needs_write`), so a reconcile pass
with nothing due costs the same few statements whatever the number of series.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial

from sqlalchemy import ScalarSelect, SQLColumnExpression, and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased, sessionmaker

from service.accounts.models import Account
from service.accounts.pace import ready_accounts
from service.agenda.block import content_hash
from service.agenda.generator import Agenda, FollowUp, compose_agenda, kind_for
from service.agenda.items import topics_for_occurrences
from service.agenda.links import invite_links
from service.agenda.models import ActionItem, AgendaRecord, PairTopic
from service.agenda.questions import Area
from service.agenda.rows import agenda_row
from service.agenda.wanted import (
    Marks,
    clear_marks,
    mark_time_driven,
    want_series_plans,
    wanted_marks,
    window,
)
from service.calendars.models import Calendar
from service.db import IN_CHUNK, chunks
from service.pairs.models import (
    Occurrence,
    OccurrenceCopy,
    OccurrenceStatus,
    Pair,
    Series,
    SeriesStatus,
)
from service.pairs.service import pairs_with_people
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
                    settings: Settings, record: AgendaRecord | None = None) -> PlannedAgenda:
    """Compose (or recompose) the agenda of one occurrence and store what it covers;
    `record`, the occurrence's agenda row when the caller holds it (not read again).

    The manager's private topics are planned into the occurrence too (so they leave the
    queue when it took place) but never into the agenda the invite carries."""
    assert series.pair_id is not None
    found = record if record is not None else session.scalar(select(AgendaRecord).where(
        AgendaRecord.occurrence_id == occurrence.id))
    pair = session.get(Pair, series.pair_id)
    # referenced until planned, so the links find the pair and its people in the session's
    # identity map (it holds objects only while referenced) instead of reading them again
    people = [session.get(Person, i) for i in (pair.report_id, pair.manager_id)] if pair else []
    follow_ups = _follow_ups(session, [pair]).get(series.pair_id, []) if pair else []
    history = _histories(session, {series.pair_id: (occurrence, series)})[series.pair_id]
    planned = _plan(session, occurrence=occurrence, series=series, settings=settings,
                    found=found, follow_ups=follow_ups, history=history)
    del people
    return planned


@dataclass(frozen=True)
class _History:
    """What planning an occurrence reads of its pair's past: the last meetings' areas and
    questions (most recent first), how many agendas came before (the rotation of kinds),
    whether one was in this series, and the topics that may go into it."""

    recent: list[tuple[list[str], list[str]]]
    count: int
    in_this_series: bool
    topics: list[PairTopic]


def _histories(session: Session,
               planning: dict[int, tuple[Occurrence, Series]]) -> dict[int, _History]:
    """`_History` of each pair's occurrence (pair id -> (occurrence, series)), in two
    queries for all of them: the last meetings before it, with the count of all before it
    and whether one was in its series (window functions over the pair), then the topics.
    The rows read are bounded, whatever the history's length."""
    recent: dict[int, list[tuple[list[str], list[str]]]] = {p: [] for p in planning}
    counts: dict[int, tuple[int, bool]] = {}
    for chunk in chunks(sorted(planning), IN_CHUNK // 2):  # four bound parameters per pair
        earlier = or_(*(and_(AgendaRecord.pair_id == p,
                             Occurrence.original_start < planning[p][0].original_start)
                        for p in chunk))
        in_series = case(*((and_(AgendaRecord.pair_id == p,
                                 Occurrence.series_id == planning[p][1].id), 1) for p in chunk),
                         else_=0)
        pair = AgendaRecord.pair_id
        last = select(AgendaRecord.pair_id, AgendaRecord.areas, AgendaRecord.question_ids,
                      func.row_number().over(partition_by=pair, order_by=Occurrence
                                             .original_start.desc()).label("rank"),
                      func.count().over(partition_by=pair).label("count"),
                      func.max(in_series).over(partition_by=pair).label("in_series")) \
            .join(Occurrence, Occurrence.id == AgendaRecord.occurrence_id) \
            .where(earlier).subquery()
        for pair_id, areas, question_ids, count, in_this_series in session.execute(
                select(last.c.pair_id, last.c.areas, last.c.question_ids, last.c.count,
                       last.c.in_series)
                .where(last.c.rank <= RECENT_MEETINGS_FOR_REPEATS)
                .order_by(last.c.pair_id, last.c.rank)):
            recent[pair_id].append((areas, question_ids))
            counts[pair_id] = (count, bool(in_this_series))
    topics = topics_for_occurrences(
        session, {p: occurrence.id for p, (occurrence, _) in planning.items()})
    return {p: _History(recent[p], *counts.get(p, (0, False)), topics=topics[p])
            for p in planning}


def _plan(session: Session, *, occurrence: Occurrence, series: Series, settings: Settings,
          found: AgendaRecord | None, follow_ups: list[FollowUp], history: _History,
          needs_write: Callable[[str], bool] | None = None) -> PlannedAgenda:
    """`plan_occurrence` with the occurrence's record, the pair's open items and history
    given (a batch reads them once); `needs_write`, given the plan's hash, whether the
    invite lacks it (left as it is without)."""
    assert series.pair_id is not None
    pair_id = series.pair_id
    areas: Counter[Area] = Counter({area: 0 for area in Area})
    for record_areas, _ in history.recent[:RECENT_MEETINGS_FOR_BALANCE]:
        areas.update(Area(a) for a in record_areas)
    # most recent first, so an exhausted pool brings back the question asked longest ago
    recently_asked = [q for _, question_ids in history.recent for q in question_ids]
    topics = history.topics
    for topic in topics:
        topic.used_in_occurrence_id = occurrence.id
    agenda = compose_agenda(
        series_key=f"pair-{pair_id}",
        occurrence_date=occurrence.original_start.date(),
        kind=kind_for(cadence=settings.kinds, occurrence_index=history.count),
        report_topics=[t.text for t in topics if t.added_by == "report" and not t.private],
        manager_topics=[t.text for t in topics if t.added_by == "manager" and not t.private],
        invite_topics=[t.text for t in topics if t.added_by not in ("report", "manager")],
        open_action_items=follow_ups,
        recent_area_counts=dict(areas),
        recently_asked=recently_asked,
        first_of_series=not history.in_this_series,
        dismissed=found.dismissed if found is not None else (),
    )
    agenda = replace(agenda, links=invite_links(session, settings, pair_id=pair_id,
                                                occurrence=occurrence))
    digest = content_hash(agenda)
    kind, areas_planned = str(agenda.kind), sorted(str(a) for a in agenda.areas)
    question_ids = [*agenda.question_ids, *agenda.section_ids]
    # insert-or-get, inserting the plan itself: the other person's sync may be planning this
    # occurrence right now, and then its row gets these values in an UPDATE
    write = needs_write(digest) if needs_write is not None else None
    record = found or agenda_row(session, occurrence_id=occurrence.id, pair_id=pair_id,
                                 content_hash=digest, kind=kind, areas=areas_planned,
                                 question_ids=question_ids, needs_write=bool(write))
    record.pair_id, record.kind, record.content_hash = pair_id, kind, digest
    record.areas, record.question_ids = areas_planned, question_ids
    if write is not None:
        record.needs_write = write
    session.flush()
    return PlannedAgenda(record=record, agenda=agenda, content_hash=digest)


def _follow_ups(session: Session, pairs: list[Pair]) -> dict[int, list[FollowUp]]:
    """Each pair's open action items, oldest first, each with its owner's first name (the
    role when no name is known), in one query: items belong to the pair, so they outlive any
    series. The people are read from the session (held by the caller)."""
    owners = {pair.id: {role: _first_name(session.get(Person, person_id), role.capitalize())
                        for role, person_id in (("report", pair.report_id),
                                                ("manager", pair.manager_id))}
              for pair in pairs}
    found: dict[int, list[FollowUp]] = {pair.id: [] for pair in pairs}
    for chunk in chunks(sorted(owners)):
        for item in session.scalars(
                select(ActionItem).where(ActionItem.pair_id.in_(chunk),
                                         ActionItem.closed_at.is_(None))
                .order_by(ActionItem.pair_id, ActionItem.created_at, ActionItem.id)):
            found[item.pair_id].append(FollowUp(item.text, item_id=item.id,
                                                owner=owners[item.pair_id].get(item.owner)))
    return found


def _first_name(person: Person | None, fallback: str) -> str:
    name = display_name(person)
    return name.split()[0] if name else fallback


def target_copy(session: Session, occurrence_id: int) -> OccurrenceCopy | None:
    """The organizer's copy: the only one both people see, and the only one providers let us
    change (Google answers 403 forbiddenForNonOrganizer to an attendee). None until the
    organizer's calendar is connected and synced; the reconciler tries again then."""
    return session.scalars(
        select(OccurrenceCopy).where(OccurrenceCopy.id == target_copy_id(occurrence_id))
    ).first()


def target_copy_id(occurrence_id: int | SQLColumnExpression[int]) -> ScalarSelect[int]:
    """SQL: the id of `target_copy` of the occurrence (an id, or a column the query it is
    used in correlates, e.g. `Occurrence.id`): the lowest id among its organizer's copies
    not removed. The one rule the plan, the write and the writing account share."""
    copy = aliased(OccurrenceCopy)
    return (select(func.min(copy.id))
            .where(copy.occurrence_id == occurrence_id, copy.removed.is_(False),
                   copy.is_organizer_copy.is_(True))
            .correlate_except(copy).scalar_subquery())


def is_abandoned(record: AgendaRecord | None, copy: OccurrenceCopy | None) -> bool:
    """Whether we already found this copy cancelled or gone at the provider, and no sync has
    brought news of it since (its etag is the one we held then)."""
    if record is None or record.abandoned_etag is None:
        return False
    return copy is None or record.abandoned_etag == (copy.etag or "")


PAIRS_PER_PASS = 1_000  # after a settings change or the upgrade, later passes plan the rest
PAIRS_PER_BATCH = 500  # pairs planned per batch of reads (bound parameters stay few)


def plan_due_agendas(session: Session, *, settings: Settings, now: datetime) -> list[int]:
    """The reconciler's planning: plan the pairs whose inputs changed (marked, or moved in
    time since the last pass: `wanted`), then return every write still owed. Nothing due
    costs the same few statements whatever the number of series."""
    mark_time_driven(session, settings=settings, now=now)
    marks = wanted_marks(session, limit=PAIRS_PER_PASS)
    if marks:
        _plan_marked(session, settings=settings, now=now, marks=marks)
    return owed_writes(session, settings=settings, now=now)


def plan_pairs(session: Session, *, settings: Settings, now: datetime,
               pair_ids: set[int]) -> list[int]:
    """Plan these pairs now (a sync touched their series, a page changed their topics); the
    ids of their agendas whose write is owed and may be sent now."""
    if not pair_ids:
        return []
    marks = wanted_marks(session, pair_ids=pair_ids)
    planned = _plan_marked(session, settings=settings, now=now,
                           marks={**dict.fromkeys(pair_ids, ""), **marks})
    return owed_writes(session, settings=settings, now=now, among=planned) if planned else []


def _plan_marked(session: Session, *, settings: Settings, now: datetime,
                 marks: Marks) -> list[int]:
    """Plan every active series of the marked pairs, a batch of pairs at a time, then clear
    the marks read."""
    planned: list[int] = []
    for pair_ids in chunks(sorted(marks), PAIRS_PER_BATCH):
        planned += _plan_batch(session, settings=settings, now=now, pair_ids=pair_ids)
    clear_marks(session, {pair: token for pair, token in marks.items() if token})
    return planned


def _plan_batch(session: Session, *, settings: Settings, now: datetime,
                pair_ids: Sequence[int]) -> list[int]:
    """Plan the upcoming occurrences (the first `agenda_occurrences` in the horizon) of the
    active series of a batch of pairs, reading their occurrences with their copies and
    records in one query, and their history a query per kind; the ids of the records
    planned. `needs_write` records whether the invite lacks the plan."""
    span = window(settings, now)
    rank = func.row_number().over(partition_by=Occurrence.series_id,
                                  order_by=(Occurrence.scheduled_start, Occurrence.id))
    ranked = select(Occurrence.id, rank.label("rank")).join(
        Series, Series.id == Occurrence.series_id).where(
        Series.pair_id.in_(pair_ids), Series.status == SeriesStatus.ACTIVE,
        Occurrence.status == OccurrenceStatus.CONFIRMED,
        Occurrence.scheduled_start >= span.now, Occurrence.scheduled_start < span.until
    ).subquery()
    rows = session.execute(
        select(Occurrence, Series, AgendaRecord, OccurrenceCopy)
        .join(ranked, ranked.c.id == Occurrence.id)
        .join(Series, Series.id == Occurrence.series_id)
        .outerjoin(AgendaRecord, AgendaRecord.occurrence_id == Occurrence.id)
        .outerjoin(OccurrenceCopy, OccurrenceCopy.id == target_copy_id(Occurrence.id))
        .where(ranked.c.rank <= settings.agenda_occurrences)
        .order_by(Series.id, Occurrence.scheduled_start, Occurrence.id)).all()
    if not rows:
        return []
    upcoming = [(occurrence, series) for occurrence, series, _, _ in rows]
    records = {o.id: record for o, _, record, _ in rows if record is not None}
    copies = {o.id: copy for o, _, _, copy in rows if copy is not None}
    held = pairs_with_people(session, {series.pair_id for _, series in upcoming
                                       if series.pair_id is not None})
    todo = [(occurrence, series) for occurrence, series in upcoming
            if not is_abandoned(records.get(occurrence.id), copies.get(occurrence.id))]
    # (abandoned: cancelled at the provider; its topics went back to the queue)
    follow_ups = _follow_ups(session, [p for p in held if isinstance(p, Pair)])
    firsts: dict[int, tuple[Occurrence, Series]] = {}
    for occurrence, series in todo:
        assert series.pair_id is not None
        firsts.setdefault(series.pair_id, (occurrence, series))
    histories = _histories(session, firsts)
    touched: set[int] = set()  # pairs whose history this batch changed: read again
    planned: list[int] = []
    for occurrence, series in todo:
        assert series.pair_id is not None
        copy, found = copies.get(occurrence.id), records.get(occurrence.id)
        history = histories[series.pair_id] if series.pair_id not in touched else \
            _histories(session, {series.pair_id: (occurrence, series)})[series.pair_id]
        touched.update({series.pair_id, *([found.pair_id] if found is not None else [])})
        result = _plan(session, occurrence=occurrence, series=series, settings=settings,
                       found=found, follow_ups=follow_ups.get(series.pair_id, []),
                       history=history, needs_write=partial(_needs_write, copy))
        planned.append(result.record.id)
    session.flush()
    del held
    return planned


def _needs_write(copy: OccurrenceCopy | None, digest: str) -> bool:
    """Whether the invite's block lacks the plan `digest` (nothing to write without one)."""
    return copy is not None and copy.description is not None and copy.block_hash != digest


def owed_writes(session: Session, *, settings: Settings, now: datetime,
                among: list[int] | None = None) -> list[int]:
    """Agendas planned but not yet in the invite (`needs_write`, an indexed flag) of upcoming
    occurrences in the horizon, whose writing account may call its provider now (active, not
    asked to wait: an account that needs re-consent or is throttled gets its writes once it
    can take them)."""
    span = window(settings, now)
    query = (
        select(AgendaRecord.id)
        .join(Occurrence, Occurrence.id == AgendaRecord.occurrence_id)
        .join(OccurrenceCopy, and_(OccurrenceCopy.occurrence_id == Occurrence.id,
                                   OccurrenceCopy.removed.is_(False),
                                   OccurrenceCopy.is_organizer_copy.is_(True)))
        .join(Calendar, Calendar.id == OccurrenceCopy.calendar_id)
        .join(Account, Account.id == Calendar.account_id)
        .where(AgendaRecord.needs_write.is_(True), ready_accounts(),
               Occurrence.status == OccurrenceStatus.CONFIRMED,
               Occurrence.scheduled_start >= span.now, Occurrence.scheduled_start < span.until)
        .distinct().order_by(AgendaRecord.id))
    if among is not None:
        query = query.where(AgendaRecord.id.in_(among))
    return list(session.scalars(query))


def plan_touched_pairs(factory: sessionmaker[Session], *, series_ids: set[int],
                       settings: Settings, now: datetime) -> list[int]:
    """After a sync: plan the pairs of the series it touched; the writes to send now.

    The pairs are marked first, in a transaction of their own, so a crash before the plan
    commits leaves them marked and the next reconcile pass plans them."""
    if not series_ids:
        return []
    with factory.begin() as session:
        marks = want_series_plans(session, series_ids)
    if not marks:
        return []
    with factory.begin() as session:
        planned = _plan_marked(session, settings=settings, now=now, marks=marks)
        return owed_writes(session, settings=settings, now=now, among=planned) if planned else []
