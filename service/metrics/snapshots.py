"""Weekly snapshots: one row per pair and ISO week, written by `rapport metrics backfill`.

Nothing reads them yet; they are kept because writing them is cheap (one upsert per pair
and week, on an operator command) and the digest and the page are to read long trends from
them instead of recomputing. Weeks are read in each manager's time zone.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

from sqlalchemy.orm import Session

from service.db import dialect_insert
from service.metrics import definitions as d
from service.metrics.models import MetricSnapshot
from service.metrics.queries import (
    load_agendas,
    load_closed_items,
    load_facts,
    manager_ids,
    manager_pairs,
)
from service.metrics.reports import DEFAULT_WEEKS, current_week
from service.people.models import Person
from service.people.zones import zone_name, zone_of


def recompute_snapshots(session: Session, *, now: datetime, since: date | None = None,
                        until_week: str | None = None, manager_id: int | None = None,
                        weeks: int = DEFAULT_WEEKS) -> int:
    """Write (or overwrite) one snapshot per pair and ISO week; returns rows written.

    Idempotent: the same history gives the same rows (INSERT ... ON CONFLICT (pair, week)
    DO UPDATE). Weeks run from `since` (or `weeks` back) to `until_week` (default: the
    manager's current week), in each manager's time zone. The caller commits.
    """
    written = 0
    for mid in ([manager_id] if manager_id else manager_ids(session)):
        manager = session.get(Person, mid)
        if manager is None:
            continue
        tz = zone_of(manager.time_zone)
        last = until_week or current_week(now, tz)
        if since is not None:
            first = d.iso_week_of(datetime(since.year, since.month, since.day, tzinfo=tz), tz)
            count = (d.week_monday(last) - d.week_monday(first)).days // 7 + 1
        else:
            count = weeks
        if count <= 0:
            continue
        window = d.weeks_ending(last, count)
        start, _ = d.week_bounds(window[0], tz)
        _, end = d.week_bounds(window[-1], tz)
        ids = [p.id for p, _ in manager_pairs(session, manager_id=mid)]
        facts = load_facts(session, pair_ids=ids, start=start, end=end)
        agendas = load_agendas(session, pair_ids=ids, start=start, end=end)
        closed = load_closed_items(session, pair_ids=ids, start=start, end=end)
        rows = []
        for pair_id in ids:
            weekly = d.counts_by_week(facts[pair_id], window, tz)
            agendas_by_week: dict[str, list[d.AgendaFact]] = defaultdict(list)
            for a in agendas[pair_id]:
                agendas_by_week[d.iso_week_of(a.original_start, tz)].append(a)
            closed_by_week: dict[str, int] = defaultdict(int)
            for at in closed[pair_id]:
                closed_by_week[d.iso_week_of(at, tz)] += 1
            for week in window:
                c = weekly[week]
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
                    "computed_at": now,
                })
        for chunk_start in range(0, len(rows), 500):
            chunk = rows[chunk_start:chunk_start + 500]
            stmt = dialect_insert(session, MetricSnapshot).values(chunk)
            updated = {k: getattr(stmt.excluded, k) for k in chunk[0]
                       if k not in ("pair_id", "iso_week")}
            session.execute(stmt.on_conflict_do_update(
                index_elements=[MetricSnapshot.pair_id, MetricSnapshot.iso_week],
                set_=updated))
        written += len(rows)
    return written
