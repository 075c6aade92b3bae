"""The sync lease: short, renewed with every page, taken over once its holder stops renewing,
and lost fail-closed (issue 11, item 1). A worker that "died" is a lease row whose last
renewal is older than `LEASE`; a worker that was overtaken is a lease row another holder
wrote between two of its pages."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from office import MAYA, Office
from sqlalchemy import event, func, select, update

from connectors.base import ChangePage
from sandbox.memory import MemoryConnector
from service.calendars.models import Calendar
from service.db import utcnow
from service.pairs.models import OccurrenceCopy
from service.sync.calendar_sync import LEASE, backoff
from tests.statements import statements


class BetweenPages(MemoryConnector):
    """A memory connector that runs `between(number)` before it hands out page `number`
    (the previous page is committed by then)."""

    def __init__(self, office: Office, email: str,
                 between: Callable[[int], None]) -> None:
        super().__init__(office.world, email, page_size=10, observer=office.calls.append)
        self.between = between

    def list_changes(self, calendar_id: str, cursor: str | None, *, window_start: datetime,
                     window_end: datetime) -> Iterator[ChangePage]:
        pages = super().list_changes(calendar_id, cursor, window_start=window_start,
                                     window_end=window_end)
        for number, page in enumerate(pages):
            self.between(number)
            yield page


def hold(office: Office, *, holder: str, until: datetime) -> None:
    """Write the lease row as another worker's last renewal left it."""
    with office.factory.begin() as session:
        session.execute(update(Calendar).where(Calendar.id == office.calendars[MAYA])
                        .values(sync_lease_holder=holder, sync_lease_until=until))


def calendar(office: Office) -> Calendar:
    with office.factory() as session:
        row = session.get(Calendar, office.calendars[MAYA])
        assert row is not None
        session.expunge(row)
        return row


def copies(office: Office) -> int:
    with office.factory() as session:
        return session.scalar(select(func.count()).select_from(OccurrenceCopy)) or 0


def test_a_lease_whose_holder_stopped_renewing_is_taken_over(office: Office) -> None:
    office.connect(MAYA)
    # the dead worker's last renewal was a little more than one lease period ago
    hold(office, holder="dead-worker", until=utcnow() - timedelta(seconds=1))

    outcome = office.sync(MAYA)

    assert outcome.ran and outcome.full_sync
    row = calendar(office)
    assert row.cursor is not None and copies(office) > 0
    assert row.sync_lease_holder is None and row.sync_lease_until is None  # released


def test_a_lease_renewed_within_its_period_is_left_to_its_holder(office: Office) -> None:
    office.connect(MAYA)
    hold(office, holder="live-worker", until=utcnow() + LEASE)

    outcome = office.sync(MAYA)

    assert not outcome.ran and office.calls == []
    row = calendar(office)
    assert row.sync_lease_holder == "live-worker"
    assert row.sync_requested_at == office.now  # the holder runs once more before letting go


def test_a_sync_renews_its_lease_with_every_page_and_keeps_it_short(office: Office) -> None:
    office.connect(MAYA)
    seen: list[tuple[str | None, datetime | None]] = []

    def note(_: int) -> None:
        row = calendar(office)
        seen.append((row.sync_lease_holder, row.sync_lease_until))

    office.sync(MAYA, BetweenPages(office, MAYA, note))

    assert len(seen) > 2
    holders = {holder for holder, _ in seen}
    assert len(holders) == 1 and None not in holders
    untils = [until for _, until in seen]
    assert all(u is not None for u in untils)
    assert untils == sorted(untils) and untils[-1] > untils[0]  # type: ignore[type-var, operator]
    assert all(u <= utcnow() + LEASE for u in untils if u is not None)


def test_a_sync_that_lost_its_lease_stops_before_writing_its_next_page(
        office: Office) -> None:
    office.connect(MAYA)
    after_first: list[int] = []

    def overtaken(number: int) -> None:
        if number == 1:  # page 0 is committed; our lease ran out and another worker took it
            after_first.append(copies(office))
            hold(office, holder="next-worker", until=utcnow() + LEASE)

    outcome = office.sync(MAYA, BetweenPages(office, MAYA, overtaken))

    assert not outcome.ran
    assert after_first and after_first[0] > 0
    assert copies(office) == after_first[0]  # page 1 was fetched but not written
    row = calendar(office)
    assert row.sync_lease_holder == "next-worker"  # not released from under the new holder
    assert row.cursor is None and row.last_error is None  # not a failure of the calendar


def test_running_elsewhere_is_said_once_per_lease_episode(
        office: Office, caplog: pytest.LogCaptureFixture) -> None:
    office.connect(MAYA)
    caplog.set_level(logging.DEBUG, logger="service.sync.calendar_sync")

    def said_at_info() -> int:
        return sum(1 for r in caplog.records if r.levelno == logging.INFO
                   and "already running elsewhere" in r.getMessage())

    hold(office, holder="worker-a", until=utcnow() + LEASE)
    for _ in range(3):
        office.sync(MAYA)
    assert said_at_info() == 1
    hold(office, holder="worker-b", until=utcnow() + LEASE)
    office.sync(MAYA)
    assert said_at_info() == 2


def test_a_failing_calendar_backs_off_exponentially_and_clears_on_success(
        office: Office) -> None:
    office.connect(MAYA)
    office.world.truncate_listing(MAYA)
    for failures in (1, 2, 3):
        before = utcnow()
        with pytest.raises(Exception, match="broke off"):
            office.sync(MAYA)
        row = calendar(office)
        assert row.failures == failures
        assert row.retry_not_before is not None  # wall-clock, like the lease
        assert before <= row.retry_not_before - backoff(failures) <= utcnow()
        assert row.last_error is not None and "broke off" in row.last_error
    assert [backoff(n) for n in (1, 2, 3)] == [timedelta(seconds=s) for s in (30, 60, 120)]
    assert backoff(20) == timedelta(minutes=15)

    office.world.truncate_listing(MAYA, truncated=False)
    office.sync(MAYA)

    row = calendar(office)
    assert (row.failures, row.retry_not_before, row.last_error) == (0, None, None)


def test_a_sync_asked_for_mid_round_runs_another_round_then_lets_go(office: Office) -> None:
    """Another worker asks for a sync while ours holds the lease (between two pages): ours
    runs a second round before it lets go, and the request is taken."""
    office.connect(MAYA)
    rounds: list[int] = []

    def ask(number: int) -> None:
        if number == 0:
            rounds.append(1)
        if number == 1 and len(rounds) == 1:  # the first round only
            with office.factory.begin() as session:
                session.execute(update(Calendar).where(Calendar.id == office.calendars[MAYA])
                                .values(sync_requested_at=office.now))

    outcome = office.sync(MAYA, BetweenPages(office, MAYA, ask))

    assert outcome.ran and len(rounds) == 2
    row = calendar(office)
    assert row.sync_requested_at is None and row.cursor is not None
    assert row.sync_lease_holder is None and row.sync_lease_until is None


def test_a_round_ends_in_the_transaction_of_its_last_page(office: Office) -> None:
    """Taking the lease (which reads the calendar too) and one transaction per page: the
    check for a further request and letting go of the lease commit with the last page
    (each commit is an fsync on SQLite), and the lease is free afterwards."""
    office.connect(MAYA)
    pages: list[int] = []
    commits: list[int] = []

    def count(_conn: object) -> None:
        commits.append(1)

    engine = office.factory.kw["bind"]
    event.listen(engine, "commit", count)
    try:
        office.sync(MAYA, BetweenPages(office, MAYA, pages.append))
    finally:
        event.remove(engine, "commit", count)
    assert len(pages) > 2
    assert len(commits) == len(pages) + 1
    row = calendar(office)
    assert row.sync_lease_holder is None and row.sync_lease_until is None


def test_a_round_takes_the_lease_renews_it_per_page_and_ends_in_one_update(
        office: Office) -> None:
    """The lease's statements: one UPDATE takes it and returns the calendar's row (read
    again after it before), one per page renews it, and the last page's one UPDATE both
    takes a request and lets go (issue 14 target 6: two before)."""
    office.connect(MAYA)
    pages: list[int] = []
    with statements(office.factory, startswith=("UPDATE calendars", "SELECT calendars")) \
            as seen:
        office.sync(MAYA, BetweenPages(office, MAYA, pages.append))
    assert len(pages) > 2
    lease = [s.sql for s in seen if s.sql.startswith("UPDATE calendars SET sync_")]
    assert len(lease) == 1 + len(pages) + 1, lease
    assert not any(s.sql.startswith("SELECT calendars") for s in seen), seen
    row = calendar(office)
    assert row.sync_lease_holder is None and row.sync_lease_until is None
    assert row.sync_requested_at is None
