"""Copies of a calendar's sync message (a reconcile that sent the backlog again, a burst of
webhooks) cost one sync, not one each; a message sent after a sync began still syncs. Copies
of an owed agenda write (the reconciler sends it every interval until it is done) cost one
write."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from service.accounts.models import Account
from service.calendars.models import Calendar
from workers import actors
from workers.inprocess import run_until_idle
from workers.superseded import CLOCK_MARGIN_MS

from .conftest import Harness, ProviderCase
from .helpers import add_topic, agenda_for_next, case_series, connect_pair, occurrence_at, upcoming

COPIES = 3


def _listings(harness: Harness, case: ProviderCase) -> int:
    """Listings of the manager's calendar served so far (events.list / calendarView delta)."""
    return sum(1 for r in harness.sandbox(case.provider).requests()
               if r.user == case.manager and r.method == "GET"
               and r.path.endswith(("/events", "/delta")))


def _manager_calendar(harness: Harness, case: ProviderCase) -> int:
    with harness.session() as session:
        calendar_id = session.scalar(select(Calendar.id).join(
            Account, Account.id == Calendar.account_id).where(Account.email == case.manager))
    assert calendar_id is not None
    return calendar_id


def _one_thread(harness: Harness) -> None:
    """One worker thread, so the copies run one after the other (as on a busy queue)."""
    run_until_idle(harness.broker, threads=1, timeout=120)


def test_queued_copies_of_a_sync_cost_one_listing(harness: Harness, case: ProviderCase,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    connect_pair(harness, case)
    harness.sync()
    calendar_id = _manager_calendar(harness, case)
    before = _listings(harness, case)

    for _ in range(COPIES):  # queued while no worker runs
        actors.sync_calendar.send(calendar_id)
    time.sleep(CLOCK_MARGIN_MS / 1000 + 0.2)  # the first copy then begins after all were sent
    caplog.set_level(logging.WARNING)
    _one_thread(harness)

    assert _listings(harness, case) - before == 1
    # dramatiq's "Message ... was skipped." WARNING per copy is filtered: a copy is routine
    assert [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING and "was skipped" in r.getMessage()] == []


def test_a_sync_sent_after_the_last_one_began_still_runs(harness: Harness,
                                                         case: ProviderCase) -> None:
    connect_pair(harness, case)
    harness.sync()
    calendar_id = _manager_calendar(harness, case)
    actors.sync_calendar.send(calendar_id)
    _one_thread(harness)
    series = case_series(harness, case)
    start = upcoming(harness, case)[0]

    harness.sandbox(case.provider).move_occurrence(case.series_key, start,
                                                   start + timedelta(hours=1))
    before = _listings(harness, case)
    actors.sync_calendar.send(calendar_id)  # at once: well within the clock margin
    _one_thread(harness)

    assert _listings(harness, case) - before == 1
    assert occurrence_at(harness, series.id, start).scheduled_start == start + timedelta(hours=1)


def test_queued_copies_of_an_agenda_write_cost_one_write(
        harness: Harness, case: ProviderCase, monkeypatch: pytest.MonkeyPatch) -> None:
    connect_pair(harness, case)
    harness.sync()
    agenda_id, start = agenda_for_next(harness, case)
    add_topic(harness, case, "Plans for the hackathon")  # a write is owed
    runs: list[int] = []
    write = actors.write_agenda_into_invite

    def counted(*args: object, **kwargs: object) -> object:
        runs.append(agenda_id)
        return write(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(actors, "write_agenda_into_invite", counted)
    for _ in range(COPIES):  # the reconciler's copies, queued while no worker runs
        actors.write_agenda.send(agenda_id)
    time.sleep(CLOCK_MARGIN_MS / 1000 + 0.2)
    _one_thread(harness)

    assert runs == [agenda_id]
    description = harness.sandbox(case.provider).description_of(case.manager, case.series_key,
                                                                start)
    assert "Plans for the hackathon" in description
