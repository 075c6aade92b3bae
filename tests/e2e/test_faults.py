"""Throttling, echo suppression, duplicate messages, broken items and revoked grants."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from service.accounts.models import Account, AccountStatus
from service.agenda.models import AgendaRecord
from service.calendars.models import Calendar, QuarantinedItem
from workers import actors

from .conftest import Harness, ProviderCase
from .helpers import (
    add_topic,
    agenda_for_next,
    block_count,
    calls,
    connect_pair,
    snapshot,
    upcoming,
    written_agendas,
)

LIST_OPERATIONS = {"google": "events.list", "microsoft": "calendarView.delta"}


def _agenda_is_in_the_next_invite(harness: Harness, case: ProviderCase) -> None:
    agenda_id, start = agenda_for_next(harness, case)
    description = harness.sandbox(case.provider).description_of(case.manager, case.series_key,
                                                                 start)
    assert block_count(description) == 1
    with harness.session() as session:
        record = session.get(AgendaRecord, agenda_id)
        assert record is not None and record.written_hash == record.content_hash


def _statuses(harness: Harness) -> dict[str, tuple[str, str | None]]:
    with harness.session() as session:
        return {a.email: (str(a.status), a.status_reason)
                for a in session.scalars(select(Account))}


def _tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]


def test_throttled_requests_are_retried_until_the_work_is_done(
        harness: Harness, case: ProviderCase, caplog: pytest.LogCaptureFixture) -> None:
    harness.connect(case.manager)  # one account, so the 429s fall on one request in a row
    sandbox = harness.sandbox(case.provider)
    sandbox.inject_throttle(5, retry_after=0.2)

    harness.sync()

    assert len(calls(sandbox).status(429)) == 5
    _agenda_is_in_the_next_invite(harness, case)
    assert _statuses(harness)[case.manager][0] == AccountStatus.ACTIVE
    assert _tracebacks(caplog) == []


def test_unchanged_resync_costs_one_list_call_per_calendar_and_no_write(
        harness: Harness, case: ProviderCase) -> None:
    connect_pair(harness, case)
    harness.sync()
    sandbox = harness.sandbox(case.provider)
    with harness.session() as session:
        calendars = len(session.scalars(select(Calendar.id)).all())
    patches = harness.provider_calls(operation="events.patch")
    assert patches >= 1

    sandbox.clear_requests()
    harness.sync()  # our own writes come back through sync: recognised, not rewritten
    served = calls(sandbox)
    assert len(served.lists) == calendars
    assert served.writes == []
    assert harness.provider_calls(operation="events.patch") == patches

    sandbox.clear_requests()
    lists_before = harness.provider_calls(operation=LIST_OPERATIONS[case.provider])
    harness.sync()  # nothing changed anywhere: one cheap call per calendar, nothing else
    served = calls(sandbox)
    assert len(served.api) == len(served.lists) == calendars
    assert harness.provider_calls(operation=LIST_OPERATIONS[case.provider]) \
        == lists_before + calendars

    start = upcoming(harness, case)[0]
    sandbox.move_occurrence(case.series_key, start, start + timedelta(hours=1))
    sandbox.clear_requests()
    harness.sync()  # one changed occurrence
    served = calls(sandbox)
    assert sorted(Counter(r.path for r in served.lists).values()) == [1] * calendars
    assert len(served.writes) <= 1
    assert harness.provider_calls(operation="events.patch") <= patches + 1


def test_duplicate_sync_messages_leave_the_same_state_and_write_once(
        harness: Harness, case: ProviderCase) -> None:
    connect_pair(harness, case)
    sandbox = harness.sandbox(case.provider)
    with harness.session() as session:
        account_ids = session.scalars(select(Account.id)).all()
    for account_id in account_ids:  # two deliveries of each, before any worker runs
        actors.sync_account.send(account_id)
        actors.sync_account.send(account_id)
    harness.run()

    done = [w.path for w in calls(sandbox).writes if w.status == 200]
    assert done and max(Counter(done).values()) == 1  # each invite written once
    assert written_agendas(harness) == len(done)
    harness.sync()  # settle our writes echoing into the report's copy
    settled = snapshot(harness)

    with harness.session() as session:
        calendar_ids = session.scalars(select(Calendar.id)).all()
    sandbox.clear_requests()
    for calendar_id in calendar_ids:
        actors.sync_calendar.send(calendar_id)
        actors.sync_calendar.send(calendar_id)
    harness.run()

    assert snapshot(harness) == settled
    assert calls(sandbox).writes == []


def test_broken_items_are_logged_with_their_id_and_the_rest_of_the_sync_goes_on(
        harness: Harness, case: ProviderCase, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    connect_pair(harness, case)
    sandbox = harness.sandbox(case.provider)
    broken = {kind: sandbox.add_malformed_event(case.manager, kind)
              for kind in ("malformed", "bad_timezone", "huge_description")}

    harness.sync()

    messages = [r.getMessage() for r in caplog.records]
    for kind, event_id in broken.items():
        assert any(event_id in m for m in messages), f"{kind} item {event_id} not logged"
    with harness.session() as session:
        quarantined = set(session.scalars(select(QuarantinedItem.provider_event_id)))
        for calendar in session.scalars(select(Calendar)):
            assert calendar.cursor and calendar.last_error is None
    assert {broken["malformed"], broken["bad_timezone"]} <= quarantined
    _agenda_is_in_the_next_invite(harness, case)
    assert _tracebacks(caplog) == []


def test_revoked_grant_flags_that_account_and_the_others_keep_syncing(
        harness: Harness, case: ProviderCase, caplog: pytest.LogCaptureFixture) -> None:
    connect_pair(harness, case)
    sandbox = harness.sandbox(case.provider)
    sandbox.revoke(case.report)

    harness.sync()

    statuses = _statuses(harness)
    status, reason = statuses[case.report]
    assert status == AccountStatus.NEEDS_RECONSENT
    assert reason and "consent" in reason.lower()
    assert statuses[case.manager] == (AccountStatus.ACTIVE, None)
    _agenda_is_in_the_next_invite(harness, case)

    # later the manager's grant goes too, in the middle of incremental syncing
    sandbox.revoke(case.manager)
    add_topic(harness, case, "Anything for next quarter?")
    start = upcoming(harness, case)[0]
    sandbox.move_occurrence(case.series_key, start, start + timedelta(minutes=30))
    harness.sync()

    status, reason = _statuses(harness)[case.manager]
    assert status == AccountStatus.NEEDS_RECONSENT and reason
    assert "rapport connect" in reason  # says what to do about it
    assert _tracebacks(caplog) == []
