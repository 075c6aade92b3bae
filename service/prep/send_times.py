"""When the kept send times of the prep nudges (`Occurrence.prep_due_at`) stop being right.

A meeting's earliest send time is worked out once and kept (`nudge.queue_prep_nudges`), so
what it was worked out from must be watched: the meeting's start (kept beside it, in
`prep_due_for`), the two people's time zones, and the settings (the lead and the working
hours). When a zone or the settings change, the kept times of the meetings concerned are
forgotten (`prep_due_for` and `prep_due_at` set to NULL, one UPDATE), and the next pass
works them out again as for a meeting that just entered the window. Only meetings whose
nudges are not all queued are touched; a nudge already queued stays queued (outbox dedupe).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import event, inspect, select, union, update
from sqlalchemy.orm import Session

from service.agenda.models import PlanningWatermark
from service.db import chunks
from service.pairs.models import Occurrence, Pair, Series
from service.people.models import Person
from service.settings import Settings

# The row of `planning_watermark` that says which settings the kept send times were worked
# out with (row 1 is the agenda planner's, `agenda.wanted.WATERMARK_ID`).
PREP_WATERMARK_ID = 2


def settings_key(settings: Settings) -> str:
    """A digest of the settings a send time depends on: the lead and the working hours."""
    opens, closes = settings.working_hours
    text = f"prep|{settings.prep_nudge_hours}|{opens.isoformat()}|{closes.isoformat()}"
    return hashlib.sha256(text.encode()).hexdigest()


def forget_send_times(session: Session, *, people: Collection[int] | None = None) -> None:
    """Forget the kept send times of the meetings of these people's pairs (all, without
    `people`), so the next pass works them out again; one UPDATE.

    For people it goes through the index on `occurrences.series_id` (a person has a few
    pairs, each a few series) and needs no test on `prep_nudged_at`: a meeting whose
    nudges are all queued keeps no send time (`nudge.queue_prep_nudges` clears it)."""
    if people is None:
        condition = Occurrence.prep_nudged_at.is_(None) & Occurrence.prep_due_for.is_not(None)
    else:
        pairs = union(select(Pair.id).where(Pair.manager_id.in_(people)),
                      select(Pair.id).where(Pair.report_id.in_(people)))
        condition = Occurrence.prep_due_for.is_not(None) & Occurrence.series_id.in_(
            select(Series.id).where(Series.pair_id.in_(pairs)))
    session.execute(update(Occurrence).where(condition)
                    .values(prep_due_for=None, prep_due_at=None)
                    .execution_options(synchronize_session=False))


def follow_settings(session: Session, *, settings: Settings, now: datetime) -> None:
    """Forget every kept send time when the settings changed since the last pass (or no
    pass recorded them yet); one primary-key read otherwise."""
    key = settings_key(settings)
    mark = session.get(PlanningWatermark, PREP_WATERMARK_ID)
    if mark is not None and mark.settings_key == key:
        return
    forget_send_times(session)
    if mark is None:
        session.add(PlanningWatermark(id=PREP_WATERMARK_ID, passed_at=now, planned_until=now,
                                      settings_key=key))
    else:
        mark.passed_at, mark.planned_until, mark.settings_key = now, now, key
    session.flush()


@event.listens_for(Session, "before_flush")
def _forget_on_zone_change(session: Session, _context: object, _instances: object) -> None:
    """A person's time zone changed (directory, calendar, CLI, whoever writes it): the send
    times kept for their meetings were read in the old zone. The people layer sits below
    this one and cannot call `forget_send_times`; a flush hook sees every such change."""
    moved = [row.id for row in session.dirty if isinstance(row, Person)
             and row.id is not None and inspect(row).attrs.time_zone.history.has_changes()]
    with session.no_autoflush:
        for chunk in chunks(moved):  # a directory sync may move thousands
            forget_send_times(session, people=chunk)
