"""Outcome service functions: arm the grace period, decide checks, alert once, list, mute.

The database decides: a check is due when `Occurrence.check_due_at <= now` and no outcome is
stored. The delayed `check_occurrence` message and the reconciler both call `check_occurrence`
below, which is idempotent; the alert is an outbox row keyed `alert:occ:<id>`, written in the
same transaction as the outcome, so deciding and queueing happen together or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, TextualSelect, and_, or_, select, text, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from connectors.base import BusyInterval, FreeBusy
from connectors.errors import ConnectorError, RateLimited
from service.accounts.models import Account, AccountStatus
from service.accounts.pace import ACTING_COLUMNS, ActingAccount, acting_account
from service.db import chunks
from service.email.models import OutboxMessage, OutboxStatus
from service.email.outbox import enqueue
from service.outcomes.alerts import AlertFacts, quiet_until, render_alert
from service.outcomes.slots import Slot, free_slots, local_day, search_span
from service.outcomes.state import DECLINED, DROPS, Decision, Facts, arm, decide
from service.pairs.models import (
    UNARMED_DROP,
    AdHocMeeting,
    Occurrence,
    OccurrenceStatus,
    Outcome,
    Pair,
    Series,
    SeriesStatus,
)
from service.people.models import Person
from service.people.names import display_name, name_or_address
from service.people.zones import person_zone
from service.settings import Settings

log = logging.getLogger(__name__)

ALERT_KIND = "alert"
SLOT_LEAD = timedelta(hours=1)  # no slot sooner than this after the alert is written
REVISIT_DAYS = 21  # decided drops are watched this long for a late reschedule

FreeBusyReader = Callable[[list[str], datetime, datetime], FreeBusy]




def alert_key(occurrence_id: int) -> str:
    """The outbox dedupe key of the one alert about an occurrence."""
    return f"alert:occ:{occurrence_id}"


def grace_of(settings: Settings) -> timedelta:
    """The grace period after a drop, before anyone is told."""
    return timedelta(hours=settings.cancellation_grace_hours)


# -- reading facts ---------------------------------------------------------------------


@dataclass
class _Context:
    occurrence: Occurrence
    series: Series
    pair: Pair
    manager: Person
    report: Person


def occurrence_context(session: Session, occurrence_id: int) -> _Context | None:
    """The occurrence with its series, pair and people; None when it is not a 1:1's."""
    occurrence = session.get(Occurrence, occurrence_id)
    if occurrence is None:
        return None
    series = session.get(Series, occurrence.series_id)
    if series is None or series.pair_id is None:
        return None
    pair = session.get(Pair, series.pair_id)
    if pair is None:
        return None
    manager, report = session.get(Person, pair.manager_id), session.get(Person, pair.report_id)
    if manager is None or report is None:
        return None
    return _Context(occurrence, series, pair, manager, report)


def _window(session: Session, ctx: _Context, settings: Settings) -> tuple[datetime, datetime]:
    """Where a replacement counts: by default after the previous regular occurrence and
    before the next one (or `reschedule_window_days` either side, when set)."""
    occ = ctx.occurrence
    days = settings.reschedule_window_days
    if days:
        return occ.original_start - timedelta(days=days), occ.original_start + timedelta(days=days)
    cadence = timedelta(days=ctx.series.cadence_days or 7)
    before = session.scalar(select(Occurrence.original_start).where(
        Occurrence.series_id == occ.series_id, Occurrence.original_start < occ.original_start)
        .order_by(Occurrence.original_start.desc()).limit(1))
    after = session.scalar(select(Occurrence.original_start).where(
        Occurrence.series_id == occ.series_id, Occurrence.original_start > occ.original_start)
        .order_by(Occurrence.original_start).limit(1))
    duration = occ.scheduled_end - occ.scheduled_start
    start = (before or occ.original_start - cadence) + duration
    return start, after or occ.original_start + cadence


def _replacement(session: Session, ctx: _Context, settings: Settings) -> bool:
    """True when the two booked a separate meeting for the dropped one: inside the
    reschedule window, and booked (or moved there) after the drop. A meeting of the two
    booked before the drop (a standing coffee) was not made for it."""
    start, end = _window(session, ctx, settings)
    key = "|".join(sorted([ctx.manager.email.lower(), ctx.report.email.lower()]))
    query = select(AdHocMeeting.id).where(
        AdHocMeeting.people_key == key, AdHocMeeting.cancelled.is_(False),
        AdHocMeeting.start >= start, AdHocMeeting.start < end)
    dropped = ctx.occurrence.dropped_at
    if dropped is not None:  # unknown only for drops stored before this was recorded
        query = query.where(or_(AdHocMeeting.booked_at >= dropped,
                                AdHocMeeting.moved_at >= dropped))
    return session.scalar(query.limit(1)) is not None


def _series_over(session: Session, ctx: _Context) -> bool:
    """True when the series was deleted, or cut short before this occurrence: nothing of it
    takes place from this occurrence on."""
    if ctx.series.status == SeriesStatus.ENDED:
        return True
    later = session.scalar(select(Occurrence.id).where(
        Occurrence.series_id == ctx.series.id,
        Occurrence.original_start > ctx.occurrence.original_start,
        Occurrence.status == OccurrenceStatus.CONFIRMED).limit(1))
    return later is None


def _row_facts(occ: Occurrence, **more: Any) -> Facts:
    """The facts the occurrence row alone tells; `more` adds what needs its series or pair.

    Arming a check and settling a meeting that is over read nothing else (see `arm` and the
    SCHEDULED branch of `decide`), so they build no context."""
    return Facts(
        original_start=occ.original_start, scheduled_start=occ.scheduled_start,
        scheduled_end=occ.scheduled_end,
        cancelled=occ.status == OccurrenceStatus.CANCELLED,
        manager_response=occ.manager_response, report_response=occ.report_response,
        outcome=Outcome(occ.outcome) if occ.outcome else None,
        check_due_at=occ.check_due_at, **more)


def _facts(session: Session, ctx: _Context, settings: Settings) -> Facts:
    return _row_facts(ctx.occurrence, series_ended=_series_over(session, ctx),
                      replacement=_replacement(session, ctx, settings), muted=ctx.pair.muted)


def _store(session: Session, occ: Occurrence, decision: Decision, *, now: datetime) -> None:
    """Write a decision onto the occurrence (and quiet a pending alert it made untrue)."""
    if decision.check_due_at is not None:
        occ.check_due_at = decision.check_due_at
    if decision.clear_check:
        occ.check_due_at = None
    if decision.outcome is not None:
        occ.outcome = decision.outcome.value
        occ.outcome_decided_at = now
        log.info("occurrence %s: %s (%s)", occ.id, decision.outcome, decision.reason)
        if decision.outcome is Outcome.RESCHEDULED:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.dedupe_key == alert_key(occ.id),
                       OutboxMessage.status == OutboxStatus.PENDING.value)
                .values(status=OutboxStatus.SUPPRESSED.value,
                        last_error="rescheduled before the alert went out"))


# -- the grace period ------------------------------------------------------------------


def _batches(ids: Iterable[int]) -> Iterator[Sequence[int]]:
    return chunks(sorted(set(ids)))


def _drop_shown() -> ColumnElement[bool]:
    """SQL: the calendar shows a drop (cancelled, or declined by one of the two)."""
    return or_(Occurrence.status == OccurrenceStatus.CANCELLED.value,
               Occurrence.manager_response == DECLINED, Occurrence.report_response == DECLINED)


def _of_pairs() -> Select[Occurrence]:
    """Occurrences of 1:1 series (a series with a pair)."""
    return (select(Occurrence).join(Series, Series.id == Occurrence.series_id)
            .where(Series.pair_id.is_not(None)))


def _unarmed_drops(session: Session) -> TextualSelect:
    """The ids in the partial index `ix_occurrences_unarmed_drops`, read through it.

    Its condition is repeated verbatim: SQLite uses a partial index only for a query whose
    WHERE holds the index's terms as written, with literals, not bound parameters
    (sqlite.org/partialindex.html, "Queries Using Partial Indexes"). SQLite without ANALYZE
    statistics would still prefer the wider (outcome, check_due_at, ...) index, so it is
    named (sqlite.org/lang_indexedby.html); PostgreSQL's planner picks the small index from
    the statistics autovacuum keeps."""
    hint = (" INDEXED BY ix_occurrences_unarmed_drops"
            if session.get_bind().dialect.name == "sqlite" else "")
    return text(f"SELECT id FROM occurrences{hint} WHERE {UNARMED_DROP}").columns(
        Occurrence.id)


def arm_checks(session: Session, *, settings: Settings, now: datetime,
               occurrence_ids: Iterable[int] | None = None) -> list[tuple[int, datetime]]:
    """Start (or stop) the grace period of dropped 1:1 occurrences; returns (id, due) armed.

    Without `occurrence_ids` every undecided drop without a check is armed, which is how the
    reconciler repairs a sync whose follow-up was lost: one query on a partial index that
    holds only such drops, so a pass with nothing to arm reads no other row. With ids (a
    sync's follow-up), only the ones that show a drop or carry a check are read, in batches.
    """
    undecided = Occurrence.outcome.is_(None)
    if occurrence_ids is None:
        queries = [_of_pairs().where(Occurrence.id.in_(_unarmed_drops(session)))]
    else:
        # only drops, and checks that a confirmation may stop: the rest has nothing to arm
        queries = [_of_pairs().where(Occurrence.id.in_(chunk), undecided, or_(
            Occurrence.check_due_at.is_not(None), _drop_shown()))
            for chunk in _batches(occurrence_ids)]
    armed: list[tuple[int, datetime]] = []
    grace = grace_of(settings)
    for query in queries:
        for occ in session.scalars(query).all():
            decision = arm(_row_facts(occ), noticed_at=occ.cancelled_at or now, grace=grace)
            if decision.changes_anything:
                _store(session, occ, decision, now=now)
                if decision.check_due_at is not None:
                    armed.append((occ.id, decision.check_due_at))
    return armed


def due_checks(session: Session, *, now: datetime) -> list[int]:
    """Occurrences whose grace period is over and whose outcome is still open."""
    return list(session.scalars(
        select(Occurrence.id).where(Occurrence.check_due_at <= now,
                                    Occurrence.outcome.is_(None))
        .order_by(Occurrence.check_due_at)))


def settle_ended(session: Session, *, settings: Settings, now: datetime) -> int:
    """Decide HELD / MOVED / UNKNOWN for 1:1 occurrences that are over; returns how many.

    One query on (outcome, check_due_at, scheduled_end); the row alone decides."""
    rows = session.scalars(_of_pairs().where(
        Occurrence.outcome.is_(None), Occurrence.check_due_at.is_(None),
        Occurrence.scheduled_end <= now,
        Occurrence.status == OccurrenceStatus.CONFIRMED.value)).all()
    decided = 0
    for occ in rows:
        decision = decide(_row_facts(occ), now=now, grace=grace_of(settings))
        if decision.outcome is not None and not decision.alert:
            _store(session, occ, decision, now=now)
            decided += 1
        elif decision.check_due_at is not None:  # a drop the sync follow-up missed
            _store(session, occ, decision, now=now)
    return decided


def _recent_drops_maybe_rescheduled(now: datetime) -> Select[int]:
    """Recent drops that are put back on the calendar, or that a meeting of the two booked
    (or moved) since the drop may replace; `_replacement` then checks its window. People's
    addresses are stored lower-cased, as the one-off meetings' people keys are."""
    manager, report = aliased(Person), aliased(Person)
    booked_since = or_(Occurrence.dropped_at.is_(None),
                       AdHocMeeting.booked_at >= Occurrence.dropped_at,
                       AdHocMeeting.moved_at >= Occurrence.dropped_at)
    meeting = select(AdHocMeeting.id).where(
        AdHocMeeting.people_key.in_([manager.email + "|" + report.email,
                                     report.email + "|" + manager.email]),
        AdHocMeeting.cancelled.is_(False), booked_since).exists()
    put_back = and_(Occurrence.status == OccurrenceStatus.CONFIRMED.value,
                    or_(Occurrence.manager_response.is_(None),
                        Occurrence.manager_response != DECLINED),
                    or_(Occurrence.report_response.is_(None),
                        Occurrence.report_response != DECLINED))
    return (select(Occurrence.id).join(Series, Series.id == Occurrence.series_id)
            .join(Pair, Pair.id == Series.pair_id)
            .join(manager, manager.id == Pair.manager_id)
            .join(report, report.id == Pair.report_id)
            .where(Occurrence.outcome.in_([o.value for o in DROPS]),
                   Occurrence.original_start >= now - timedelta(days=REVISIT_DAYS),
                   or_(put_back, meeting)))


def revisit_drops(session: Session, *, settings: Settings, now: datetime,
                  occurrence_ids: Iterable[int] | None = None) -> list[int]:
    """Turn recent drops into RESCHEDULED when a replacement showed up (no second alert).

    The reconciler's pass reads only the drops a replacement may have turned up for (one
    query on (outcome, original_start)); a sync's follow-up, the drops it touched."""
    if occurrence_ids is None:
        queries = [_recent_drops_maybe_rescheduled(now)]
    else:
        drops = select(Occurrence.id).where(Occurrence.outcome.in_([o.value for o in DROPS]))
        queries = [drops.where(Occurrence.id.in_(chunk)) for chunk in _batches(occurrence_ids)]
    changed = []
    for query in queries:
        for occurrence_id in session.scalars(query).all():
            ctx = occurrence_context(session, occurrence_id)
            if ctx is None:
                continue
            decision = decide(_facts(session, ctx, settings), now=now, grace=grace_of(settings))
            if decision.outcome is Outcome.RESCHEDULED:
                _store(session, ctx.occurrence, decision, now=now)
                changed.append(occurrence_id)
    return changed


# -- the check and the alert -----------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """What one check did: the outcome it stored (if any) and the alert row to deliver."""

    occurrence_id: int
    outcome: Outcome | None
    outbox_id: int | None = None
    reason: str = ""


def alert_account(session: Session, *, occurrence_id: int) -> ActingAccount | None:
    """The account whose connector reads free/busy (with its pace): the manager's, else the
    report's."""
    ctx = occurrence_context(session, occurrence_id)
    if ctx is None:
        return None
    for person in (ctx.manager, ctx.report):
        account = acting_account(session.execute(select(*ACTING_COLUMNS).where(
            Account.email == person.email, Account.status == AccountStatus.ACTIVE)
            .order_by(Account.id).limit(1)).first())
        if account is not None:
            return account
    return None


def check_occurrence(
    factory: sessionmaker[Session],
    *,
    occurrence_id: int,
    settings: Settings,
    now: datetime,
    free_busy: FreeBusyReader | None = None,
) -> CheckResult:
    """Decide one occurrence's outcome; when it is a fresh drop, queue the one alert.

    Idempotent: a second call finds the outcome stored (or the alert row by its key) and
    does nothing. Free/busy is read between two short transactions, never inside one, and
    the decision is taken again afterwards, so a reschedule that arrived meanwhile wins.
    """
    grace = grace_of(settings)
    with factory.begin() as session:
        ctx = occurrence_context(session, occurrence_id)
        if ctx is None:
            return CheckResult(occurrence_id, None, reason="not a 1:1 occurrence")
        decision = decide(_facts(session, ctx, settings), now=now, grace=grace)
        if not decision.alert:
            if decision.changes_anything:
                _store(session, ctx.occurrence, decision, now=now)
            existing = session.scalar(select(OutboxMessage.id).where(
                OutboxMessage.dedupe_key == alert_key(occurrence_id)))
            stored = ctx.occurrence.outcome
            return CheckResult(occurrence_id, Outcome(stored) if stored else None,
                               outbox_id=existing, reason=decision.reason)
        emails = [ctx.manager.email.lower(), ctx.report.email.lower()]
        occ = ctx.occurrence
        duration = (occ.scheduled_end - occ.scheduled_start) or timedelta(minutes=30)
        zones = {ctx.manager.email.lower(): person_zone(ctx.manager),
                 ctx.report.email.lower(): person_zone(ctx.report)}
        span = search_span(now=now, lead=SLOT_LEAD, dropped_start=occ.original_start,
                           dropped_end=occ.original_start + duration)
        blocked = _blocked(session, ctx, span=span, duration=duration)

    slots, checked, unreadable = _find_slots(
        free_busy, emails=emails, zones=zones, span=span, duration=duration,
        blocked=blocked, settings=settings)

    with factory.begin() as session:
        ctx = occurrence_context(session, occurrence_id)
        if ctx is None:
            return CheckResult(occurrence_id, None, reason="not a 1:1 occurrence any more")
        decision = decide(_facts(session, ctx, settings), now=now, grace=grace)
        if not decision.alert:  # something changed while we read free/busy
            if decision.changes_anything:
                _store(session, ctx.occurrence, decision, now=now)
            return CheckResult(occurrence_id, decision.outcome, reason=decision.reason)
        assert decision.outcome is not None
        row = _queue_alert(session, ctx, decision.outcome, slots=slots, checked=checked,
                           unreadable=unreadable, settings=settings, now=now)
        _store(session, ctx.occurrence, decision, now=now)
        return CheckResult(occurrence_id, decision.outcome, outbox_id=row.id,
                           reason=decision.reason)


def _blocked(session: Session, ctx: _Context, *, span: tuple[datetime, datetime],
             duration: timedelta) -> list[BusyInterval]:
    """Times never to offer: the dropped occurrence's own time (where it was and where it
    was moved to), and whole days (the manager's) that already hold a meeting of the two."""
    occ = ctx.occurrence
    blocked = [BusyInterval(occ.original_start, occ.original_start + duration),
               BusyInterval(occ.scheduled_start, occ.scheduled_end)]
    tz = person_zone(ctx.manager)
    start, end = span[0] - timedelta(days=1), span[1] + timedelta(days=1)
    series_ids = select(Series.id).where(Series.pair_id == ctx.pair.id)
    meetings = session.scalars(select(Occurrence.scheduled_start).where(
        Occurrence.series_id.in_(series_ids), Occurrence.id != occ.id,
        Occurrence.status == OccurrenceStatus.CONFIRMED,
        Occurrence.scheduled_start >= start, Occurrence.scheduled_start < end)).all()
    key = "|".join(sorted([ctx.manager.email.lower(), ctx.report.email.lower()]))
    adhoc = session.scalars(select(AdHocMeeting.start).where(
        AdHocMeeting.people_key == key, AdHocMeeting.cancelled.is_(False),
        AdHocMeeting.start >= start, AdHocMeeting.start < end)).all()
    blocked += [local_day(moment, tz) for moment in [*meetings, *adhoc]]
    return blocked


def _find_slots(free_busy: FreeBusyReader | None, *, emails: list[str],
                zones: dict[str, Any], span: tuple[datetime, datetime], duration: timedelta,
                blocked: list[BusyInterval],
                settings: Settings) -> tuple[list[Slot], bool, frozenset[str]]:
    """Free slots of both in `span`, whether any calendar was read, and whose could not be.

    Someone whose calendar could not be read is left out of the busy check (their working
    hours still count), and the alert says so instead of calling them free.
    """
    if free_busy is None:
        return [], False, frozenset()
    start, end = span
    try:
        answer = free_busy(emails, start, end)
    except RateLimited:
        # the alert is due now; waiting out the throttling would send it late, so it goes
        # without slots and says that neither calendar could be read
        log.info("free/busy throttled for an alert; sending it without suggestions")
        return [], False, frozenset(emails)
    except ConnectorError as err:
        log.warning("free/busy unavailable for an alert: %s", err.__class__.__name__)
        return [], False, frozenset()
    busy = {email.lower(): intervals for email, intervals in answer.busy.items()}
    unreadable = frozenset(e for e in emails if e in answer.unreadable or e not in busy)
    if unreadable == frozenset(emails):
        return [], False, unreadable
    return free_slots(busy, zones=zones, start=start, end=end, duration=duration,
                      working_hours=settings.working_hours,
                      blocked=blocked), True, unreadable


def _name(person: Person) -> str:
    return name_or_address(person, person.email)


def _queue_alert(session: Session, ctx: _Context, outcome: Outcome, *, slots: list[Slot],
                 checked: bool, unreadable: frozenset[str], settings: Settings,
                 now: datetime) -> OutboxMessage:
    manager_zone = person_zone(ctx.manager)
    dropper = ctx.report if outcome is Outcome.DECLINED_BY_REPORT else ctx.manager
    provider = session.scalar(select(Account.provider).where(
        Account.email == ctx.manager.email).order_by(Account.id).limit(1))
    occ = ctx.occurrence
    unseen = tuple("you" if person is ctx.manager else _name(person)
                   for person in (ctx.manager, ctx.report)
                   if person.email.lower() in unreadable)
    facts = AlertFacts(
        occurrence_id=occ.id, title=ctx.series.title or "1:1",
        manager_name=display_name(ctx.manager),
        manager_email=ctx.manager.email, report_name=_name(ctx.report),
        report_email=ctx.report.email,
        dropped_by="You" if dropper is ctx.manager else _name(dropper), outcome=outcome,
        original_start=occ.original_start,
        duration_minutes=max(int((occ.scheduled_end - occ.scheduled_start).total_seconds()
                                 // 60), 1),
        manager_zone=manager_zone, provider=provider, slots=tuple(slots), slots_checked=checked,
        unseen=unseen)
    not_before = quiet_until(now, quiet_hours=settings.quiet_hours, tz=manager_zone)
    return enqueue(session, kind=ALERT_KIND, dedupe_key=alert_key(occ.id),
                   recipient=ctx.manager.email, rendered=render_alert(facts),
                   cc=[ctx.report.email] if settings.alert_report_too else None,
                   not_before=not_before)


# -- listing and controls --------------------------------------------------------------
