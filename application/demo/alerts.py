"""The demo's cancellation part: one 1:1 dropped without a new time (one alert, `.eml` path
printed) and one dropped and rescheduled (no alert). The grace period is skipped by deciding
"as of" a moment just after it ends, which is what the reconciler would do then."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import typer
from sqlalchemy import update
from sqlalchemy.orm import Session

from application.context import Started
from sandbox.google.sandbox import GoogleSandbox
from sandbox.microsoft.sandbox import GraphSandbox
from service.email.models import OutboxMessage
from service.email.outbox import deliver
from service.email.transport import transport_from_settings
from service.outcomes import service as outcomes
from service.pairs.models import Occurrence, Outcome, Series
from service.pairs.service import pair_emails

DROPPED = ("maya-sam", "maya@acme.test", "sam@acme.test")  # Google: cancelled, not put back
MOVED = ("dana-lee", "dana@acme.test", "lee@acme.test")  # Microsoft: cancelled, rescheduled
OUTCOME_WORDS: dict[str, str] = {
    Outcome.CANCELLED_NO_RESCHEDULE: "cancelled and not rescheduled",
    Outcome.RESCHEDULED: "cancelled, and a new time was found",
    Outcome.HELD: "took place",
    Outcome.MOVED: "moved within the series",
    Outcome.SERIES_ENDED: "the series ended",
}


class _Boxes(Protocol):
    google: GoogleSandbox
    graph: GraphSandbox


def show_cancellations(started: Started, boxes: _Boxes, *, sync: Callable[[Started], None]
                       ) -> None:
    """Drop two 1:1 occurrences, reschedule one, and print the one alert that results."""
    rt = started.runtime
    now = rt.clock()
    key, _, _ = DROPPED
    dropped = [s for s in boxes.google.occurrence_starts(key, until=now + timedelta(days=60))
               if s > now][2]
    boxes.google.cancel_occurrence(key, dropped)
    key, manager, report = MOVED
    moved = [s for s in boxes.graph.occurrence_starts(key, until=now + timedelta(days=60))
             if s > now][2]
    boxes.graph.cancel_occurrence(key, moved)
    boxes.graph.create_series(organizer=manager, attendees=[report], title="1:1 (new time)",
                              first_start=moved + timedelta(days=1), rrule=None)
    sync(started)

    # The demo decides "as of" just after the grace period instead of waiting a day.
    later = now + outcomes.grace_of(rt.settings) + timedelta(minutes=5)
    typer.echo(f"\nCancellations (decided as if it were {later:%a %d %b %H:%M} UTC, after the "
               f"{rt.settings.cancellation_grace_hours} h grace period):")
    with rt.factory.begin() as session:
        due = outcomes.due_checks(session, now=later)
    outbox_ids = []
    for occurrence_id in due:
        with rt.factory() as session:
            account = outcomes.alert_account(session, occurrence_id=occurrence_id)
        free_busy = rt.connectors.for_account(account.id).free_busy if account else None
        result = outcomes.check_occurrence(rt.factory, occurrence_id=occurrence_id,
                                           settings=rt.settings, now=later, free_busy=free_busy)
        with rt.factory() as session:
            line = _describe(session, occurrence_id=occurrence_id)
        word = OUTCOME_WORDS.get(str(result.outcome), str(result.outcome or "not decided yet"))
        typer.echo(f"  {line}: {word}{'; an alert is queued' if result.outbox_id else ''}")
        if result.outbox_id:
            outbox_ids.append(result.outbox_id)
    _deliver_now(started, outbox_ids)


def _describe(session: Session, *, occurrence_id: int) -> str:
    """'Maya / Sam 1:1 (maya@... and sam@...), Tue 15 Dec 15:00 UTC' for one occurrence."""
    occurrence = session.get_one(Occurrence, occurrence_id)
    series = session.get_one(Series, occurrence.series_id)
    who = f"{series.organizer_email} and {series.other_email}"
    if series.pair_id is not None:
        who = " and ".join(pair_emails(session, pair_id=series.pair_id))
    return f"{series.title} ({who}), {occurrence.original_start:%a %d %b %H:%M} UTC"


def _deliver_now(started: Started, outbox_ids: list[int]) -> None:
    """Write the queued alerts to the outbox folder now, stamped with the real time.

    The decision above was taken "as of" a simulated later moment; the email is written now,
    so its Date header says now (not the simulated time), and the demo does not wait for the
    manager's quiet hours either."""
    rt = started.runtime
    folder = rt.settings.resolved_outbox_dir
    before = set(folder.glob("*.eml"))
    with rt.factory.begin() as session:
        session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(outbox_ids))
                        .values(not_before=None))
    for outbox_id in outbox_ids:
        deliver(rt.factory, message_id=outbox_id, transport=transport_from_settings(rt.settings),
                now=datetime.now(UTC), sender=rt.settings.mail_from)
    for path in sorted(set(folder.glob("*.eml")) - before):
        typer.echo(f"  alert written to {path}")
