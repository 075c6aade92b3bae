"""The demo's last act: a few weeks of 1:1 history, then a weekly digest in the outbox.

The sandboxes only know the weeks around today, so this seeds earlier occurrences of each
detected 1:1 series (same time, the series' own cadence) with a made-up but plausible run of
outcomes, then renders and delivers each manager's digest through the real outbox.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import typer
from sqlalchemy import select, update

from application.context import Started
from service.email.models import OutboxMessage
from service.email.transport import OutboxDirTransport
from service.metrics import definitions as d
from service.metrics.digest import send_digest
from service.metrics.queries import manager_ids
from service.metrics.reports import current_week
from service.pairs.models import Occurrence, OccurrenceStatus, Outcome, Pair, Series
from service.people.models import Person
from service.people.zones import zone_of

# One story per pair, oldest first; cycled when there are more pairs.
STORIES = [
    ["held", "held", "rescheduled", "held", "held", "held", "moved", "held", "held", "held",
     "held", "held"],
    ["held", "held", "cancelled_no_reschedule", "held", "declined_by_report", "held",
     "rescheduled", "cancelled_no_reschedule", "held", "cancelled_no_reschedule",
     "cancelled_no_reschedule", "cancelled_no_reschedule"],
    ["held", "moved", "held", "held", "cancelled_no_reschedule", "rescheduled", "held", "held",
     "held", "held", "rescheduled", "held"],
]


def seed_history(started: Started, *, weeks: int = 12) -> int:
    """Add past occurrences with outcomes to every 1:1 series; returns how many were added."""
    rt = started.runtime
    now = rt.clock()
    added = 0
    with rt.factory.begin() as session:
        series_rows = session.scalars(select(Series).where(Series.pair_id.is_not(None))
                                      .order_by(Series.pair_id, Series.id)).all()
        story_of: dict[int, list[str]] = {}
        for series in series_rows:
            assert series.pair_id is not None
            story = story_of.setdefault(series.pair_id, STORIES[len(story_of) % len(STORIES)])
            first = session.scalars(select(Occurrence).where(Occurrence.series_id == series.id)
                                    .order_by(Occurrence.original_start)).first()
            if first is None:
                continue
            step = timedelta(days=series.cadence_days or 7)
            length = first.scheduled_end - first.scheduled_start
            start = first.original_start - step
            outcomes = list(reversed(story))
            for i in range(max(weeks * 7 // step.days, 1)):
                original = start - i * step
                if original < now - timedelta(weeks=weeks):
                    break
                outcome = outcomes[i % len(outcomes)]
                cancelled = outcome in d.DROPPED and outcome.startswith("cancelled") \
                    or outcome == Outcome.RESCHEDULED
                session.add(Occurrence(
                    series_id=series.id, original_start=original, scheduled_start=original,
                    scheduled_end=original + length,
                    status=OccurrenceStatus.CANCELLED if cancelled else OccurrenceStatus.CONFIRMED,
                    outcome=outcome, outcome_decided_at=now))
                added += 1
        # Past occurrences the sync read but nobody judged yet: what the calendar says.
        undecided = session.scalars(
            select(Occurrence).join(Series, Series.id == Occurrence.series_id)
            .where(Series.pair_id.is_not(None), Occurrence.outcome.is_(None),
                   Occurrence.scheduled_end < now))
        for occurrence in undecided:
            occurrence.outcome = (Outcome.HELD if occurrence.status == OccurrenceStatus.CONFIRMED
                                  else Outcome.CANCELLED_NO_RESCHEDULE)
            occurrence.outcome_decided_at = now
        # Rapport "has known" these pairs long enough for a digest to be due.
        session.execute(update(Pair).values(created_at=now - timedelta(weeks=weeks)))
    return added


def render_demo_digest(started: Started) -> list[Path]:
    """Seed history, then queue and deliver each manager's digest; print and return paths."""
    rt = started.runtime
    added = seed_history(started)
    now: datetime = rt.clock()
    folder = rt.settings.resolved_outbox_dir
    transport = OutboxDirTransport(folder)
    paths = []
    with rt.factory() as session:
        managers = manager_ids(session)
    for manager_id in managers:
        with rt.factory() as session:
            person = session.get(Person, manager_id)
            assert person is not None
            week = current_week(now, zone_of(person.time_zone))
        send_digest(rt.factory, settings=rt.settings, manager_id=manager_id, iso_week=week,
                    now=now, transport=transport)
        with rt.factory() as session:
            message_id = session.scalar(select(OutboxMessage.message_id).where(
                OutboxMessage.dedupe_key == f"digest:{manager_id}:{week}"))
        stem = (message_id or "").strip("<>").partition("@")[0].replace(":", "-")
        found = sorted(folder.glob(f"*{stem}*.eml")) if stem else []
        if found:
            paths.append(found[-1])
    typer.echo(f"\nSeeded {added} past occurrences with outcomes; weekly digests:")
    for path in paths:
        typer.echo(f"  digest written to {path}")
    return paths
