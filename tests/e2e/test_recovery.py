"""Recovery and pace under faults, on both providers (issue 11, items 1, 4, 6 and 8): a dead
worker's lease is taken over by the next reconcile; a throttled account waits across
messages without holding anyone else up; an account that needs re-consent gets no provider
call; a page cut off mid-body is a transient error, retried a bounded number of times, then
the calendar is failing with its reason and backs off."""

from __future__ import annotations

import time
from datetime import timedelta

import dramatiq
import pytest
from sqlalchemy import select, update

from connectors.retry import RetryPolicy
from sandbox.admin import RecordedRequest
from service.accounts.models import Account, AccountStatus
from service.agenda.models import AgendaRecord
from service.calendars.models import Calendar, ProviderCallLog
from service.calendars.queries import active_account
from service.db import utcnow
from service.sync.calendar_sync import LEASE, backoff
from workers import actors, pace
from workers.inprocess import run_bounded
from workers.pace import account_turn

from .conftest import CASES, Harness, ProviderCase
from .helpers import add_topic, agenda_for_next, calls, connect_pair

TOKEN_PATHS = ("/token", "/oauth2/v2.0/token")


def _run(harness: Harness) -> None:
    """Drain the queues within a bounded run: a message asked to wait long is left for later
    (as `sync --once` leaves it), so no test waits out a Retry-After."""
    run_bounded(harness.broker, threads=1, timeout=120)


def _reconcile(harness: Harness) -> None:
    actors.reconcile.send()
    _run(harness)


def _calendar_of(harness: Harness, account_id: int) -> Calendar:
    with harness.session() as session:
        row = session.scalars(select(Calendar).where(Calendar.account_id == account_id)).one()
        session.expunge(row)
        return row


def _account(harness: Harness, account_id: int) -> Account:
    with harness.session() as session:
        row = session.get(Account, account_id)
        assert row is not None
        session.expunge(row)
        return row


def _account_of(harness: Harness, email: str) -> int:
    with harness.session() as session:
        account_id = session.scalar(select(Account.id).where(Account.email == email))
        assert account_id is not None
        return account_id


def _written(harness: Harness, agenda_id: int) -> bool:
    with harness.session() as session:
        record = session.get(AgendaRecord, agenda_id)
        return record is not None and record.written_hash == record.content_hash


def _tokens_refused(requests: list[RecordedRequest]) -> list[RecordedRequest]:
    return [r for r in requests if r.path.endswith(TOKEN_PATHS) and r.status == 400]


def test_a_calendar_left_with_a_dead_workers_lease_is_synced_by_the_next_reconcile(
        harness: Harness, case: ProviderCase) -> None:
    account_id = harness.connect(case.manager)
    harness.sync()
    calendar_id = _calendar_of(harness, account_id).id
    sandbox = harness.sandbox(case.provider)

    # a worker renewed its lease just now and is still at work: nothing to take over
    with harness.runtime.factory.begin() as session:
        session.execute(update(Calendar).where(Calendar.id == calendar_id).values(
            sync_lease_holder="live-worker", sync_lease_until=utcnow() + LEASE))
    sandbox.clear_requests()
    _reconcile(harness)
    assert calls(sandbox).lists == []

    # that worker was killed: its last renewal is now more than one lease period old
    with harness.runtime.factory.begin() as session:
        session.execute(update(Calendar).where(Calendar.id == calendar_id).values(
            sync_lease_holder="killed-worker", sync_lease_until=utcnow() - timedelta(seconds=1)))
    _reconcile(harness)

    assert len(calls(sandbox).lists) >= 1
    calendar = _calendar_of(harness, account_id)
    assert calendar.sync_lease_holder is None and calendar.last_error is None


def test_a_minute_of_throttling_on_graph_does_not_hold_up_a_google_agenda(
        harness: Harness) -> None:
    google, graph = CASES["google"], CASES["microsoft"]
    for case in (google, graph):
        connect_pair(harness, case)
    harness.sync()
    _reconcile(harness)
    for case in (google, graph):
        add_topic(harness, case, "What the customer visit taught us")  # a new write is due
    google_agenda, _ = agenda_for_next(harness, google)
    graph_agenda, _ = agenda_for_next(harness, graph)
    graph_account = _account_of(harness, graph.manager)
    harness.graph.inject_throttle(1000, retry_after=60)
    harness.graph.clear_requests()

    began = utcnow()
    actors.write_agenda.send(graph_agenda)  # first in line, on the only worker thread
    actors.write_agenda.send(google_agenda)
    _run(harness)

    assert _written(harness, google_agenda) and not _written(harness, graph_agenda)
    held = _account(harness, graph_account)
    assert held.not_before is not None  # wall-clock, as Retry-After is
    assert began <= held.not_before - timedelta(seconds=60) <= utcnow()
    assert held.not_before_reason is not None and "429" in held.not_before_reason
    with harness.session() as session:
        google_write_at = session.scalar(select(ProviderCallLog.at).where(
            ProviderCallLog.provider == "google", ProviderCallLog.operation == "events.patch"))
    assert google_write_at is not None and google_write_at < held.not_before  # while it waited
    assert [r.status for r in calls(harness.graph).api] == [429]  # asked once, then waited

    # another message for the throttled account, and the reconciler: no call to Graph at all
    harness.graph.clear_requests()
    actors.write_agenda.send(graph_agenda)
    _reconcile(harness)
    assert harness.graph.requests() == []

    # once its not_before has passed (the minute is up), the account's work is queued and done
    harness.graph.inject_throttle(0)
    with harness.runtime.factory.begin() as session:
        session.execute(update(Account).where(Account.id == graph_account)
                        .values(not_before=utcnow() - timedelta(seconds=1)))
    _reconcile(harness)
    assert _written(harness, graph_agenda)


def test_an_account_that_needs_reconsent_gets_no_provider_call_until_it_signs_in(
        harness: Harness, case: ProviderCase) -> None:
    connect_pair(harness, case)
    harness.sync()
    _reconcile(harness)
    add_topic(harness, case, "Feedback on the design review")  # the manager's write is due
    agenda_id, _ = agenda_for_next(harness, case)
    manager_account = _account_of(harness, case.manager)
    sandbox = harness.sandbox(case.provider)
    sandbox.revoke(case.manager)
    actors.write_agenda.send(agenda_id)
    _run(harness)
    assert _account(harness, manager_account).status == AccountStatus.NEEDS_RECONSENT

    sandbox.clear_requests()
    for _ in range(3):  # three polls' worth of reconciles: everything is due every time
        harness.clock.now += timedelta(seconds=harness.settings.poll_interval_seconds + 1)
        _reconcile(harness)
    # and messages queued for it before it was flagged
    actors.write_agenda.send(agenda_id)
    actors.sync_calendar.send(_calendar_of(harness, manager_account).id)
    _run(harness)

    served = sandbox.requests()
    # every API call was the report's (a revoked token's 401 names no user, so count those)
    assert [r for r in calls(sandbox).api if r.user != case.report] == []
    assert _tokens_refused(served) == []  # not one invalid_grant refresh
    assert [r for r in calls(sandbox).lists if r.user == case.report]  # the report goes on
    assert not _written(harness, agenda_id)  # still due, for when they sign in again


def test_a_page_cut_off_mid_body_fails_the_calendar_with_its_reason_and_backs_off(
        harness: Harness, case: ProviderCase) -> None:
    account_id = harness.connect(case.manager)
    harness.sync()
    calendar_id = _calendar_of(harness, account_id).id
    sandbox = harness.sandbox(case.provider)
    sandbox.truncate_listing(case.manager)
    sandbox.clear_requests()

    began = utcnow()
    actors.sync_calendar.send(calendar_id)
    _run(harness)

    listed = calls(sandbox).lists
    assert 2 <= len(listed) <= RetryPolicy().attempts  # retried by the connector, bounded
    assert all(r.status == 200 for r in listed)  # a 200 with a broken body
    failing = _calendar_of(harness, account_id)
    assert failing.last_error is not None and "not JSON" in failing.last_error
    assert failing.failures == 1 and failing.retry_not_before is not None
    assert began <= failing.retry_not_before - backoff(1) <= utcnow()

    sandbox.clear_requests()
    _reconcile(harness)  # within its backoff: left alone
    assert calls(sandbox).lists == []

    sandbox.truncate_listing(case.manager, truncated=False)
    with harness.runtime.factory.begin() as session:  # its backoff is over
        session.execute(update(Calendar).where(Calendar.id == calendar_id)
                        .values(retry_not_before=utcnow() - timedelta(seconds=1)))
    _reconcile(harness)

    assert len(calls(sandbox).lists) >= 1
    healed = _calendar_of(harness, account_id)
    assert (healed.failures, healed.retry_not_before, healed.last_error) == (0, None, None)


def test_an_account_has_at_most_its_configured_calls_in_flight(harness: Harness) -> None:
    harness.runtime.settings.google_account_concurrency = 2
    ids = [harness.connect(CASES["google"].manager), harness.connect(CASES["google"].report)]
    with harness.session() as session:
        maya, other = (active_account(session, account_id=i) for i in ids)

    with account_turn(maya), account_turn(maya):
        with pytest.raises(dramatiq.Retry):
            with account_turn(maya):
                pass
        with account_turn(other):  # another account has its own slots
            pass
    with account_turn(maya):  # the slots were given back
        pass


def test_a_slot_a_killed_worker_never_gave_back_expires_while_the_account_stays_busy(
        harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """dramatiq's concurrent limiter set its one counter's expiry again on every acquire and
    release, so a dead holder's slot lived as long as the account kept calling."""
    monkeypatch.setattr(pace, "SLOT_TTL_MS", 400)
    harness.runtime.settings.google_account_concurrency = 2
    account_id = harness.connect(CASES["google"].manager)
    with harness.session() as session:
        maya = active_account(session, account_id=account_id)
    dead = account_turn(maya)
    dead.__enter__()  # a worker killed mid-call: the slot is never given back

    busy_until = time.monotonic() + 1.0  # the account keeps calling, past the slot's expiry
    while time.monotonic() < busy_until:
        with account_turn(maya):
            pass
        time.sleep(0.05)

    with account_turn(maya), account_turn(maya):  # both slots are free again
        pass
