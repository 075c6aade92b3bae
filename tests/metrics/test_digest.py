"""The weekly digest: due at the manager's local time, sent once, read back over SMTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
import time_machine
from aiosmtpd.controller import Controller
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from service.email.models import OutboxMessage, OutboxStatus
from service.email.outbox import LEASE, DeliveryOutcome
from service.email.transport import SmtpTransport
from service.metrics import digest
from service.settings import Settings
from tests.email.conftest import _free_port
from tests.metrics.conftest import History, utc


class Inbox:
    """aiosmtpd handler keeping every message it accepted."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.original_content or envelope.content,
                                                policy=policy.default))  # type: ignore[arg-type]
        return "250 accepted"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, str]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, f"smtp://127.0.0.1:{port}"
    finally:
        controller.stop()


def _manager_with_history(history: History, *, tz: str, who: str = "boss") -> int:
    place = tz.replace("/", "-").lower()
    manager = history.person(f"{who}-{place}@example.com", tz=tz, name="Ana Silva")
    report = history.person(f"r-{who}-{place}@example.com", name="Kai Weber")
    pair = history.pair(manager, report)
    series = history.series(pair, key=f"s-{who}-{tz}")
    history.occurrences(series, utc(2026, 9, 1, 20), ["held"] * 6 + ["rescheduled", "held",
                                                     "cancelled_no_reschedule", "held",
                                                     "cancelled_no_reschedule",
                                                     "cancelled_no_reschedule", None])
    return manager


@pytest.mark.parametrize(("tz", "due_utc"), [
    # Monday 23 Nov 2026 08:00 in Auckland (NZDT, UTC+13) is Sunday 19:00 UTC ...
    ("Pacific/Auckland", utc(2026, 11, 22, 19)),
    # ... and in Honolulu (HST, UTC-10) Monday 18:00 UTC: both are week 2026-W48 locally.
    ("Pacific/Honolulu", utc(2026, 11, 23, 18)),
    ("Europe/London", utc(2026, 11, 23, 8)),
])
def test_digest_is_due_at_the_managers_own_monday_morning(
        factory: sessionmaker[Session], history: History, settings: Settings, tz: str,
        due_utc: datetime) -> None:
    manager = _manager_with_history(history, tz=tz)
    before = digest.digest_due(factory, settings=settings,
                               now=due_utc - timedelta(minutes=1))
    at = digest.digest_due(factory, settings=settings, now=due_utc)
    assert all(x.manager_id != manager or x.iso_week != "2026-W48" for x in before)
    assert digest.DueDigest(manager, "2026-W48") in at


def test_send_time_follows_dst_and_the_configured_local_time(settings: Settings) -> None:
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    assert digest.send_at("2026-W13", berlin, settings) == utc(2026, 3, 23, 7)  # CET
    assert digest.send_at("2026-W14", berlin, settings) == utc(2026, 3, 30, 6)  # CEST
    later = settings.model_copy(update={"digest_weekday": 4, "digest_time": time(16, 30)})
    assert digest.send_at("2026-W14", berlin, later) == utc(2026, 4, 3, 14, 30)
    # 02:30 does not exist on 29 March 2026 in Berlin: it is read as 03:30 CEST.
    gap = settings.model_copy(update={"digest_weekday": 6, "digest_time": time(2, 30)})
    assert digest.send_at("2026-W13", berlin, gap) == utc(2026, 3, 29, 1, 30)


def test_digest_is_sent_once_and_reads_back_from_a_real_smtp_server(
        factory: sessionmaker[Session], history: History, settings: Settings,
        smtp: tuple[Inbox, str]) -> None:
    inbox, url = smtp
    manager = _manager_with_history(history, tz="Pacific/Auckland")
    now = utc(2026, 11, 22, 19, 5)
    transport = SmtpTransport(url)
    for _ in range(3):
        digest.send_digest(factory, settings=settings, manager_id=manager,
                           iso_week="2026-W48", now=now, transport=transport)
    assert len(inbox.messages) == 1
    msg = inbox.messages[0]
    assert msg["To"] == "boss-pacific-auckland@example.com"
    # the subject says what the body counts: twelve weeks, not "this week"
    assert msg["Subject"] == "Your 1:1s over the last 12 weeks: 9 of 12 took place, 1 to look at"
    assert str(msg["Message-ID"]).startswith("<digest.")
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Kai Weber" in text and "Start here" in text
    assert "HHHHHHRHXHXX" in text  # the twelve weeks, oldest first
    assert html.count('bgcolor="#dc2626"') == 3  # three dropped weeks in the strip
    assert "<img" not in html and "http" not in html.split("<body", 1)[1].split("Rapport")[0]
    assert digest.digest_due(factory, settings=settings, now=now) == []


class Killed(BaseException):
    """Stands in for a worker killed between claiming the message and the SMTP hand-off."""


class DiesOnce:
    def __init__(self, real: SmtpTransport) -> None:
        self.real = real
        self.calls = 0

    def send(self, msg: EmailMessage) -> None:
        self.calls += 1
        if self.calls == 1:
            raise Killed()
        self.real.send(msg)


def test_a_worker_killed_mid_send_leaves_exactly_one_digest(
        factory: sessionmaker[Session], history: History, settings: Settings,
        smtp: tuple[Inbox, str]) -> None:
    inbox, url = smtp
    manager = _manager_with_history(history, tz="Pacific/Honolulu")
    now = utc(2026, 11, 23, 18, 1)
    transport = DiesOnce(SmtpTransport(url))
    with pytest.raises(Killed):
        digest.send_digest(factory, settings=settings, manager_id=manager,
                           iso_week="2026-W48", now=now, transport=transport)
    with factory() as session:
        row = session.scalars(select(OutboxMessage)).one()
        assert row.status == OutboxStatus.SENDING.value
    # the reconciler sees nothing to do while the lease runs ...
    assert digest.digest_due(factory, settings=settings, now=now) == []
    # ... and sees the stuck digest once it has run out.
    later = now + LEASE + timedelta(seconds=1)
    assert digest.digest_due(factory, settings=settings, now=later) == [
        digest.DueDigest(manager, "2026-W48")]
    again = digest.send_digest(factory, settings=settings, manager_id=manager,
                               iso_week="2026-W48", now=now + timedelta(minutes=1),
                               transport=transport)
    assert again is not None and again.outcome == DeliveryOutcome.SKIPPED
    result = digest.send_digest(factory, settings=settings, manager_id=manager,
                                iso_week="2026-W48", now=later, transport=transport)
    assert result is not None and result.outcome == DeliveryOutcome.SENT and result.resent
    digest.send_digest(factory, settings=settings, manager_id=manager, iso_week="2026-W48",
                       now=later + timedelta(minutes=5), transport=transport)
    assert len(inbox.messages) == 1
    with factory() as session:
        assert session.scalars(select(OutboxMessage)).one().status == OutboxStatus.SENT.value
    assert digest.digest_due(factory, settings=settings, now=later) == []


def test_the_next_week_is_a_new_digest(factory: sessionmaker[Session], history: History,
                                       settings: Settings) -> None:
    manager = _manager_with_history(history, tz="Europe/London")
    with time_machine.travel(utc(2026, 11, 23, 9), tick=False):
        first = digest.enqueue_digest(factory, settings=settings, manager_id=manager,
                                      iso_week="2026-W48", now=utc(2026, 11, 23, 9))
    second = digest.enqueue_digest(factory, settings=settings, manager_id=manager,
                                   iso_week="2026-W49", now=utc(2026, 11, 30, 9))
    assert first != second
    with factory() as session:
        keys = set(session.scalars(select(OutboxMessage.dedupe_key)))
    assert keys == {f"digest:{manager}:2026-W48", f"digest:{manager}:2026-W49"}


def test_an_opted_out_manager_gets_no_digest(factory: sessionmaker[Session], history: History,
                                             settings: Settings) -> None:
    from service.people.models import Person

    manager = _manager_with_history(history, tz="UTC")
    with factory.begin() as session:
        person = session.get(Person, manager)
        assert person is not None
        person.opted_out = True
    assert digest.digest_due(factory, settings=settings, now=utc(2026, 11, 23, 9)) == []


def test_the_first_digest_waits_for_a_whole_week_of_watching(
        factory: sessionmaker[Session], history: History, settings: Settings) -> None:
    manager = history.person("new@example.com", tz="UTC")
    report = history.person("r@example.com")
    history.pair(manager, report, created_at=utc(2026, 11, 18, 12))  # Wednesday of W47
    assert digest.digest_due(factory, settings=settings, now=utc(2026, 11, 23, 9)) == []
    assert digest.digest_due(factory, settings=settings, now=utc(2026, 11, 30, 9)) == [
        digest.DueDigest(manager, "2026-W49")]


def test_a_digest_more_than_three_days_late_is_skipped(
        factory: sessionmaker[Session], history: History, settings: Settings) -> None:
    manager = _manager_with_history(history, tz="Europe/London")
    assert digest.digest_due(factory, settings=settings, now=utc(2026, 11, 26, 7)) == [
        digest.DueDigest(manager, "2026-W48")]
    assert digest.digest_due(factory, settings=settings, now=utc(2026, 11, 26, 9)) == []


def _set_opted_out(factory: sessionmaker[Session], person_id: int, value: bool) -> None:
    from service.people.models import Person

    with factory.begin() as session:
        person = session.get(Person, person_id)
        assert person is not None
        person.opted_out = value


def _mark_sent(factory: sessionmaker[Session]) -> None:
    """Every queued email delivered (what the outbox's own actor does)."""
    with factory.begin() as session:
        session.execute(update(OutboxMessage).values(status=OutboxStatus.SENT.value))


def test_a_zone_whose_digests_are_all_queued_is_not_walked_again_within_the_recheck(
        factory: sessionmaker[Session], history: History, settings: Settings) -> None:
    """Once a pass finds nobody due in an open zone, later passes read the zone rows only
    (no person); a manager who becomes due meanwhile (opted in again) is found when the mark
    is `RECHECK` old, still within the catch-up, and gets exactly one digest."""
    from tests.statements import statements

    monday = utc(2026, 11, 23, 9)  # London's send window of W48 is open
    sent = _manager_with_history(history, tz="Europe/London", who="sent")
    with time_machine.travel(monday, tick=False):
        digest.enqueue_digest(factory, settings=settings, manager_id=sent,
                              iso_week="2026-W48", now=monday)
    _mark_sent(factory)
    manager = _manager_with_history(history, tz="Europe/London")
    _set_opted_out(factory, manager, True)
    assert digest.digest_due(factory, settings=settings, now=monday) == []  # marks W48 done
    with statements(factory) as seen:
        assert digest.digest_due(factory, settings=settings,
                                 now=monday + timedelta(minutes=1)) == []
    assert seen and not [s for s in seen if "FROM people" in s.sql]
    _set_opted_out(factory, manager, False)
    assert digest.digest_due(factory, settings=settings,
                             now=monday + timedelta(minutes=2)) == []  # the mark holds
    later = monday + digest.RECHECK + timedelta(minutes=1)
    assert digest.digest_due(factory, settings=settings, now=later) == [
        digest.DueDigest(manager, "2026-W48")]
    with time_machine.travel(later, tick=False):
        digest.enqueue_digest(factory, settings=settings, manager_id=manager,
                              iso_week="2026-W48", now=later)
    _mark_sent(factory)
    assert digest.digest_due(factory, settings=settings, now=later) == []
    assert digest.digest_due(factory, settings=settings, now=later + 2 * digest.RECHECK) == []


def test_a_new_zone_of_managers_is_read_within_the_recheck(
        factory: sessionmaker[Session], history: History, settings: Settings) -> None:
    london = _manager_with_history(history, tz="Europe/London")
    sunday = utc(2026, 11, 22, 19, 30)  # Auckland's W48 window is open, London's is not
    assert digest.digest_due(factory, settings=settings, now=sunday) == []  # zones read
    auckland = _manager_with_history(history, tz="Pacific/Auckland")
    assert digest.digest_due(factory, settings=settings, now=sunday + timedelta(minutes=1)) == []
    assert digest.digest_due(factory, settings=settings, now=sunday + digest.RECHECK) == [
        digest.DueDigest(auckland, "2026-W48")]
    assert london != auckland
