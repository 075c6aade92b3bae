"""One sync round for one calendar: incremental by default, full only when the cursor is gone.

The provider's cursor (sync token / delta link) is saved in the same transaction as the last
page's items; a crash mid-round replays the round, which applying idempotently makes safe.
A lease on the calendar row keeps two workers from syncing one calendar at once; the loser
leaves a request behind that the holder honours before it lets go. The lease is short
(`LEASE`, wall-clock time: it measures a worker's liveness, not the product's clock) and
renewed with every page, inside the page's own transaction, by its holder only: a worker
killed mid-sync holds its calendars for one lease period at most, and a worker whose lease was
taken over finds out at its next page and stops before writing it (`LeaseLost`), so two syncs
of one calendar never both write, however long one takes. A failing calendar is retried by the
reconciler with an exponential backoff (`retry_not_before`), not at every reconcile.
"""

from __future__ import annotations

import logging
import statistics
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import CalendarConnector, ChangePage
from connectors.errors import AuthRevoked, ConnectorError, CursorExpired, RateLimited
from service.calendars.models import Calendar
from service.db import chunks, utcnow
from service.pairs.models import (
    Occurrence,
    OccurrenceCopy,
    OccurrenceStatus,
    Series,
    SeriesStatus,
)
from service.pairs.service import has_departed_person
from service.settings import Settings
from service.sync.apply import ApplyResult, CalendarApplier

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=30)  # renewed every page; what a dead worker's calendar waits
MAX_EXTRA_ROUNDS = 2
MAX_REASON = 300  # characters of a failure reason kept on the calendar
FIRST_BACKOFF = timedelta(seconds=30)  # a failing calendar's first wait, doubled per failure
MAX_BACKOFF = timedelta(minutes=15)


class LeaseLost(Exception):
    """Another worker took this calendar's sync over (our lease had run out): stop."""


@dataclass
class SyncLease:
    """One worker's hold on one calendar's sync, renewed as the sync goes."""

    calendar_id: int
    holder: str = field(default_factory=lambda: str(uuid.uuid4()))
    clock: Callable[[], datetime] = utcnow

    def renew(self, session: Session) -> None:
        """Extend the lease in `session`'s transaction, or raise `LeaseLost` (fail closed).

        The UPDATE locks the row until the caller commits, so no worker takes over between
        this check and the writes it guards (PostgreSQL row lock; SQLite has one writer)."""
        kept = session.execute(  # type: ignore[attr-defined]
            update(Calendar)
            .where(Calendar.id == self.calendar_id, Calendar.sync_lease_holder == self.holder)
            .values(sync_lease_until=self.clock() + LEASE)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not kept:
            raise LeaseLost(f"calendar {self.calendar_id}: another worker took the sync over")

    def end_round(self, session: Session) -> bool:
        """In `session`'s transaction (after `renew`): True when a sync was requested while
        the round ran (the request is taken: another round follows); otherwise the lease is
        let go in that same transaction. A request made after it commits finds the lease
        free and syncs itself, so none is lost between the two. One UPDATE does both: its
        CASEs read the row as it was (the request), and it returns the holder it leaves."""
        requested = Calendar.sync_requested_at.is_not(None)
        kept = session.scalar(
            update(Calendar)
            .where(Calendar.id == self.calendar_id, Calendar.sync_lease_holder == self.holder)
            .values(sync_requested_at=None,
                    sync_lease_until=case((requested, Calendar.sync_lease_until), else_=None),
                    sync_lease_holder=case((requested, Calendar.sync_lease_holder), else_=None))
            .returning(Calendar.sync_lease_holder))
        return kept is not None


_told_lock = threading.Lock()
_told: dict[int, str] = {}  # calendar id -> the holder we last said was syncing it


def _say_running_elsewhere(calendar_id: int, holder: str | None) -> None:
    """Once per calendar per lease episode at INFO; repeats of it at DEBUG."""
    with _told_lock:
        first = _told.get(calendar_id) != holder
        _told[calendar_id] = holder or ""
    log.log(logging.INFO if first else logging.DEBUG,
            "calendar %s: sync already running elsewhere; asked it to run again", calendar_id)


def backoff(failures: int) -> timedelta:
    """How long a calendar that failed `failures` times in a row waits: 30 s doubling to 15 min."""
    return min(FIRST_BACKOFF * (2 ** max(failures - 1, 0)), MAX_BACKOFF)


@dataclass
class SyncOutcome:
    """What a sync did, for the caller's follow-up work and the CLI summary."""

    calendar_id: int
    ran: bool = True
    full_sync: bool = False
    cursor_expired: bool = False
    events: int = 0
    skipped: int = 0
    series_touched: set[int] = field(default_factory=set)
    occurrences_changed: set[int] = field(default_factory=set)
    occurrences_cancelled: set[int] = field(default_factory=set)


def sync_calendar(
    factory: sessionmaker[Session],
    *,
    calendar_id: int,
    connector: CalendarConnector,
    settings: Settings,
    now: datetime,
) -> SyncOutcome:
    """Bring one calendar up to date with its provider; safe to run twice or concurrently.
    The provider calls it makes are stored with the page transactions that follow them
    (`service.calendars.calls`), when this thread records calls."""
    outcome = SyncOutcome(calendar_id=calendar_id)
    lease = SyncLease(calendar_id)
    acquired = _acquire_lease(factory, lease=lease, now=now)
    if isinstance(acquired, str):
        _say_running_elsewhere(calendar_id, acquired)
        outcome.ran = False
        return outcome
    held: Calendar | None = acquired  # the first round's row, as the lease UPDATE left it
    released = False
    try:
        for _ in range(1 + MAX_EXTRA_ROUNDS):
            # a round normally ends in the transaction of its last page (`_pages`)
            again = _round(factory, lease=lease, connector=connector, settings=settings,
                           now=now, outcome=outcome, calendar=held)
            held = None  # later rounds read the row again
            if again is None:  # no page carried a cursor
                with factory.begin() as session:
                    lease.renew(session)
                    again = lease.end_round(session)
            if not again:
                released = True
                break
    except LeaseLost:
        log.warning("calendar %s: lease lost mid-sync (this worker was too slow); stopped "
                    "before the next page, the new holder syncs it", calendar_id)
        outcome.ran = False
        return outcome
    except (AuthRevoked, RateLimited):
        raise  # the account is flagged or waits (`accounts.not_before`): not the calendar
    except Exception as err:
        _record_failure(factory, calendar_id=calendar_id, reason=failure_reason(err), now=now,
                        wall=lease.clock())
        raise
    finally:
        if not released:
            with factory.begin() as session:
                _release(session, lease)
    return outcome


def failure_reason(err: BaseException) -> str:
    """One line for people: a connector's own message, else the error's type and text."""
    text = str(err) if isinstance(err, ConnectorError) else f"{type(err).__name__}: {err}"
    first = (text.strip().splitlines() or [type(err).__name__])[0]
    return first[:MAX_REASON]


def _record_failure(factory: sessionmaker[Session], *, calendar_id: int, reason: str,
                    now: datetime, wall: datetime) -> None:
    """Keep why the sync failed and leave the calendar due after its backoff: its sync stays
    requested, so the reconciler sends it again once `retry_not_before` (wall-clock, like
    the lease) has passed, and
    `last_sync_at` still says when it last worked. (The worker's failure log line says it to
    operators; no second line here.)"""
    with factory.begin() as session:
        failures = (session.scalar(select(Calendar.failures)
                                   .where(Calendar.id == calendar_id)) or 0) + 1
        session.execute(update(Calendar).where(Calendar.id == calendar_id)
                        .values(last_error=reason, last_error_at=now, sync_requested_at=now,
                                failures=failures, retry_not_before=wall + backoff(failures)))


def _round(factory: sessionmaker[Session], *, lease: SyncLease, connector: CalendarConnector,
           settings: Settings, now: datetime, outcome: SyncOutcome,
           calendar: Calendar | None = None) -> bool | None:
    """One round (a full one again if the cursor is gone); what `_pages` returns.
    `calendar`: the row just read (detached), else it is read."""
    calendar_id = lease.calendar_id
    for attempt in range(2):
        try:
            return _pages(factory, lease=lease, connector=connector, settings=settings,
                          now=now, outcome=outcome,
                          calendar=None if attempt else calendar)
        except CursorExpired:
            if attempt:
                raise
            log.warning("calendar %s: provider says the cursor is gone; full resync",
                        calendar_id)
            outcome.cursor_expired = True
            with factory.begin() as session:
                lease.renew(session)
                cal = session.get(Calendar, calendar_id)
                assert cal is not None
                cal.cursor = None
    raise AssertionError("unreachable: the second attempt returns or raises")


def _pages(factory: sessionmaker[Session], *, lease: SyncLease, connector: CalendarConnector,
           settings: Settings, now: datetime, outcome: SyncOutcome,
           calendar: Calendar | None = None) -> bool | None:
    """Apply the round's pages, each in its own transaction. The page with the cursor ends
    the round in its transaction (`SyncLease.end_round`): whether another round was asked
    for is returned, None when no page carried a cursor. `calendar`: as in `_round`."""
    calendar_id = lease.calendar_id
    again: bool | None = None
    with factory() as session:
        if calendar is not None:
            session.add(calendar)  # detached, loaded: no SELECT
        cal = calendar if calendar is not None else session.get(Calendar, calendar_id)
        if cal is None:
            raise LookupError(f"calendar {calendar_id} does not exist")
        cursor = cal.cursor
        if cursor and connector.cursor_is_stale(cursor):
            log.info("calendar %s: saved cursor points at another endpoint than the "
                     "configured one; full resync", calendar_id)
            cursor = None
        if cursor and cal.window_end and cal.window_end < now + timedelta(
                days=settings.sync_lookahead_days / 2):
            # a cursor follows the window its round was opened with (the connector contract)
            log.info("calendar %s: sync window runs out; starting a new round", calendar_id)
            cursor = None
        window_start = now - timedelta(days=settings.sync_lookback_days)
        window_end = now + timedelta(days=settings.sync_lookahead_days)
        if cursor:
            window_start = cal.window_start or window_start
            window_end = cal.window_end or window_end
        provider_calendar_id = cal.provider_calendar_id
        full = cursor is None
        session.commit()  # never hold a transaction (on SQLite: the write lock) across HTTP
        outcome.full_sync = outcome.full_sync or full
        result = ApplyResult()
        pages = connector.list_changes(provider_calendar_id, cursor, window_start=window_start,
                                       window_end=window_end)
        for page in pages:
            lease.renew(session)  # first, in the page's transaction: a lost lease writes nothing
            apply_page(session, cal, page, result=result, now=now)
            if page.cursor is not None:
                if full:
                    _sweep_unseen(session, cal, result, window_start, window_end, now)
                cal.cursor = page.cursor
                cal.window_start, cal.window_end = window_start, window_end
                cal.last_sync_at = now
                cal.last_error = cal.last_error_at = cal.retry_not_before = None
                cal.failures = 0
                if full:
                    cal.last_full_sync_at = now
                # settled with the page that saves the cursor: a failed settle (a deadlock)
                # leaves the cursor where it was, so the retry reads the pages again and
                # settles every series they touch, not only what a lost attempt remembered
                settle_series(session, result.series_touched, now)
            if page.cursor is not None:
                again = lease.end_round(session)
            session.commit()
    outcome.events += result.events
    outcome.skipped += result.skipped
    outcome.series_touched |= result.series_touched
    outcome.occurrences_changed |= result.occurrences_changed
    outcome.occurrences_cancelled |= result.occurrences_cancelled
    return again


def apply_page(session: Session, calendar: Calendar, page: ChangePage, *, result: ApplyResult,
               now: datetime) -> None:
    """Apply one page of provider changes (skipped items quarantined, the rest applied).

    A connector lists only what belongs to the round's window (`CalendarConnector.list_changes`),
    so every event is applied."""
    applier = CalendarApplier(session, calendar, now=now)
    applier.result = result
    for item in page.skipped:
        log.warning("calendar %s: skipped provider item %s: %s", calendar.id, item.event_id,
                    item.reason)
        applier.quarantine(item.event_id, item.reason)
    applier.apply_batch(page.events)


def _sweep_unseen(session: Session, cal: Calendar, result: ApplyResult, start: datetime,
                  end: datetime, now: datetime) -> None:
    """After a full round, copies in the window the provider no longer lists are gone.

    Their ids are read first and only the unseen ones loaded: after a first sync every
    copy in the window was just seen, and an ORM object per copy cost more than the query."""
    in_window = session.scalars(
        select(OccurrenceCopy.id).join(Occurrence, Occurrence.id == OccurrenceCopy.occurrence_id)
        .where(OccurrenceCopy.calendar_id == cal.id, OccurrenceCopy.removed.is_(False),
               Occurrence.scheduled_start >= start, Occurrence.scheduled_start < end))
    unseen = sorted(set(in_window) - result.seen_copy_ids)
    stale = [copy for chunk in chunks(unseen)
             for copy in session.scalars(select(OccurrenceCopy).where(
                 OccurrenceCopy.id.in_(chunk)).order_by(OccurrenceCopy.id))]
    for copy in stale:
        copy.removed = True
        live = session.scalar(select(OccurrenceCopy.id).where(
            OccurrenceCopy.occurrence_id == copy.occurrence_id,
            OccurrenceCopy.removed.is_(False)))
        occurrence = session.get(Occurrence, copy.occurrence_id)
        if live is None and occurrence and occurrence.status != OccurrenceStatus.CANCELLED:
            occurrence.status = OccurrenceStatus.CANCELLED
            occurrence.cancelled_at = occurrence.dropped_at = now
            result.occurrences_cancelled.add(occurrence.id)
            result.occurrences_changed.add(occurrence.id)
            result.series_touched.add(occurrence.series_id)


def settle_series(session: Session, series_ids: Iterable[int], now: datetime) -> None:
    """Cadence from the spacing of original starts; a series with nothing ahead has ended.

    The manager's and the report's syncs settle overlapping series at once: the rows are
    locked in id order first (SELECT ... FOR UPDATE on PostgreSQL; SQLite has one writer
    anyway), so two workers never wait on each other in a cycle, and each reads the
    occurrences only once it holds the lock, so the last one to settle sees everything.
    """
    ids = sorted(set(series_ids))
    if not ids:
        return
    locked = session.scalars(select(Series).where(Series.id.in_(ids))
                             .order_by(Series.id).with_for_update()
                             .execution_options(populate_existing=True)).all()
    occurrences: dict[int, list[tuple[datetime, str]]] = {series_id: [] for series_id in ids}
    for series_id, start, status in session.execute(  # all of them at once, once locked
            select(Occurrence.series_id, Occurrence.original_start, Occurrence.status)
            .where(Occurrence.series_id.in_(ids))
            .order_by(Occurrence.series_id, Occurrence.original_start)):
        occurrences[series_id].append((start, status))
    for series in locked:
        rows = occurrences[series.id]
        starts = [r[0] for r in rows]
        gaps = [round((b - a).total_seconds() / 86400)
                for a, b in zip(starts, starts[1:], strict=False)]
        if gaps:
            series.cadence_days = int(statistics.median(gaps))
        ahead = [r for r in rows if r[0] >= now]
        if ahead and all(r[1] == OccurrenceStatus.CANCELLED for r in ahead):
            if series.status != SeriesStatus.ENDED:
                series.status, series.ended_at = SeriesStatus.ENDED, now
        elif any(r[1] == OccurrenceStatus.CONFIRMED for r in ahead) \
                and (series.status, series.ended_at) != (SeriesStatus.ACTIVE, None) \
                and not has_departed_person(session, series):
            # a series ended because one of its people left the directory stays ended
            series.status, series.ended_at = SeriesStatus.ACTIVE, None


def _acquire_lease(factory: sessionmaker[Session], *, lease: SyncLease,
                   now: datetime) -> Calendar | str:
    """Take the calendar's lease when free or expired (its holder died or stalled): the
    calendar's row as the UPDATE that took it returns it (the first round reads it from
    there). Otherwise leave a sync request for the holder and return who holds it."""
    wall = lease.clock()
    with factory.begin() as session:
        won = session.scalars(
            update(Calendar)
            .where(Calendar.id == lease.calendar_id,
                   or_(Calendar.sync_lease_until.is_(None), Calendar.sync_lease_until < wall))
            .values(sync_lease_until=wall + LEASE, sync_lease_holder=lease.holder,
                    sync_requested_at=None)
            .returning(Calendar)).first()
        if won is not None:
            return won
        session.execute(update(Calendar).where(Calendar.id == lease.calendar_id)
                        .values(sync_requested_at=now))
        holder = session.scalar(select(Calendar.sync_lease_holder)
                                .where(Calendar.id == lease.calendar_id))
    return holder or "?"


def _release(session: Session, lease: SyncLease) -> None:
    """Let go, only if the lease is still ours (a taken-over lease is the new holder's)."""
    session.execute(update(Calendar)
                    .where(Calendar.id == lease.calendar_id,
                           Calendar.sync_lease_holder == lease.holder)
                    .values(sync_lease_until=None, sync_lease_holder=None))
