"""The outbox sends each email once: unique keys, claims, retries and lease expiry."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import SmtpServer
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.email.models import OutboxMessage, OutboxStatus
from service.email.outbox import (
    LEASE,
    DeliveryOutcome,
    backoff,
    deliver,
    due_messages,
    enqueue,
    make_message_id,
)
from service.email.render import RenderedEmail
from service.email.transport import SmtpTransport, TransportError
from service.people.models import Person

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SENDER = "Rapport <rapport@example.org>"
EMAIL = RenderedEmail(
    subject="Your 1:1 with Sam was dropped",
    text="Plain text body\n",
    html="<html><body><p>HTML body</p></body></html>",
)


def queue(factory: sessionmaker[Session], key: str = "alert:occ:1", **kwargs: object) -> int:
    """Enqueue one email in its own transaction and return the row id."""
    args: dict[str, object] = {
        "kind": "alert",
        "dedupe_key": key,
        "recipient": "ann@example.com",
        "rendered": EMAIL,
    }
    args.update(kwargs)
    with factory() as session:
        row = enqueue(session, **args)  # type: ignore[arg-type]
        session.commit()
        return row.id


def load(factory: sessionmaker[Session], message_id: int) -> OutboxMessage:
    with factory() as session:
        return session.get_one(OutboxMessage, message_id)


def due(factory: sessionmaker[Session], *, now: datetime) -> list[int]:
    with factory() as session:  # closed at once: a SQLite session may hold the write lock
        return due_messages(session, now=now)


def smtp(server: SmtpServer) -> SmtpTransport:
    return SmtpTransport(f"smtp://{server.host}:{server.port}?starttls=never&timeout=5")


class FlakyTransport:
    """Fails the first `failures` sends, then passes messages on to `inner`."""

    def __init__(self, inner: SmtpTransport, failures: int, permanent: bool = False) -> None:
        self.inner, self.failures, self.permanent, self.calls = inner, failures, permanent, 0

    def send(self, msg: object) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise TransportError("421 try again later", permanent=self.permanent)
        self.inner.send(msg)  # type: ignore[arg-type]


class WorkerCrash(BaseException):
    """Stands in for the process dying: not an Exception, so `deliver` cannot record it."""


class CrashingTransport:
    """Sends through `inner` first when `after_data`, then dies like a killed worker."""

    def __init__(self, inner: SmtpTransport | None) -> None:
        self.inner = inner

    def send(self, msg: object) -> None:
        if self.inner is not None:
            self.inner.send(msg)  # type: ignore[arg-type]
        raise WorkerCrash


def test_enqueue_twice_with_the_same_key_keeps_one_row(factory: sessionmaker[Session]) -> None:
    first = queue(factory)
    second = queue(factory, subject_ignored=None) if False else queue(factory)
    with factory() as session:
        count = session.scalar(select(func.count()).select_from(OutboxMessage))
    assert first == second
    assert count == 1


def test_enqueue_race_on_the_same_key_returns_the_winners_row(
    factory: sessionmaker[Session],
) -> None:
    winner = factory()
    row = enqueue(
        winner,
        kind="alert",
        dedupe_key="alert:occ:7",
        recipient="ann@example.com",
        rendered=EMAIL,
    )
    results: list[int] = []

    def loser() -> None:
        # Its pre-check sees nothing (the winner has not committed); its INSERT must wait.
        results.append(queue(factory, "alert:occ:7"))

    thread = threading.Thread(target=loser)
    thread.start()
    time.sleep(0.3)
    winner.commit()
    winner.close()
    thread.join(timeout=10)
    assert results == [row.id]
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_enqueue_is_rolled_back_with_the_callers_transaction(
    factory: sessionmaker[Session],
) -> None:
    with factory() as session:
        enqueue(
            session,
            kind="alert",
            dedupe_key="alert:occ:2",
            recipient="ann@example.com",
            rendered=EMAIL,
        )
        session.rollback()
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_message_id_is_stable_for_a_key_and_differs_between_keys() -> None:
    assert make_message_id("alert:occ:1") == make_message_id("alert:occ:1")
    assert make_message_id("alert:occ:1") != make_message_id("alert.occ.1")
    assert make_message_id("digest:7:2026-W48", domain="example.org").endswith("@example.org>")


def test_deliver_sends_one_message_with_both_parts_recipients_and_subject(
    factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    message_id = queue(factory, cc=["boss@example.com"])
    result = deliver(
        factory, message_id=message_id, transport=smtp(smtp_server), now=NOW, sender=SENDER
    )
    assert result.outcome is DeliveryOutcome.SENT
    [got] = smtp_server.collector.messages
    assert sorted(got.rcpt_tos) == ["ann@example.com", "boss@example.com"]
    assert got.mail_from == "rapport@example.org"
    msg = got.message
    assert msg["Subject"] == EMAIL.subject
    assert msg["To"] == "ann@example.com"
    assert msg["Cc"] == "boss@example.com"
    assert msg["Message-ID"] == make_message_id("alert:occ:1")
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert text is not None and text.get_content().replace("\r\n", "\n") == EMAIL.text
    assert html is not None and "HTML body" in html.get_content()
    row = load(factory, message_id)
    assert (row.status, row.sent_at, row.attempts) == (OutboxStatus.SENT, NOW, 1)


def test_a_sent_message_is_never_sent_again(
    factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    message_id = queue(factory)
    transport = smtp(smtp_server)
    deliver(factory, message_id=message_id, transport=transport, now=NOW, sender=SENDER)
    later = NOW + timedelta(days=1)
    again = deliver(factory, message_id=message_id, transport=transport, now=later, sender=SENDER)
    assert again.outcome is DeliveryOutcome.SKIPPED
    assert due(factory, now=later) == []
    assert len(smtp_server.collector.messages) == 1


def test_two_workers_delivering_the_same_row_send_exactly_one_message(
    factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    ids = [queue(factory, f"alert:occ:{n}") for n in range(5)]
    transport = smtp(smtp_server)
    outcomes: list[DeliveryOutcome] = []
    lock = threading.Lock()

    def worker(message_id: int, barrier: threading.Barrier) -> None:
        barrier.wait()
        result = deliver(
            factory, message_id=message_id, transport=transport, now=NOW, sender=SENDER
        )
        with lock:
            outcomes.append(result.outcome)

    for message_id in ids:
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=worker, args=(message_id, barrier)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)

    assert len(smtp_server.collector.messages) == len(ids)
    assert sorted(m.message["Message-ID"] for m in smtp_server.collector.messages) == sorted(
        make_message_id(f"alert:occ:{n}") for n in range(5)
    )
    assert outcomes.count(DeliveryOutcome.SENT) == len(ids)
    assert outcomes.count(DeliveryOutcome.SKIPPED) == len(ids)


def test_a_transport_failure_is_retried_after_a_backoff_and_sent_once(
    factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    message_id = queue(factory)
    transport = FlakyTransport(smtp(smtp_server), failures=1)

    first = deliver(factory, message_id=message_id, transport=transport, now=NOW, sender=SENDER)
    assert first.outcome is DeliveryOutcome.RETRY
    assert first.retry_at == NOW + backoff(1)
    row = load(factory, message_id)
    assert (row.status, row.attempts, row.not_before) == (OutboxStatus.PENDING, 1, first.retry_at)
    assert row.last_error is not None and "421 try again later" in row.last_error
    assert EMAIL.text not in row.last_error

    assert due(factory, now=NOW) == []
    early = deliver(factory, message_id=message_id, transport=transport, now=NOW, sender=SENDER)
    assert early.outcome is DeliveryOutcome.SKIPPED
    assert due(factory, now=first.retry_at) == [message_id]

    second = deliver(
        factory, message_id=message_id, transport=transport, now=first.retry_at, sender=SENDER
    )
    assert second.outcome is DeliveryOutcome.SENT
    assert len(smtp_server.collector.messages) == 1
    row = load(factory, message_id)
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 2)


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff(n) for n in (1, 2, 3)] == [timedelta(minutes=m) for m in (1, 2, 4)]
    assert backoff(30) == timedelta(hours=6)


def test_a_message_fails_for_good_after_the_last_attempt(
    factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    message_id = queue(factory)
    transport = FlakyTransport(smtp(smtp_server), failures=99)
    now = NOW
    outcomes = []
    for _ in range(3):
        result = deliver(
            factory,
            message_id=message_id,
            transport=transport,
            now=now,
            sender=SENDER,
            max_attempts=3,
        )
        outcomes.append(result.outcome)
        now = result.retry_at or now
    assert outcomes == [DeliveryOutcome.RETRY, DeliveryOutcome.RETRY, DeliveryOutcome.FAILED]
    assert load(factory, message_id).status == OutboxStatus.FAILED
    assert due(factory, now=now + timedelta(days=1)) == []


def test_a_refused_recipient_fails_at_once_without_retries(
    factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    smtp_server.collector.refuse_domain = "gone.example"
    message_id = queue(factory, recipient="left@gone.example")
    result = deliver(
        factory, message_id=message_id, transport=smtp(smtp_server), now=NOW, sender=SENDER
    )
    assert result.outcome is DeliveryOutcome.FAILED
    assert result.attempts == 1
    assert load(factory, message_id).status == OutboxStatus.FAILED


@pytest.mark.parametrize("after_data", [False, True], ids=["before-data", "after-data"])
def test_a_worker_crash_mid_send_is_resent_after_the_lease_with_the_same_message_id(
    factory: sessionmaker[Session], smtp_server: SmtpServer, after_data: bool
) -> None:
    message_id = queue(factory)
    transport = smtp(smtp_server)
    with pytest.raises(WorkerCrash):
        deliver(
            factory,
            message_id=message_id,
            transport=CrashingTransport(transport if after_data else None),
            now=NOW,
            sender=SENDER,
        )
    assert load(factory, message_id).status == OutboxStatus.SENDING

    # Inside the lease nobody touches it: the first worker might still be talking SMTP.
    soon = NOW + LEASE - timedelta(seconds=1)
    assert due(factory, now=soon) == []
    busy = deliver(factory, message_id=message_id, transport=transport, now=soon, sender=SENDER)
    assert busy.outcome is DeliveryOutcome.SKIPPED

    later = NOW + LEASE
    assert due(factory, now=later) == [message_id]
    result = deliver(factory, message_id=message_id, transport=transport, now=later, sender=SENDER)
    assert (result.outcome, result.resent, result.attempts) == (DeliveryOutcome.SENT, True, 2)
    row = load(factory, message_id)
    assert row.status == OutboxStatus.SENT
    assert row.last_error is not None and "lease expired" in row.last_error

    ids = {m.message["Message-ID"] for m in smtp_server.collector.messages}
    assert ids == {make_message_id("alert:occ:1")}
    assert len(smtp_server.collector.messages) == (2 if after_data else 1)

    final = deliver(
        factory,
        message_id=message_id,
        transport=transport,
        now=later + LEASE * 2,
        sender=SENDER,
    )
    assert final.outcome is DeliveryOutcome.SKIPPED
    assert len(smtp_server.collector.messages) == (2 if after_data else 1)


def test_a_message_that_keeps_killing_its_worker_ends_failed(
    factory: sessionmaker[Session],
) -> None:
    message_id = queue(factory)
    now = NOW
    for _ in range(2):
        with pytest.raises(WorkerCrash):
            deliver(
                factory,
                message_id=message_id,
                transport=CrashingTransport(None),
                now=now,
                sender=SENDER,
                max_attempts=2,
            )
        now += LEASE
    result = deliver(
        factory,
        message_id=message_id,
        transport=CrashingTransport(None),
        now=now,
        sender=SENDER,
        max_attempts=2,
    )
    assert result.outcome is DeliveryOutcome.FAILED
    assert load(factory, message_id).status == OutboxStatus.FAILED


def test_an_opted_out_recipient_is_never_sent_to(
    factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    with factory() as session:
        session.add(Person(email="Ann@Example.com", opted_out=True))
        session.commit()
    message_id = queue(factory)
    assert load(factory, message_id).status == OutboxStatus.SUPPRESSED
    assert due(factory, now=NOW + timedelta(days=1)) == []
    result = deliver(
        factory, message_id=message_id, transport=smtp(smtp_server), now=NOW, sender=SENDER
    )
    assert result.outcome is DeliveryOutcome.SKIPPED
    assert smtp_server.collector.messages == []


def test_a_recipient_who_opts_out_after_queueing_is_not_sent_to(
    factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    message_id = queue(factory)
    with factory() as session:
        session.add(Person(email="ann@example.com", opted_out=True))
        session.commit()
    result = deliver(
        factory, message_id=message_id, transport=smtp(smtp_server), now=NOW, sender=SENDER
    )
    assert result.outcome is DeliveryOutcome.SUPPRESSED
    assert load(factory, message_id).status == OutboxStatus.SUPPRESSED
    assert smtp_server.collector.messages == []


def test_an_opted_out_cc_is_dropped_but_the_recipient_still_gets_it(
    factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    with factory() as session:
        session.add(Person(email="sam@example.com", opted_out=True))
        session.commit()
    message_id = queue(factory, cc=["sam@example.com", "boss@example.com"])
    deliver(factory, message_id=message_id, transport=smtp(smtp_server), now=NOW, sender=SENDER)
    [got] = smtp_server.collector.messages
    assert sorted(got.rcpt_tos) == ["ann@example.com", "boss@example.com"]


def test_a_message_queued_for_later_waits_until_it_is_due(
    factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    message_id = queue(factory, not_before=NOW + timedelta(hours=1))
    assert due(factory, now=NOW) == []
    early = deliver(
        factory, message_id=message_id, transport=smtp(smtp_server), now=NOW, sender=SENDER
    )
    assert early.outcome is DeliveryOutcome.SKIPPED
    assert due(factory, now=NOW + timedelta(hours=1)) == [message_id]


def test_an_address_with_a_line_break_is_refused_before_it_reaches_a_header(
    factory: sessionmaker[Session],
) -> None:
    with pytest.raises(ValueError, match="alert:occ:9"):
        queue(factory, "alert:occ:9", recipient="ann@example.com\r\nBcc: all@example.com")


def test_an_overlong_subject_is_shortened_not_refused(factory: sessionmaker[Session]) -> None:
    long = RenderedEmail(subject="x" * 600, text=EMAIL.text, html=EMAIL.html)
    row = load(factory, queue(factory, rendered=long))
    assert len(row.subject) == 500 and row.subject.endswith("…")
