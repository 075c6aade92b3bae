"""A company seeded straight into the database, for what the reconciler reads: `pairs` 1:1s,
each with its people, the manager's account and calendar (synced, with a live channel),
three weeks of history and three meetings ahead, and every email already sent.

Nothing in it is due at `NOW` once the parts have made one pass (the first pass marks the
prep nudges sent before the marker existed). Some rows of each kind that the reconciler
must look past are there in proportion: drops already alerted, a standing coffee booked
before a drop, checks still in their grace period, accounts that need re-consent and had
their email, series that are not 1:1s. Core inserts: 50,000 pairs take seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from service.accounts.models import Account, AccountStatus
from service.calendars.models import Calendar
from service.email.models import OutboxMessage, OutboxStatus
from service.email.reconsent import KIND as RECONSENT
from service.metrics.digest import dedupe_key as digest_key
from service.pairs.models import AdHocMeeting, Occurrence, Outcome, Pair, Series
from service.people.models import Person
from service.prep.nudge import dedupe_key as prep_key

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)  # a Monday: Berlin's and UTC's digests are out
WEEK = "2026-W49"
ZONES = ("Europe/Berlin", "America/New_York", None)
HOUR = timedelta(hours=1)
CHUNK = 2_000


def _insert(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), CHUNK):
        session.execute(insert(model), rows[i:i + CHUNK])


def _email(kind: str, key: str, recipient: str) -> dict[str, Any]:
    return {"kind": kind, "dedupe_key": key, "recipient": recipient, "subject": "s",
            "body_text": "t", "body_html": "h", "message_id": f"<{key}@seed>",
            "status": OutboxStatus.SENT.value, "attempts": 1, "sent_at": NOW - HOUR}


def seed(session: Session, *, pairs: int) -> None:
    """`pairs` 1:1s with nothing due at `NOW` (see the module docstring)."""
    people = [{"id": 2 * i + k + 1, "email": f"{'mr'[k]}{i}@acme.test",
               "time_zone": ZONES[i % len(ZONES)], "opted_out": False, "suspended": False}
              for i in range(pairs) for k in (0, 1)]
    _insert(session, Person, people)
    _insert(session, Pair, [{"id": i + 1, "manager_id": 2 * i + 1, "report_id": 2 * i + 2,
                             "muted": False, "created_at": NOW - timedelta(days=90)}
                            for i in range(pairs)])
    accounts, calendars, emails, series, occurrences, coffees = [], [], [], [], [], []
    ids = count(1)
    for i in range(pairs):
        manager, report = 2 * i + 1, 2 * i + 2
        flagged = i % 10 == 3
        accounts.append({"id": i + 1, "provider": "google", "email": f"m{i}@acme.test",
                         "person_id": manager, "credentials_encrypted": b"x",
                         "status": (AccountStatus.NEEDS_RECONSENT if flagged
                                    else AccountStatus.ACTIVE).value,
                         "status_changed_at": NOW - timedelta(days=1),
                         "created_at": NOW - timedelta(days=90)})
        if flagged:
            since = (NOW - timedelta(days=1)).isoformat()
            emails.append(_email(RECONSENT, f"{RECONSENT}:{i + 1}:{since}", f"m{i}@acme.test"))
        calendars.append({"id": i + 1, "account_id": i + 1, "provider_calendar_id": "primary",
                          "last_sync_at": NOW - timedelta(minutes=1),
                          "subscription_id": f"ch-{i}",
                          "subscription_expires_at": NOW + timedelta(days=3)})
        emails.append(_email("digest", digest_key(manager, WEEK), f"m{i}@acme.test"))
        series.append({"id": i + 1, "series_key": f"s{i}", "pair_id": i + 1, "title": "1:1",
                       "human_count": 2, "confidence": 1.0, "cadence_days": 7,
                       "status": "active", "detection_reason": ""})
        start = NOW.replace(hour=10) - timedelta(days=21)
        for week in range(3):  # history: held, the last one dropped for every fifth pair
            at = start + timedelta(weeks=week)
            dropped = week == 2 and i % 5 == 0
            occurrences.append(_occurrence(
                ids, i, at, status="cancelled" if dropped else "confirmed",
                outcome=Outcome.CANCELLED_NO_RESCHEDULE if dropped else Outcome.HELD,
                dropped_at=at - timedelta(days=1) if dropped else None))
            if dropped:  # a standing coffee of the two, booked long before the drop
                coffees.append({"calendar_id": i + 1, "provider_event_id": f"coffee-{i}",
                                "people_key": f"m{i}@acme.test|r{i}@acme.test",
                                "start": at + timedelta(days=1), "end": at + timedelta(days=1),
                                "cancelled": False, "booked_at": at - timedelta(days=30)})
        soon = _occurrence(ids, i, NOW + 2 * HOUR, status="confirmed")
        soon["prep_nudged_at"] = NOW - HOUR if i % 2 else None  # half from before the marker
        emails += [_email("prep", prep_key(soon["id"], who), f"x{who}@acme.test")
                   for who in (report, manager)]
        in_grace = i % 10 == 7
        occurrences += [soon, _occurrence(
            ids, i, NOW + timedelta(days=3, hours=20),
            status="cancelled" if in_grace else "confirmed",
            check_due_at=NOW + 10 * HOUR if in_grace else None),
            _occurrence(ids, i, NOW + timedelta(days=7), status="confirmed")]
        if i % 10 == 0:  # a recurring meeting that is not a 1:1: never decided
            series.append({"id": pairs + i + 1, "series_key": f"x{i}", "pair_id": None,
                           "title": "standup", "human_count": 6, "confidence": 0.0,
                           "status": "active", "detection_reason": ""})
            occurrences.append(_occurrence(ids, i, NOW - timedelta(days=2), status="confirmed",
                                           series_id=pairs + i + 1))
    for model, rows in ((Account, accounts), (Calendar, calendars), (Series, series),
                        (Occurrence, occurrences), (AdHocMeeting, coffees),
                        (OutboxMessage, emails)):
        _insert(session, model, rows)


def _occurrence(ids: Iterator[int], i: int, at: datetime, *, status: str,
                outcome: Outcome | None = None, dropped_at: datetime | None = None,
                check_due_at: datetime | None = None,
                series_id: int | None = None) -> dict[str, Any]:
    return {"id": next(ids), "series_id": series_id or i + 1, "original_start": at,
            "scheduled_start": at, "scheduled_end": at + HOUR, "status": status,
            "manager_response": "accepted", "report_response": "accepted",
            "outcome": outcome.value if outcome else None,
            "outcome_decided_at": at + HOUR if outcome else None,
            "cancelled_at": dropped_at, "dropped_at": dropped_at, "check_due_at": check_due_at,
            "updated_at": NOW - HOUR}
