"""Weekly snapshots: one row per pair and ISO week (the manager's zone), kept up to date from
the change log, and read by the digest and the page for the weeks that have ended.

Why: the digest and the page used to read twelve weeks of occurrences, agendas and items for
every manager, every time. A week that has ended changes only when one of its inputs changes,
and database triggers (migration 0022) log every such change in `metric_changes`, whoever
wrote it. So the reconciler's `refresh_snapshots` recomputes exactly the (pair, week) rows the
log names (plus, once a week per zone, the week that just ended), and a pass with nothing to
do reads two rows. A row holds the week's counts, Balance and closed items, and the facts
streaks and gaps need (`facts`), so reading it gives the figures a full recompute gives.
A pair with a pending change, or a week without a row (fresh install, new pair, another
zone), is computed from occurrences as before: reads are exact whether or not the
reconciler has caught up.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Text, bindparam, cast, delete, false, insert, literal, null, or_, select
from sqlalchemy.orm import Session, sessionmaker

from service.db import UTCDateTime, chunks, dialect_insert, read_session
from service.metrics import definitions as d
from service.metrics.models import MetricChange, MetricSnapshot, MetricSnapshotState
from service.metrics.queries import (
    load_agendas,
    load_closed_items,
    load_facts,
    manager_ids,
    manager_pairs,
)
from service.pairs.models import Pair
from service.people.models import Person
from service.people.zones import zone_name, zone_of

HORIZON_WEEKS = d.DEFAULT_WEEKS  # ended weeks kept without being asked: the digest's window
ROWS_PER_PASS = 2000  # (pair, week) rows one reconciler pass recomputes at most
STATE_ID = 1
RECHECK = timedelta(hours=1)  # a zone that gets its first manager is seen within this


# -- facts in a row ------------------------------------------------------------------------


def facts_json(facts: Iterable[d.OccurrenceFact]) -> list[list[Any]]:
    """The week's facts as JSON, in planned order: [original, scheduled, outcome, cadence,
    series id] (instants as ISO 8601 in UTC)."""
    return [[f.original_start.astimezone(UTC).isoformat(),
             f.scheduled_start.astimezone(UTC).isoformat(), f.outcome, f.cadence_days,
             f.series_id] for f in sorted(facts, key=d.planned_order)]


def facts_from_json(rows: Sequence[Sequence[Any]]) -> list[d.OccurrenceFact]:
    """The facts `facts_json` wrote."""
    return [d.OccurrenceFact(series_id, datetime.fromisoformat(original),
                             datetime.fromisoformat(scheduled), outcome, cadence)
            for original, scheduled, outcome, cadence, series_id in rows]


@dataclass(frozen=True)
class WeekSnapshot:
    """What a read needs of one snapshot row."""

    facts: list[d.OccurrenceFact]
    balance: d.Balance
    action_items_closed: int


# -- writing -------------------------------------------------------------------------------


def _week_rows(tz: tzinfo, targets: dict[int, set[str]], *, now: datetime,
               facts: dict[int, list[d.OccurrenceFact]],
               agendas: dict[int, list[d.AgendaFact]],
               closed: dict[int, list[datetime]]) -> list[dict[str, Any]]:
    rows = []
    for pair_id, weeks in targets.items():
        facts_by_week: dict[str, list[d.OccurrenceFact]] = defaultdict(list)
        for f in facts[pair_id]:
            facts_by_week[d.iso_week_of(f.original_start, tz)].append(f)
        agendas_by_week: dict[str, list[d.AgendaFact]] = defaultdict(list)
        for a in agendas[pair_id]:
            agendas_by_week[d.iso_week_of(a.original_start, tz)].append(a)
        closed_by_week: dict[str, int] = defaultdict(int)
        for at in closed[pair_id]:
            closed_by_week[d.iso_week_of(at, tz)] += 1
        for week in sorted(weeks):
            week_facts = facts_by_week.get(week, [])
            c = d.count_outcomes(week_facts)
            b = d.balance_coverage(agendas_by_week.get(week, ()))
            rows.append({
                "pair_id": pair_id, "iso_week": week,
                "week_start": d.week_bounds(week, tz)[0], "time_zone": zone_name(tz),
                "scheduled": c.scheduled, "held": c.held, "moved": c.moved,
                "rescheduled": c.rescheduled, "cancelled": c.cancelled,
                "declined_by_report": c.declined_by_report,
                "declined_by_manager": c.declined_by_manager,
                "series_ended": c.series_ended, "unknown": c.unknown,
                "pending": c.pending, "agendas": b.agendas, "areas": b.areas,
                "kinds": b.kinds, "action_items_closed": closed_by_week.get(week, 0),
                "facts": facts_json(week_facts), "computed_at": now,
            })
    return rows


def write_weeks(session: Session, *, tz: tzinfo, targets: dict[int, set[str]],
                now: datetime) -> int:
    """Recompute and upsert the snapshot rows `targets` names (pair -> ISO weeks in `tz`);
    three reads over the span of the weeks for all the pairs, one upsert executed many times.

    Idempotent: the same history gives the same rows (INSERT ... ON CONFLICT (pair, week)
    DO UPDATE). The caller commits.
    """
    targets = {p: w for p, w in targets.items() if w}
    if not targets:
        return 0
    mondays = [d.week_monday(w) for ws in targets.values() for w in ws]
    first, last = min(mondays), max(mondays)
    start, _ = d.week_bounds(_week_of(first), tz)
    _, end = d.week_bounds(_week_of(last), tz)
    ids = sorted(targets)
    rows = _week_rows(tz, targets, now=now,
                      facts=load_facts(session, pair_ids=ids, start=start, end=end),
                      agendas=load_agendas(session, pair_ids=ids, start=start, end=end),
                      closed=load_closed_items(session, pair_ids=ids, start=start, end=end))
    stmt = dialect_insert(session, MetricSnapshot)
    upsert = stmt.on_conflict_do_update(
        index_elements=[MetricSnapshot.pair_id, MetricSnapshot.iso_week],
        set_={k: getattr(stmt.excluded, k) for k in rows[0] if k not in ("pair_id", "iso_week")})
    connection = session.connection()  # Core executemany: one compiled statement, cached
    for chunk in chunks(rows):
        connection.execute(upsert, list(chunk))
    return len(rows)


def _week_of(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def recompute_snapshots(session: Session, *, now: datetime, since: date | None = None,
                        until_week: str | None = None, manager_id: int | None = None,
                        weeks: int = d.DEFAULT_WEEKS) -> int:
    """Write (or overwrite) every snapshot of a span of weeks; returns rows written.

    The operator's full recompute (`rapport metrics backfill`): weeks run from `since` (or
    `weeks` back) to `until_week` (default: the manager's current week), in each manager's
    time zone. The reconciler keeps them up to date afterwards. The caller commits.
    """
    written = 0
    for mid in ([manager_id] if manager_id else manager_ids(session)):
        manager = session.get(Person, mid)
        if manager is None:
            continue
        tz = zone_of(manager.time_zone)
        last = until_week or d.iso_week_of(now, tz)
        if since is not None:
            first = d.iso_week_of(datetime(since.year, since.month, since.day, tzinfo=tz), tz)
            count = (d.week_monday(last) - d.week_monday(first)).days // 7 + 1
        else:
            count = weeks
        if count <= 0:
            continue
        window = set(d.weeks_ending(last, count))
        written += write_weeks(session, tz=tz, now=now, targets={
            p.id: set(window) for p, _ in manager_pairs(session, manager_id=mid)})
    return written


# -- the reconciler's pass -------------------------------------------------------------------


def ended_weeks(tz: tzinfo, *, now: datetime, after: datetime | None = None,
                count: int = HORIZON_WEEKS) -> list[str]:
    """The last `count` ISO weeks (in `tz`) that have ended by `now`, newest first; with
    `after`, only those that ended after it."""
    week = d.shift_week(d.iso_week_of(now, tz), -1)
    out = []
    for _ in range(count):
        if after is not None and d.week_bounds(week, tz)[1] <= after:
            break
        out.append(week)
        week = d.shift_week(week, -1)
    return out


def _queue_ended_weeks(session: Session, *, now: datetime) -> None:
    """Log a change for every pair whose manager's week ended since the last check (every
    pair on the first run: its horizon), and note when the next week ends anywhere."""
    state = session.get(MetricSnapshotState, STATE_ID)
    if state is None:
        session.execute(insert(MetricChange).from_select(
            ["pair_id", "at"], select(Pair.id, null())))
    raw_zones = set(session.scalars(
        select(Person.time_zone).join(Pair, Pair.manager_id == Person.id).distinct()))
    by_zone: dict[str, set[str | None]] = defaultdict(set)
    for raw in raw_zones:
        by_zone[zone_name(zone_of(raw))].add(raw)
    next_check = now + RECHECK
    for name, raws in by_zone.items():
        tz = zone_of(name)
        next_check = min(next_check, d.week_bounds(d.iso_week_of(now, tz), tz)[1])
        if state is None:
            continue
        managed = or_(Person.time_zone.in_([r for r in raws if r is not None]),
                      Person.time_zone.is_(None) if None in raws else false())
        for week in ended_weeks(tz, now=now, after=state.weeks_through):
            at = literal(d.week_bounds(week, tz)[0], UTCDateTime())
            session.execute(insert(MetricChange).from_select(
                ["pair_id", "at"], select(Pair.id, at)
                .join(Person, Person.id == Pair.manager_id).where(managed)))
    if state is None:
        session.add(MetricSnapshotState(id=STATE_ID, weeks_through=now, next_check=next_check))
    else:
        state.weeks_through, state.next_check = now, next_check


@dataclass(frozen=True)
class Refreshed:
    """What one pass did: snapshot rows written, change-log rows consumed (0: the log was
    empty, so a caller draining it stops there, not at a pass that wrote no row)."""

    rows: int
    changes: int


def _apply_changes(session: Session, *, now: datetime, max_rows: int) -> Refreshed:
    """Recompute the rows the oldest logged changes name (at most about `max_rows`), then
    delete exactly the change rows used: one committed later waits for the next pass.

    Every change read that names no week to recompute is consumed in this pass, even once
    the budget is spent: an instant after `now` (an upcoming meeting synced, an agenda
    planned; most of the log) without any lookup, since its week has not ended and
    `_queue_ended_weeks` logs every pair when it does; an instant in a running week or
    outside the horizon, or weeks already planned here, after the pair's zone is read. Only
    changes that would add weeks beyond the budget stay for the next pass, so rows that
    yield nothing are never read twice.
    """
    changes = session.execute(select(MetricChange.id, MetricChange.pair_id, MetricChange.at)
                              .order_by(MetricChange.id).limit(max_rows)).all()
    if not changes:
        return Refreshed(0, 0)
    pair_ids = sorted({c.pair_id for c in changes if c.at is None or c.at <= now})
    zones: dict[int, str | None] = {}
    existing: dict[int, set[str]] = defaultdict(set)
    for chunk in chunks(pair_ids):
        zones.update(session.execute(
            select(Pair.id, Person.time_zone).join(Person, Person.id == Pair.manager_id)
            .where(Pair.id.in_(chunk))).all())
        for pair_id, week in session.execute(
                select(MetricSnapshot.pair_id, MetricSnapshot.iso_week)
                .where(MetricSnapshot.pair_id.in_(chunk))):
            existing[pair_id].add(week)
    targets: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    horizons: dict[str, set[str]] = {}
    consumed: list[int] = []
    planned = 0
    for change_id, pair_id, at in changes:
        if pair_id not in zones:  # a future instant, or the pair is gone (its rows with it)
            consumed.append(change_id)
            continue
        tz = zone_of(zones[pair_id])
        name = zone_name(tz)
        if name not in horizons:
            horizons[name] = set(ended_weeks(tz, now=now))
        if at is None:
            weeks = horizons[name] | existing[pair_id]
        else:
            week = d.iso_week_of(at, tz)
            # a week still running is read live; once it ends, `_queue_ended_weeks` logs it
            weeks = {week} if week in horizons[name] or week in existing[pair_id] else set()
        new = {w for w in weeks if d.week_bounds(w, tz)[1] <= now} - targets[name][pair_id]
        if new and planned >= max_rows:
            continue  # over budget: the next pass
        consumed.append(change_id)
        targets[name][pair_id] |= new
        planned += len(new)
    written = sum(write_weeks(session, tz=zone_of(name), targets=dict(t), now=now)
                  for name, t in targets.items())
    for chunk in chunks(consumed):
        session.execute(delete(MetricChange).where(MetricChange.id.in_(chunk)))
    return Refreshed(written, len(consumed))


def refresh_snapshots(factory: sessionmaker[Session], *, now: datetime,
                      max_rows: int = ROWS_PER_PASS) -> Refreshed:
    """The reconciler's pass: recompute the snapshot rows whose inputs changed and those of
    weeks that just ended.

    Nothing to do costs two reads in a read-only session (the state row, one change row)
    and never takes the write lock; work is bounded by `max_rows`, the rest waits a pass.
    """
    with read_session(factory) as session:
        state = session.get(MetricSnapshotState, STATE_ID)
        weeks_due = state is None or now >= state.next_check
        changed = session.scalar(select(MetricChange.id).limit(1)) is not None
    if not weeks_due and not changed:
        return Refreshed(0, 0)
    with factory.begin() as session:
        if weeks_due:
            _queue_ended_weeks(session, now=now)
        return _apply_changes(session, now=now, max_rows=max_rows)


# -- reading -------------------------------------------------------------------------------


_SNAPSHOTS = (  # built once: constructing a statement costs as much as running it here
    select(MetricSnapshot.pair_id, MetricSnapshot.iso_week, MetricSnapshot.agendas,
           MetricSnapshot.action_items_closed,
           *(cast(c, Text) for c in (MetricSnapshot.areas, MetricSnapshot.kinds,
                                     MetricSnapshot.facts)))
    .where(MetricSnapshot.pair_id.in_(bindparam("pairs", expanding=True)),
           MetricSnapshot.iso_week.in_(bindparam("weeks", expanding=True)),
           MetricSnapshot.time_zone == bindparam("zone"),
           ~select(MetricChange.id).where(
               MetricChange.pair_id == MetricSnapshot.pair_id).exists()))


def load_snapshots(session: Session, *, pair_ids: Sequence[int], weeks: Sequence[str],
                   tz: tzinfo) -> dict[int, dict[str, WeekSnapshot]]:
    """The snapshot rows of the pairs for the weeks, read in `tz`. A pair with a logged
    change not applied yet has none (read it live), nor do rows of another zone count (the
    manager moved and the reconciler has not caught up)."""
    out: dict[int, dict[str, WeekSnapshot]] = {p: {} for p in pair_ids}
    if not weeks:
        return out
    connection = session.connection()
    for chunk in chunks(pair_ids):
        rows = connection.execute(_SNAPSHOTS, {"pairs": list(chunk),
                                               "weeks": list(weeks), "zone": zone_name(tz)})
        for pair_id, week, agendas, closed, *documents in rows:
            # one JSON parse per row instead of three: the reads are mostly parsing
            areas, kinds, facts = json.loads(f"[{','.join(documents)}]")
            out[pair_id][week] = WeekSnapshot(facts_from_json(facts),
                                              d.Balance(agendas, areas, kinds), closed)
    return out
