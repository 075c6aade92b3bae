"""Cancellations without a reschedule, end to end on both providers: outcomes, the grace
period on a controlled clock, duplicates and out-of-order news, crashes, and real SMTP."""

from __future__ import annotations

import email
import email.policy
import threading
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.email.models import OutboxMessage, OutboxStatus
from service.email.outbox import make_message_id
from service.outcomes.listing import list_alerts, set_pair_muted
from service.outcomes.service import alert_key
from service.pairs.models import Occurrence, Outcome, Series
from workers import actors

from .conftest import Harness, ProviderCase

GRACE = timedelta(hours=24, minutes=5)


def _start(harness: Harness, case: ProviderCase, nth: int = 2) -> datetime:
    """The nth upcoming original start (nth >= 2 keeps clear of this week's one-off coffee)."""
    sandbox = harness.sandbox(case.provider)
    upcoming = [s for s in sandbox.occurrence_starts(case.series_key,
                                                     until=harness.clock() + timedelta(days=60))
                if s > harness.clock()]
    return upcoming[nth]


def _occurrence(harness: Harness, case: ProviderCase, original: datetime) -> Occurrence:
    with harness.session() as session:
        return session.scalars(
            select(Occurrence).join(Series, Series.id == Occurrence.series_id)
            .where(Series.organizer_email == case.manager, Series.pair_id.is_not(None),
                   Occurrence.original_start == original)).one()


def _connected(harness: Harness, case: ProviderCase) -> None:
    harness.connect(case.manager)
    harness.connect(case.report)
    harness.sync()


def _reconcile(harness: Harness) -> None:
    actors.reconcile.send()
    harness.run()


def _alerts(harness: Harness) -> list[OutboxMessage]:
    with harness.session() as session:
        return list(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "alert")))


def _emls(harness: Harness) -> list[Path]:
    return sorted(harness.settings.resolved_outbox_dir.glob("*.eml"))


def _after_grace(harness: Harness) -> None:
    harness.clock.now += GRACE
    _reconcile(harness)


@pytest.fixture(autouse=True)
def _daytime_quiet_hours(harness: Harness) -> None:
    """Quiet hours off unless a test turns them on (the real clock may be at night); prep
    nudges off, since these tests count every email the alerts send."""
    harness.runtime.settings.quiet_hours = "00:00-00:00"
    harness.runtime.settings.prep_nudge_hours = 0


def test_a_cancellation_without_reschedule_alerts_the_manager_once_after_grace(
        harness: Harness, case: ProviderCase) -> None:
    _connected(harness, case)
    original = _start(harness, case)
    harness.sandbox(case.provider).cancel_occurrence(case.series_key, original)
    harness.sync()
    occ = _occurrence(harness, case, original)
    assert occ.status == "cancelled" and occ.outcome is None
    assert occ.check_due_at is not None and occ.check_due_at > harness.clock()

    _reconcile(harness)  # inside the grace period: nothing yet
    assert _alerts(harness) == []

    _after_grace(harness)
    _after_grace(harness)  # a second pass changes nothing
    harness.sync()
    occ = _occurrence(harness, case, original)
    assert occ.outcome == Outcome.CANCELLED_NO_RESCHEDULE and occ.check_due_at is None
    [row] = _alerts(harness)
    assert row.dedupe_key == alert_key(occ.id) and row.recipient == case.manager
    assert row.status == OutboxStatus.SENT
    [eml] = _emls(harness)
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert message["To"] == case.manager and "cancelled" in message["Subject"]


def test_a_reschedule_during_grace_cancels_the_alert(harness: Harness,
                                                     case: ProviderCase) -> None:
    _connected(harness, case)
    original = _start(harness, case)
    sandbox = harness.sandbox(case.provider)
    sandbox.cancel_occurrence(case.series_key, original)
    harness.sync()
    sandbox.create_series(organizer=case.manager, attendees=[case.report], title="1:1 (moved)",
                          first_start=original + timedelta(days=1), rrule=None)
    harness.sync()
    _after_grace(harness)
    assert _occurrence(harness, case, original).outcome == Outcome.RESCHEDULED
    assert _alerts(harness) == [] and _emls(harness) == []


def test_a_reschedule_after_the_alert_is_recorded_without_a_second_alert(
        harness: Harness, case: ProviderCase) -> None:
    _connected(harness, case)
    original = _start(harness, case)
    sandbox = harness.sandbox(case.provider)
    sandbox.cancel_occurrence(case.series_key, original)
    harness.sync()
    _after_grace(harness)
    assert len(_alerts(harness)) == 1
    sandbox.create_series(organizer=case.manager, attendees=[case.report], title="Catch-up",
                          first_start=original + timedelta(days=2), rrule=None)
    harness.sync()
    _reconcile(harness)
    assert _occurrence(harness, case, original).outcome == Outcome.RESCHEDULED
    assert len(_alerts(harness)) == 1 and len(_emls(harness)) == 1


def test_a_moved_occurrence_is_not_a_drop_and_counts_as_moved(harness: Harness,
                                                              case: ProviderCase) -> None:
    _connected(harness, case)
    original = _start(harness, case)
    harness.sandbox(case.provider).move_occurrence(case.series_key, original,
                                                   original + timedelta(hours=2))
    harness.sync()
    occ = _occurrence(harness, case, original)
    assert occ.status == "confirmed" and occ.check_due_at is None
    harness.clock.now = original + timedelta(hours=3)
    _reconcile(harness)
    assert _occurrence(harness, case, original).outcome == Outcome.MOVED
    assert _alerts(harness) == []


def test_past_occurrences_that_took_place_are_held(harness: Harness,
                                                   case: ProviderCase) -> None:
    _connected(harness, case)
    _reconcile(harness)
    with harness.session() as session:
        outcomes = session.scalars(
            select(Occurrence.outcome).join(Series, Series.id == Occurrence.series_id)
            .where(Series.organizer_email == case.manager, Series.pair_id.is_not(None),
                   Occurrence.scheduled_end < harness.clock())).all()
    assert outcomes and set(outcomes) == {Outcome.HELD}


def test_a_decline_by_the_report_alerts_and_names_the_report(harness: Harness,
                                                             case: ProviderCase) -> None:
    _connected(harness, case)
    original = _start(harness, case)
    harness.sandbox(case.provider).decline_occurrence(case.series_key, original, case.report)
    harness.sync()
    _after_grace(harness)
    assert _occurrence(harness, case, original).outcome == Outcome.DECLINED_BY_REPORT
    [row] = _alerts(harness)
    assert "declined" in row.subject


@pytest.mark.parametrize("how", ["delete", "end"])
def test_an_ended_series_is_one_record_and_no_alert(harness: Harness, case: ProviderCase,
                                                    how: str) -> None:
    _connected(harness, case)
    sandbox = harness.sandbox(case.provider)
    if how == "delete":
        sandbox.delete_series(case.series_key)
    else:
        sandbox.end_series(case.series_key, harness.clock() + timedelta(days=3))
    harness.sync()
    _after_grace(harness)
    with harness.session() as session:
        series = session.scalars(select(Series).where(
            Series.organizer_email == case.manager, Series.other_email == case.report)).one()
        if how == "delete":  # the one record: the series itself says it ended
            assert series.status == "ended" and series.ended_at is not None
        dropped = session.scalars(select(Occurrence.outcome).where(
            Occurrence.series_id == series.id, Occurrence.status == "cancelled")).all()
    assert dropped and set(dropped) == {Outcome.SERIES_ENDED}
    assert _alerts(harness) == []


def test_duplicate_and_out_of_order_news_give_one_alert(harness: Harness,
                                                       case: ProviderCase) -> None:
    _connected(harness, case)
    original = _start(harness, case)
    harness.sandbox(case.provider).cancel_occurrence(case.series_key, original)
    harness.sync()
    harness.sync()  # the same news twice
    occ = _occurrence(harness, case, original)
    harness.clock.now += GRACE
    actors.check_occurrence.send(occ.id)  # the delayed message ...
    actors.check_occurrence.send(occ.id)  # ... delivered twice
    actors.reconcile.send()  # and the reconciler finds it due as well
    harness.run()
    harness.sync()  # the cancellation arrives once more, after the decision
    _reconcile(harness)
    assert len(_alerts(harness)) == 1 and len(_emls(harness)) == 1


def test_a_muted_pair_gets_the_outcome_but_no_alert(harness: Harness,
                                                   case: ProviderCase) -> None:
    _connected(harness, case)
    original = _start(harness, case)
    with harness.runtime.factory.begin() as session:
        series = session.scalars(select(Series).where(Series.organizer_email == case.manager,
                                                      Series.other_email == case.report)).one()
        assert series is not None and series.pair_id is not None
        set_pair_muted(session, pair_id=series.pair_id, muted=True)
    harness.sandbox(case.provider).cancel_occurrence(case.series_key, original)
    harness.sync()
    _after_grace(harness)
    assert _occurrence(harness, case, original).outcome == Outcome.CANCELLED_NO_RESCHEDULE
    assert _alerts(harness) == []


def test_quiet_hours_hold_the_alert_until_morning_in_the_managers_zone(
        harness: Harness, case: ProviderCase) -> None:
    harness.runtime.settings.quiet_hours = "00:00-23:59"  # always quiet: the send waits
    _connected(harness, case)
    original = _start(harness, case)
    harness.sandbox(case.provider).cancel_occurrence(case.series_key, original)
    harness.sync()
    _after_grace(harness)
    [row] = _alerts(harness)
    assert row.status == OutboxStatus.PENDING and row.not_before is not None
    assert row.not_before > harness.clock()
    with harness.session() as session:
        assert [r.state for r in list_alerts(session)] == ["pending"]
    harness.clock.now = row.not_before + timedelta(minutes=1)
    _reconcile(harness)
    assert [r.status for r in _alerts(harness)] == [OutboxStatus.SENT]
    assert len(_emls(harness)) == 1


def test_a_worker_killed_between_deciding_and_sending_still_sends_exactly_once(
        harness: Harness, case: ProviderCase, monkeypatch: pytest.MonkeyPatch) -> None:
    _connected(harness, case)
    original = _start(harness, case)
    harness.sandbox(case.provider).cancel_occurrence(case.series_key, original)
    harness.sync()
    occ = _occurrence(harness, case, original)
    harness.clock.now += GRACE
    sent: list[int] = []
    monkeypatch.setattr(actors.deliver_email, "send", lambda outbox_id: sent.append(outbox_id))
    actors.check_occurrence(occ.id)  # decides and queues; the "send" is lost with the worker
    monkeypatch.undo()
    assert sent and _alerts(harness)[0].status == OutboxStatus.PENDING
    assert _emls(harness) == []
    _reconcile(harness)
    _reconcile(harness)
    assert len(_emls(harness)) == 1
    assert [r.status for r in _alerts(harness)] == [OutboxStatus.SENT]


# -- real SMTP ------------------------------------------------------------------------


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def] # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 OK"


def test_the_alert_over_real_smtp_offers_slots_that_are_really_free(
        harness: Harness, case: ProviderCase) -> None:
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        from pydantic import SecretStr

        harness.runtime.settings.smtp_url = SecretStr(f"smtp://127.0.0.1:{port}?starttls=never")
        harness.runtime.settings.alert_report_too = True
        _connected(harness, case)
        original = _start(harness, case)
        harness.sandbox(case.provider).cancel_occurrence(case.series_key, original)
        harness.sync()
        _after_grace(harness)
    finally:
        controller.stop()
    [(recipients, message)] = inbox.messages
    assert sorted(recipients) == sorted([case.manager, case.report])
    assert message["To"] == case.manager and message["Cc"] == case.report
    occ = _occurrence(harness, case, original)
    assert message["Message-ID"] == make_message_id(alert_key(occ.id))
    assert "was cancelled" in message["Subject"]
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "Book this time" in html and "Create a 30-minute meeting" in text
    # the offered slots are free for both, as the sandbox itself answers free/busy
    with harness.session() as session:
        from service.accounts.models import Account

        account_id = session.scalar(select(Account.id).where(Account.email == case.manager))
        count = session.scalar(select(func.count()).select_from(OutboxMessage))
    assert account_id is not None and count == 1
    connector = harness.runtime.connectors.for_account(account_id)
    busy = connector.free_busy([case.manager, case.report], harness.clock(),
                               original + timedelta(days=5)).busy
    slots = _slots_in(text, harness)
    assert len(slots) == 3
    for start in slots:
        end = start + timedelta(minutes=30)
        for intervals in busy.values():
            assert not any(b.start < end and start < b.end for b in intervals)
    assert any(intervals for intervals in busy.values())  # the check had something to avoid


def _slots_in(text: str, harness: Harness) -> list[datetime]:
    """Slot starts parsed back from the plain-text part ("1. Tue 3 Dec, 10:00 (Zone) ...")."""
    from zoneinfo import ZoneInfo

    found = []
    for line in text.splitlines():
        line = line.strip()
        if line[:2] in ("1.", "2.", "3.") and "(" in line:
            label, zone_name = line[3:].split(" (", 1)
            zone_name = zone_name.split(")", 1)[0]
            _, day, month_time = label.split(" ", 2)
            month, clock = month_time.split(", ")
            tz = ZoneInfo(zone_name)
            now = harness.clock().astimezone(tz)
            for year in (now.year, now.year + 1):
                moment = datetime.strptime(f"{year} {day} {month} {clock}", "%Y %d %b %H:%M")
                local = moment.replace(tzinfo=tz)
                if local >= now - timedelta(days=1):
                    found.append(local)
                    break
    return found
