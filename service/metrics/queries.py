"""Facts from the database for the metrics: occurrences, agendas and closed action items.

Each loader is one query over a window of original starts, grouped by pair, for the pure
definitions in `definitions.py`. The caller owns the (short) session.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.agenda.models import ActionItem, AgendaRecord
from service.metrics import definitions as d
from service.pairs.models import Occurrence, Pair, Series
from service.people.models import Person


def manager_ids(session: Session, *, email: str | None = None) -> list[int]:
    """Every person who manages at least one pair (or the one with `email`)."""
    query = select(Pair.manager_id).distinct()
    if email:
        query = query.join(Person, Person.id == Pair.manager_id).where(
            func.lower(Person.email) == email.strip().lower())
    return sorted(session.scalars(query))


def manager_pairs(session: Session, *, manager_id: int) -> list[tuple[Pair, Person]]:
    """The pairs one manager has, with the report of each, by the report's address."""
    rows = session.execute(
        select(Pair, Person).join(Person, Person.id == Pair.report_id)
        .where(Pair.manager_id == manager_id).order_by(Person.email))
    return [(pair, person) for pair, person in rows]


def load_facts(session: Session, *, pair_ids: Sequence[int], start: datetime,
               end: datetime) -> dict[int, list[d.OccurrenceFact]]:
    """Occurrences of every series of the pairs planned in [start, end), grouped by pair.

    Every series counts, whichever provider or calendar it came from: a pair that moved
    provider, or whose series was split, keeps one history.
    """
    out: dict[int, list[d.OccurrenceFact]] = {p: [] for p in pair_ids}
    if not pair_ids:
        return out
    rows = session.execute(
        select(Series.pair_id, Occurrence.series_id, Occurrence.original_start,
               Occurrence.scheduled_start, Occurrence.outcome, Series.cadence_days)
        .join(Series, Series.id == Occurrence.series_id)
        .where(Series.pair_id.in_(pair_ids), Occurrence.original_start >= start,
               Occurrence.original_start < end)
    )
    for pair_id, series_id, original, scheduled, outcome, cadence in rows:
        assert pair_id is not None  # selected by pair
        out[pair_id].append(d.OccurrenceFact(series_id, original, scheduled, outcome, cadence))
    return out


def load_last_meetings(session: Session, *, pair_ids: Sequence[int],
                       before: datetime) -> dict[int, d.OccurrenceFact]:
    """Per pair, the last occurrence planned before `before` that took place: where the gap
    running into a window starts (one grouped query and one lookup, whatever the history)."""
    if not pair_ids:
        return {}
    # The outcome is tested through an expression so that no index on it can drive the
    # query: with `ix_occurrences_outcome_start` (0021) SQLite read every meeting that took
    # place, of every pair, to find these few ("Disqualifying WHERE clause terms",
    # sqlite.org/optoverview.html); now it goes pairs -> series -> (series, start).
    took_place = func.coalesce(Occurrence.outcome, "").in_(sorted(d.TOOK_PLACE))
    latest = (
        select(Series.pair_id.label("pair_id"),
               func.max(Occurrence.original_start).label("original_start"))
        .join(Series, Series.id == Occurrence.series_id)
        .where(Series.pair_id.in_(pair_ids), Occurrence.original_start < before, took_place)
        .group_by(Series.pair_id).subquery())
    rows = session.execute(
        select(Series.pair_id, Occurrence.series_id, Occurrence.original_start,
               Occurrence.scheduled_start, Occurrence.outcome, Series.cadence_days)
        .join(Series, Series.id == Occurrence.series_id)
        .join(latest, (latest.c.pair_id == Series.pair_id)
              & (latest.c.original_start == Occurrence.original_start))
        .where(took_place))
    out: dict[int, d.OccurrenceFact] = {}
    for pair_id, series_id, original, scheduled, outcome, cadence in rows:
        assert pair_id is not None  # joined by pair
        out.setdefault(pair_id, d.OccurrenceFact(series_id, original, scheduled, outcome,
                                                 cadence))
    return out


def load_agendas(session: Session, *, pair_ids: Sequence[int], start: datetime,
                 end: datetime) -> dict[int, list[d.AgendaFact]]:
    """Agendas planned for the pairs' occurrences in [start, end), grouped by pair."""
    out: dict[int, list[d.AgendaFact]] = {p: [] for p in pair_ids}
    if not pair_ids:
        return out
    rows = session.execute(
        select(AgendaRecord.pair_id, Occurrence.original_start, AgendaRecord.kind,
               AgendaRecord.areas)
        .join(Occurrence, Occurrence.id == AgendaRecord.occurrence_id)
        .where(AgendaRecord.pair_id.in_(pair_ids), Occurrence.original_start >= start,
               Occurrence.original_start < end)
    )
    for pair_id, original, kind, areas in rows:
        out[pair_id].append(d.AgendaFact(original, kind or "", tuple(areas or ())))
    return out


def load_closed_items(session: Session, *, pair_ids: Sequence[int], start: datetime,
                      end: datetime) -> dict[int, list[datetime]]:
    """`closed_at` of the pairs' action items closed in [start, end)."""
    out: dict[int, list[datetime]] = {p: [] for p in pair_ids}
    if not pair_ids:
        return out
    rows = session.execute(
        select(ActionItem.pair_id, ActionItem.closed_at)
        .where(ActionItem.pair_id.in_(pair_ids), ActionItem.closed_at >= start,
               ActionItem.closed_at < end)
    )
    for pair_id, closed in rows:
        assert closed is not None  # filtered on closed_at
        out[pair_id].append(closed)
    return out
