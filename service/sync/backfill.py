"""The backfill: the normal sync path over a wider window, for history older than the sync's.

`rapport metrics backfill --since DATE` reads each active calendar's events back to DATE
through its connector and applies every page as the sync does (committed per page: no
transaction across provider HTTP), leaving the calendar's own cursor and window alone so
incremental sync carries on unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.accounts.models import Account, AccountStatus
from service.calendars.models import Calendar
from service.pairs.models import Occurrence, Outcome, Series
from service.sync.apply import ApplyResult
from service.sync.calendar_sync import apply_page, settle_series

log = logging.getLogger(__name__)


@dataclass
class BackfillResult:
    """What a backfill read and recorded."""

    calendars: int = 0
    events: int = 0
    skipped: int = 0
    outcomes_set: int = 0
    failed_calendars: tuple[str, ...] = ()


def historical_outcome(occurrence: Occurrence) -> Outcome:
    """A conservative outcome for an old occurrence the outcomes module never judged.

    A confirmed occurrence that a side declined counts as declined by that side; otherwise
    a confirmed one counts as held. A cancelled one is `unknown`: without the
    reschedule search of that time we cannot tell a reschedule from a drop, and guessing
    "dropped" would blame a manager for history we cannot see.
    """
    if occurrence.status == "cancelled":
        return Outcome.UNKNOWN
    if (occurrence.report_response or "").lower() == "declined":
        return Outcome.DECLINED_BY_REPORT
    if (occurrence.manager_response or "").lower() == "declined":
        return Outcome.DECLINED_BY_MANAGER
    return Outcome.HELD


def backfill(factory: sessionmaker[Session], *, connectors: Any, since: date,
             now: datetime, grace: timedelta = timedelta(days=14)) -> BackfillResult:
    """Read past occurrences from the providers back to `since`, and judge the old ones.

    Goes through the normal sync path with a wider window: each active calendar's
    connector `list_changes(cursor=None, window_start=since, window_end=now)`, every page
    applied by `CalendarApplier` and committed (no transaction across HTTP). The calendar's
    own sync cursor and window are left alone, so incremental sync carries on unchanged.
    Outcomes are the outcomes module's job; only occurrences that ended more than `grace`
    ago and that it still left undecided get `historical_outcome`, so recent ones keep their
    proper reschedule check. (The metrics' weekly snapshots are the caller's next step.)
    """
    result = BackfillResult()
    window_start = datetime(since.year, since.month, since.day, tzinfo=UTC)
    with factory() as session:
        calendars = [(cid, pcid) for cid, pcid in session.execute(
            select(Calendar.id, Calendar.provider_calendar_id)
            .join(Account, Account.id == Calendar.account_id)
            .where(Account.status == AccountStatus.ACTIVE).order_by(Calendar.id))]
    failed = []
    touched: set[int] = set()
    for calendar_id, provider_calendar_id in calendars:
        connector = connectors.for_calendar(calendar_id)
        applied = ApplyResult()
        try:
            pages = connector.list_changes(provider_calendar_id, None,
                                           window_start=window_start, window_end=now)
            for page in pages:
                with factory() as session:
                    cal = session.get(Calendar, calendar_id)
                    assert cal is not None
                    apply_page(session, cal, page, result=applied, now=now)
                    session.commit()
        except Exception as err:  # noqa: BLE001 - one calendar failing must not stop the rest
            log.warning("backfill: calendar %s failed: %s", calendar_id,
                        err.__class__.__name__)
            failed.append(str(calendar_id))
            continue
        result.calendars += 1
        result.events += applied.events
        result.skipped += applied.skipped
        touched |= applied.series_touched
    with factory.begin() as session:
        settle_series(session, touched, now)
        undecided = session.scalars(
            select(Occurrence).join(Series, Series.id == Occurrence.series_id)
            .where(Series.pair_id.is_not(None), Occurrence.outcome.is_(None),
                   Occurrence.original_start >= window_start,
                   Occurrence.scheduled_end < now - grace))
        for occurrence in undecided:
            occurrence.outcome = historical_outcome(occurrence)
            occurrence.outcome_decided_at = now
            result.outcomes_set += 1
    result.failed_calendars = tuple(failed)
    return result
