"""The demo's cancellation part: one 1:1 dropped without a new time (one alert, `.eml` path
printed) and one dropped and rescheduled (no alert). The grace period is skipped by deciding
"as of" a moment just after it ends, which is what the reconciler would do then."""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

import typer

from sandbox.google.sandbox import GoogleSandbox
from sandbox.microsoft.sandbox import GraphSandbox
from service.cli.app_context import Started
from service.email.outbox import deliver
from service.email.transport import transport_from_settings
from service.outcomes import service as outcomes

DROPPED = ("maya-sam", "maya@acme.test", "sam@acme.test")  # Google: cancelled, not put back
MOVED = ("dana-lee", "dana@acme.test", "lee@acme.test")  # Microsoft: cancelled, rescheduled


class _Boxes(Protocol):
    google: GoogleSandbox
    graph: GraphSandbox


def show_cancellations(started: Started, boxes: _Boxes) -> None:
    """Drop two 1:1 occurrences, reschedule one, and print the one alert that results."""
    from service.cli.demo import sync_everything

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
    sync_everything(started)

    later = now + outcomes.grace_of(rt.settings) + timedelta(minutes=5)
    typer.echo(f"\nCancellations (deciding as of {later:%a %d %b %H:%M} UTC, after the "
               f"{rt.settings.cancellation_grace_hours} h grace period):")
    with rt.factory.begin() as session:
        due = outcomes.due_checks(session, now=later)
    outbox_ids = []
    for occurrence_id in due:
        with rt.factory() as session:
            account_id = outcomes.alert_account(session, occurrence_id=occurrence_id)
        free_busy = rt.connectors.for_account(account_id).free_busy if account_id else None
        result = outcomes.check_occurrence(rt.factory, occurrence_id=occurrence_id,
                                           settings=rt.settings, now=later, free_busy=free_busy)
        typer.echo(f"  occurrence {occurrence_id}: {result.outcome or 'undecided'}"
                   f"{' -> alert queued' if result.outbox_id else ''}")
        if result.outbox_id:
            outbox_ids.append(result.outbox_id)
    before = set(rt.settings.resolved_outbox_dir.glob("*.eml"))
    for outbox_id in outbox_ids:
        deliver(rt.factory, message_id=outbox_id, transport=transport_from_settings(rt.settings),
                now=later + timedelta(days=1), sender=rt.settings.mail_from)  # past quiet hours
    for path in sorted(set(rt.settings.resolved_outbox_dir.glob("*.eml")) - before):
        typer.echo(f"  alert written to {path}")
