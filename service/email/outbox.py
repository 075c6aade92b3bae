"""The outbox: every people-facing email is a row first, so each one goes out once.

Exactly-once, as the recipient sees it, rests on two things: a unique `dedupe_key` (one row per
alert or digest, however often the work is retried) and a Message-ID derived from that key (a
re-send after a crash carries the same Message-ID, so mail clients and servers can drop it).

A row moves PENDING -> SENDING -> SENT, or back to PENDING with a backoff after a transport
error, or to FAILED after `MAX_ATTEMPTS`. SUPPRESSED rows (opted out) are never sent.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.db import chunks, dialect_insert
from service.email.models import OutboxMessage, OutboxStatus
from service.email.render import RenderedEmail
from service.email.transport import Transport, address_domain, build_message
from service.observability import EMAILS
from service.people.models import Person

log = logging.getLogger(__name__)

# A SENDING row older than this belongs to a worker that died. A live send ends well within
# it: the SMTP transport gives up on any step that stalls for its timeout (30 s by default),
# and a message goes in one short session. A re-send after a crash carries the same
# Message-ID, so the rare duplicate (the worker died after DATA was accepted) is dropped.
LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=6)
DEFAULT_ID_DOMAIN = "rapport.localhost"

_NOT_ATOM = re.compile(r"[^A-Za-z0-9_-]+")
_LINE_BREAK = re.compile(r"[\r\n]")
_SUBJECT_MAX = 500  # the column's size


class DeliveryOutcome(enum.StrEnum):
    SENT = "sent"  # handed to the transport and marked SENT
    RETRY = "retry"  # transport error; back to PENDING with a later not_before
    FAILED = "failed"  # permanent error or too many attempts; never retried
    SUPPRESSED = "suppressed"  # recipient opted out; never sent
    SKIPPED = "skipped"  # not ours to send: already sent, claimed elsewhere, not due, or gone


@dataclass(frozen=True)
class DeliveryResult:
    """What one `deliver` call did; `resent` marks a re-send after an expired lease."""

    message_id: int
    outcome: DeliveryOutcome
    attempts: int = 0
    resent: bool = False
    error: str | None = None
    retry_at: datetime | None = None


def make_message_id(dedupe_key: str, *, domain: str = DEFAULT_ID_DOMAIN) -> str:
    """A stable RFC 5322 Message-ID for a dedupe key: readable key, plus a hash against clashes."""
    readable = _NOT_ATOM.sub(".", dedupe_key).strip(".")[:100].strip(".") or "message"
    digest = hashlib.sha256(dedupe_key.encode()).hexdigest()[:16]
    return f"<{readable}.{digest}@{domain}>"


def backoff(attempts: int) -> timedelta:
    """Delay before the next try after `attempts` tries: 1, 2, 4 ... minutes, capped at 6 hours."""
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)


def _fit(text: str, limit: int) -> str:
    """`text`, cut with an ellipsis when longer than `limit` (a long subject must not fail)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _opted_out(session: Session, addresses: Iterable[str]) -> set[str]:
    """The addresses (lower-cased) of people who get no Rapport email: they asked not to,
    or their company directory has them suspended or no longer lists them. Every sender
    (alerts, digests) goes through the outbox, so this one check covers them all."""
    wanted = {a.strip().lower() for a in addresses if a.strip()}
    if not wanted:
        return set()
    rows = session.scalars(
        select(func.lower(Person.email)).where(
            func.lower(Person.email).in_(wanted),
            Person.opted_out.is_(True) | Person.suspended.is_(True) | Person.left_at.is_not(None),
        )
    )
    return set(rows)


def enqueue(
    session: Session,
    *,
    kind: str,
    dedupe_key: str,
    recipient: str,
    rendered: RenderedEmail,
    cc: Iterable[str] | None = None,
    not_before: datetime | None = None,
    message_id_domain: str = DEFAULT_ID_DOMAIN,
) -> OutboxMessage:
    """Queue an email in the caller's transaction, or return the row `dedupe_key` already has.

    Race-safe without a savepoint: INSERT ... ON CONFLICT (dedupe_key) DO NOTHING on SQLite and
    PostgreSQL, so a concurrent duplicate neither raises nor aborts the caller's transaction.
    Opted-out recipients get a SUPPRESSED row (the key stays used); opted-out Cc's are dropped.
    """
    for address in [recipient, *(cc or [])]:
        if "@" not in address or _LINE_BREAK.search(address):
            raise ValueError(f"not a usable email address for outbox {dedupe_key!r}")
    existing = session.scalars(
        select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key)
    ).one_or_none()
    if existing is not None:
        return existing

    opted_out = _opted_out(session, [recipient, *(cc or [])])
    cc_kept = [a.strip() for a in cc or [] if a.strip() and a.strip().lower() not in opted_out]
    suppressed = recipient.strip().lower() in opted_out
    values = {
        "kind": kind,
        "dedupe_key": dedupe_key,
        "recipient": recipient.strip(),
        "cc": ", ".join(cc_kept) or None,
        "subject": _fit(rendered.subject, _SUBJECT_MAX),
        "body_text": rendered.text,
        "body_html": rendered.html,
        "message_id": make_message_id(dedupe_key, domain=message_id_domain),
        "status": (OutboxStatus.SUPPRESSED if suppressed else OutboxStatus.PENDING).value,
        "not_before": not_before,
        "last_error": "recipient opted out or left" if suppressed else None,
    }
    stmt = (
        dialect_insert(session, OutboxMessage)
        .values(values)
        .on_conflict_do_nothing(index_elements=[OutboxMessage.dedupe_key])
    )
    new_id = session.scalar(stmt.returning(OutboxMessage.id))
    row = session.scalars(select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key)).one()
    if new_id is not None:
        log.info(
            "outbox %s: queued %s for domain %s%s",
            row.id,
            kind,
            address_domain(recipient),
            " (suppressed: opted out)" if suppressed else "",
        )
    return row


def due_messages(session: Session, *, now: datetime, lease: timedelta = LEASE) -> list[int]:
    """Ids to hand to `deliver`: PENDING and due, plus SENDING rows whose worker lease ran out."""
    stmt = (
        select(OutboxMessage.id)
        .where(
            or_(
                (OutboxMessage.status == OutboxStatus.PENDING.value)
                & or_(OutboxMessage.not_before.is_(None), OutboxMessage.not_before <= now),
                (OutboxMessage.status == OutboxStatus.SENDING.value)
                & (OutboxMessage.sending_since <= now - lease),
            )
        )
        .order_by(OutboxMessage.id)
    )
    return list(session.scalars(stmt))




def used_keys(session: Session, keys: Iterable[str]) -> set[str]:
    """Which of `keys` already have an outbox row: one indexed query per 500 keys, so a
    caller checks a whole batch of "once" emails at once, not one query per email."""
    wanted = sorted(set(keys))
    used: set[str] = set()
    for chunk in chunks(wanted):
        used |= set(session.scalars(select(OutboxMessage.dedupe_key).where(
            OutboxMessage.dedupe_key.in_(chunk))))
    return used


def _error_text(err: Exception) -> str:
    """A short, body-free description of a failure for `last_error` and logs."""
    return f"{type(err).__name__}: {err}"[:500]


@dataclass(frozen=True)
class _Claim:
    """What the send and the result need of a claimed row, independent of any session."""

    id: int
    kind: str
    recipient: str
    attempts: int  # after this claim; also the fencing token for the result
    not_before: datetime | None
    resent: bool


def deliver(
    session_factory: sessionmaker[Session],
    *,
    message_id: int,
    transport: Transport,
    now: datetime,
    sender: str,
    lease: timedelta = LEASE,
    max_attempts: int = MAX_ATTEMPTS,
    unsubscribe_url: Callable[[OutboxMessage], str | None] | None = None,
) -> DeliveryResult:
    """Send one outbox row at most once per claim; safe to call twice, from two workers at once.

    1. Claim: a compare-and-set UPDATE (PENDING -> SENDING, attempts + 1, sending_since = now)
       guarded by the status and attempt count just read, committed before any network I/O,
       so of two workers only one wins, and no database lock is held while SMTP talks.
    2. Send through `transport`, outside any transaction.
    3. Record: SENT, or PENDING with an exponential backoff, or FAILED (permanent error or
       `max_attempts` reached). The attempt count doubles as a fencing token, so a worker
       whose lease was taken over does not overwrite the newer claim.

    A row still SENDING after `lease` means its worker died between claim and result. We
    cannot know whether that happened before or after the SMTP server accepted DATA, so we
    choose at-least-once: claim it again and re-send with the SAME Message-ID, recording the
    re-send in `last_error`. Losing a cancellation alert silently is worse than a rare
    duplicate, and the unchanged Message-ID lets servers and clients drop that duplicate.
    Attempts are counted at claim time, so a message that kills its worker every time still
    ends FAILED after `max_attempts` instead of looping.
    """
    with session_factory() as session:
        claim_or_result = _claim(
            session, message_id=message_id, now=now, lease=lease, max_attempts=max_attempts
        )
        if isinstance(claim_or_result, DeliveryResult):
            return claim_or_result
        claim = claim_or_result
        row = session.get_one(OutboxMessage, message_id)
        msg = build_message(
            row,
            sender=sender,
            date=now,
            unsubscribe_url=unsubscribe_url(row) if unsubscribe_url else None,
        )
    if claim.resent:
        log.warning(
            "outbox %s: lease expired (worker stopped mid-send); re-sending %s with the "
            "same Message-ID",
            claim.id,
            claim.kind,
        )

    try:
        transport.send(msg)
    except Exception as err:  # any failure to send is recorded; a crash leaves SENDING (lease)
        EMAILS.labels("failed").inc()
        return _record_failure(session_factory, claim, err, now=now, max_attempts=max_attempts)

    with session_factory() as session:
        # Not fenced: the mail has left, so SENT is true even if our lease was taken over.
        session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == claim.id,
                OutboxMessage.status.in_([OutboxStatus.SENDING.value, OutboxStatus.PENDING.value]),
            )
            .values(status=OutboxStatus.SENT.value, sent_at=now, sending_since=None)
        )
        session.commit()
    EMAILS.labels("sent").inc()
    log.info(
        "outbox %s: sent %s to domain %s (attempt %s%s)",
        claim.id,
        claim.kind,
        address_domain(claim.recipient),
        claim.attempts,
        ", re-send after expired lease" if claim.resent else "",
    )
    return DeliveryResult(
        claim.id, DeliveryOutcome.SENT, attempts=claim.attempts, resent=claim.resent
    )


def _claim(
    session: Session, *, message_id: int, now: datetime, lease: timedelta, max_attempts: int
) -> _Claim | DeliveryResult:
    """Take the row for sending (committed), or say why not: the first half of `deliver`."""
    row = session.get(OutboxMessage, message_id)
    if row is None:
        return DeliveryResult(message_id, DeliveryOutcome.SKIPPED, error="no such message")
    status, seen = OutboxStatus(row.status), row.attempts  # what the compare-and-set expects
    expired = (
        status is OutboxStatus.SENDING
        and row.sending_since is not None
        and row.sending_since <= now - lease
    )
    due = status is OutboxStatus.PENDING and (row.not_before is None or row.not_before <= now)
    if not (due or expired):
        return DeliveryResult(message_id, DeliveryOutcome.SKIPPED, attempts=seen)

    if row.recipient.strip().lower() in _opted_out(session, [row.recipient]):
        # Opted out after it was queued: it stays unsent forever.
        won = _compare_and_set(
            session,
            message_id,
            seen=(status, seen),
            values={
                "status": OutboxStatus.SUPPRESSED.value,
                "last_error": "recipient opted out or left",
                "sending_since": None,
            },
        )
        session.commit()
        outcome = DeliveryOutcome.SUPPRESSED if won else DeliveryOutcome.SKIPPED
        return DeliveryResult(message_id, outcome, attempts=seen)

    if expired and seen >= max_attempts:
        error = f"worker stopped mid-send {seen} times; giving up"
        won = _compare_and_set(
            session,
            message_id,
            seen=(status, seen),
            values={
                "status": OutboxStatus.FAILED.value,
                "last_error": error,
                "sending_since": None,
            },
        )
        session.commit()
        if won:
            log.error("outbox %s: %s", message_id, error)
        outcome = DeliveryOutcome.FAILED if won else DeliveryOutcome.SKIPPED
        return DeliveryResult(message_id, outcome, attempts=seen, error=error if won else None)

    values: dict[str, object] = {
        "status": OutboxStatus.SENDING.value,
        "sending_since": now,
        "attempts": seen + 1,
    }
    if expired:
        values["last_error"] = (
            f"lease expired; re-sent at {now.isoformat()} with the same Message-ID"
        )
    won = _compare_and_set(session, message_id, seen=(status, seen), values=values)
    session.commit()
    if not won:
        return DeliveryResult(message_id, DeliveryOutcome.SKIPPED, attempts=seen)
    return _Claim(
        id=message_id,
        kind=row.kind,
        recipient=row.recipient,
        attempts=seen + 1,
        not_before=row.not_before,
        resent=expired,
    )


def _compare_and_set(
    session: Session,
    message_id: int,
    *,
    seen: tuple[OutboxStatus, int],
    values: dict[str, object],
) -> bool:
    """UPDATE the row only if it still has the status and attempt count we saw; True if it did."""
    result = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == message_id,
            OutboxMessage.status == seen[0].value,
            OutboxMessage.attempts == seen[1],
        )
        .values(values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def _record_failure(
    session_factory: sessionmaker[Session],
    claim: _Claim,
    err: Exception,
    *,
    now: datetime,
    max_attempts: int,
) -> DeliveryResult:
    """Back to PENDING with a backoff, or FAILED when permanent or out of attempts."""
    error = _error_text(err)
    give_up = bool(getattr(err, "permanent", False)) or claim.attempts >= max_attempts
    retry_at = None if give_up else now + backoff(claim.attempts)
    with session_factory() as session:
        _compare_and_set(
            session,
            claim.id,
            seen=(OutboxStatus.SENDING, claim.attempts),
            values={
                "status": (OutboxStatus.FAILED if give_up else OutboxStatus.PENDING).value,
                "not_before": retry_at or claim.not_before,
                "sending_since": None,
                "last_error": error,
            },
        )
        session.commit()
    domain = address_domain(claim.recipient)
    if give_up:
        log.error(
            "outbox %s: giving up on %s to domain %s after %s attempt(s): %s",
            claim.id,
            claim.kind,
            domain,
            claim.attempts,
            error,
        )
        outcome = DeliveryOutcome.FAILED
    else:
        log.warning(
            "outbox %s: attempt %s of %s to domain %s failed, retry at %s: %s",
            claim.id,
            claim.attempts,
            claim.kind,
            domain,
            retry_at,
            error,
        )
        outcome = DeliveryOutcome.RETRY
    return DeliveryResult(
        claim.id,
        outcome,
        attempts=claim.attempts,
        resent=claim.resent,
        error=error,
        retry_at=retry_at,
    )
