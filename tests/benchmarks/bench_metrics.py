"""Metrics and digest benchmark: N managers x 8 reports x 2 years of weekly 1:1 history.

    python tests/benchmarks/bench_metrics.py [--sizes 100,300,1000] [--reports 8]
                                             [--weeks 104] [--tracemalloc]

Not collected by pytest (the file name does not match test_*.py). Each size runs in its own
process on a fresh SQLite file (migrated like production): seed people, pairs, one weekly
series per pair and `--weeks` weeks of occurrences with a mix of outcomes, plus an agenda
per occurrence (the change log the triggers fill while seeding is history, and is cleared);
then, in one process, back to back:

1. page: `compute_manager` (12 weeks ending now) for every manager, one short session each,
   before (`snapshots=False`, the full read of occurrences) and after (snapshot rows for
   the ended weeks, the running week live);
2. digest: `build_digest` (metrics + Jinja2 text and HTML + CSS inlining; 12 ended weeks) for
   every manager, before (no snapshot rows yet: every pair read live) and after;
3. full recompute (before): `recompute_snapshots` of 13 weeks for every pair, the way the
   operator command writes them;
4. incremental (after): `refresh_snapshots`, the reconciler's pass, with nothing changed
   (time and SQL statements), after late changes to 1 % of the pairs (an outcome turned
   into a reschedule three weeks back, an item closed two weeks back) and after a week
   ended everywhere (every pair's new row), each run until the change log is empty;
5. due: one `digest_due` pass over every manager (what the reconciler runs each minute).

Memory: "RSS +" is the growth of the process's peak resident size (`ru_maxrss`) over the
measured phases, seeding excluded; with --tracemalloc, the peak of Python allocations during
phases 1-2 (slower). Costs should grow linearly with the number of managers: the per-manager
figures stay flat, and history length does not matter (windows are read by index).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

OUTCOMES = ["held"] * 14 + ["moved", "rescheduled", "cancelled_no_reschedule",
                            "declined_by_report", "unknown", "held"]
AREAS = [["growth", "productivity"], ["communication", "motivation"], ["growth"],
         ["productivity", "motivation"]]
NOW = datetime(2026, 11, 23, 9, tzinfo=UTC)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seed(url: str, managers: int, reports: int, weeks: int) -> int:
    """Bulk-insert the population in chunks (bounded memory); returns occurrences written."""
    from sqlalchemy import insert

    from service.agenda.models import AgendaRecord
    from service.db import make_engine, migrate
    from service.pairs.models import Occurrence, Pair, Series
    from service.people.models import Person

    engine = make_engine(url)
    migrate(engine)
    zones = ["Europe/Berlin", "America/New_York", "Pacific/Auckland", "Pacific/Honolulu", "UTC"]
    start = NOW - timedelta(weeks=weeks)
    occ_id = 0
    for m0 in range(0, managers, 50):
        chunk = range(m0, min(m0 + 50, managers))
        people, pairs, series, occurrences, agendas = [], [], [], [], []
        for m in chunk:
            mid = m * (reports + 1) + 1
            people.append({"id": mid, "email": f"m{m}@bench.test", "display_name": f"Manager {m}",
                           "time_zone": zones[m % len(zones)], "opted_out": False})
            for r in range(reports):
                rid = mid + r + 1
                pid = m * reports + r + 1
                people.append({"id": rid, "email": f"r{m}-{r}@bench.test",
                               "display_name": f"Report {m}-{r}", "time_zone": None,
                               "opted_out": False})
                pairs.append({"id": pid, "manager_id": mid, "report_id": rid, "muted": False,
                              "created_at": start})
                series.append({"id": pid, "series_key": f"s{pid}", "pair_id": pid,
                               "title": "1:1", "human_count": 2, "confidence": 1.0,
                               "detection_reason": "", "cadence_days": 7, "status": "active",
                               "first_seen_at": start})
                first = start + timedelta(hours=(pid * 7) % 120)
                for w in range(weeks):
                    occ_id += 1
                    at = first + timedelta(weeks=w)
                    outcome = OUTCOMES[(pid * 3 + w) % len(OUTCOMES)] if at < NOW else None
                    occurrences.append({"id": occ_id, "series_id": pid, "original_start": at,
                                        "scheduled_start": at,
                                        "scheduled_end": at + timedelta(minutes=30),
                                        "status": "confirmed", "outcome": outcome,
                                        "updated_at": at})
                    agendas.append({"occurrence_id": occ_id, "pair_id": pid,
                                    "kind": ["regular", "development", "core"][w % 3],
                                    "areas": AREAS[w % len(AREAS)], "question_ids": [],
                                    "content_hash": "x", "created_at": at})
        with engine.begin() as conn:
            for table, rows in ((Person, people), (Pair, pairs), (Series, series),
                                (Occurrence, occurrences), (AgendaRecord, agendas)):
                conn.execute(insert(table), rows)
    engine.dispose()
    return occ_id


def _change_some(factory: Any, managers: int, reports: int, share: float) -> int:
    """Late changes in past weeks for `share` of the pairs: an outcome turned into a
    reschedule and an action item closed; returns pairs changed."""
    from sqlalchemy import select

    from service.agenda.models import ActionItem
    from service.pairs.models import Occurrence

    pairs = managers * reports
    step = max(int(1 / share), 1)
    changed = list(range(1, pairs + 1, step))
    with factory.begin() as session:
        for pid in changed:
            occ = session.scalars(select(Occurrence).where(
                Occurrence.series_id == pid, Occurrence.original_start < NOW - timedelta(weeks=3),
                Occurrence.original_start >= NOW - timedelta(weeks=4))).first()
            if occ is not None:
                occ.outcome = "rescheduled"
            session.add(ActionItem(pair_id=pid, text="late", closed_at=NOW - timedelta(weeks=2)))
    return len(changed)


def _drain(factory: Any, now: datetime) -> tuple[float, int, int]:
    """Reconciler passes until the change log is empty: (seconds, rows written, passes)."""
    from service.metrics.snapshots import refresh_snapshots

    t0 = time.perf_counter()
    rows = passes = 0
    while True:
        passes += 1
        step = refresh_snapshots(factory, now=now)
        rows += step.rows
        if step.changes == 0:
            return time.perf_counter() - t0, rows, passes


def run_size(managers: int, reports: int, weeks: int, use_tracemalloc: bool,
             out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from cryptography.fernet import Fernet
    from pydantic import SecretStr
    from sqlalchemy import delete, func, select

    from service.db import make_engine, session_factory
    from service.metrics.digest import build_digest, digest_due
    from service.metrics.models import MetricChange, MetricSnapshotState
    from service.metrics.queries import manager_ids
    from service.metrics.reports import compute_manager
    from service.metrics.snapshots import STATE_ID, recompute_snapshots, refresh_snapshots
    from service.settings import Settings
    from tests.statements import statements

    def pages(snapshots: bool) -> float:
        t0 = time.perf_counter()
        for mid in ids:
            with factory() as session:
                compute_manager(session, manager_id=mid, now=NOW, snapshots=snapshots)
        return time.perf_counter() - t0

    def digests() -> tuple[float, int]:
        t0 = time.perf_counter()
        size = 0
        for mid in ids:
            with factory() as session:
                _, rendered = build_digest(session, settings=settings, manager_id=mid,
                                           iso_week="2026-W48", now=NOW)
                size += len(rendered.html) + len(rendered.text)
        return time.perf_counter() - t0, size

    r: dict[str, Any] = {"managers": managers, "pairs": managers * reports}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        t0 = time.perf_counter()
        r["occurrences"] = seed(url, managers, reports, weeks)
        r["seed_s"] = time.perf_counter() - t0
        settings = Settings(data_dir=Path(tmp),
                            secret_key=SecretStr(Fernet.generate_key().decode()))
        engine = make_engine(url)
        factory = session_factory(engine)
        with factory.begin() as session:
            ids = manager_ids(session)
            r["seed_changes"] = session.scalar(select(func.count()).select_from(MetricChange))
            session.execute(delete(MetricChange))  # the seed's own log: history, not news
        rss_before = _rss_mb()
        if use_tracemalloc:
            tracemalloc.start()
        r["page_before_s"] = pages(snapshots=False)
        r["digest_before_s"], size = digests()  # no snapshot rows yet: every pair read live
        traced = tracemalloc.get_traced_memory()[1] / 2**20 if use_tracemalloc else None
        if use_tracemalloc:
            tracemalloc.stop()
        t0 = time.perf_counter()
        with factory.begin() as session:  # the full recompute (before): 12 ended weeks + now
            r["snapshots"] = recompute_snapshots(session, now=NOW, weeks=13)
            session.add(MetricSnapshotState(id=STATE_ID, weeks_through=NOW,
                                            next_check=NOW + timedelta(days=1)))
        r["full_s"] = time.perf_counter() - t0
        r["page_after_s"] = pages(snapshots=True)
        r["digest_after_s"], _ = digests()
        with statements(engine) as seen:
            t0 = time.perf_counter()
            refresh_snapshots(factory, now=NOW + timedelta(minutes=1))
            r["idle_ms"] = 1000 * (time.perf_counter() - t0)
        r["idle_sql"] = len([s for s in seen if s.sql.lstrip().upper().startswith(
            ("SELECT", "INSERT", "UPDATE", "DELETE"))])
        r["changed_pairs"] = _change_some(factory, managers, reports, 0.01)
        r["changed_s"], r["changed_rows"], r["changed_passes"] = _drain(
            factory, NOW + timedelta(minutes=2))
        r["week_s"], r["week_rows"], r["week_passes"] = _drain(factory, NOW + timedelta(days=7))
        t0 = time.perf_counter()
        r["due"] = len(digest_due(factory, settings=settings, now=NOW))
        r["due_s"] = time.perf_counter() - t0
        engine.dispose()
        r.update(rss_mb=_rss_mb() - rss_before, traced_mb=traced,
                 avg_kb=size / max(len(ids), 1) / 1024)
        out.put(r)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,300,1000")
    parser.add_argument("--reports", type=int, default=8)
    parser.add_argument("--weeks", type=int, default=104)
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")
    print(f"load average {Path('/proc/loadavg').read_text().strip()}", flush=True)
    for managers in (int(s) for s in args.sizes.split(",")):
        queue = ctx.Queue()
        proc = ctx.Process(target=run_size, args=(managers, args.reports, args.weeks,
                                                  args.tracemalloc, queue))
        proc.start()
        r = queue.get()
        proc.join()
        traced = f"{r['traced_mb']:.1f}" if r["traced_mb"] is not None else "-"
        per = 1000 / managers
        print(f"\n{r['managers']} managers, {r['pairs']} pairs, {r['occurrences']} occurrences "
              f"(seed {r['seed_s']:.1f} s, {r['seed_changes']} change rows logged by the "
              f"triggers while seeding)")
        print(f"  page (12 weeks to now)     before {r['page_before_s']:7.2f} s "
              f"({r['page_before_s'] * per:.2f} ms/mgr)   after {r['page_after_s']:7.2f} s "
              f"({r['page_after_s'] * per:.2f} ms/mgr)")
        print(f"  digest (12 ended weeks)    before {r['digest_before_s']:7.2f} s "
              f"({r['digest_before_s'] * per:.2f} ms/mgr)   after {r['digest_after_s']:7.2f} s "
              f"({r['digest_after_s'] * per:.2f} ms/mgr)   {r['avg_kb']:.1f} KB/mail")
        print(f"  full recompute (before)    {r['full_s']:7.2f} s, {r['snapshots']} rows")
        print(f"  incremental, nothing new   {r['idle_ms']:7.2f} ms, "
              f"{r['idle_sql']} SQL statements")
        print(f"  incremental, 1 % changed   {r['changed_s']:7.2f} s, {r['changed_pairs']} pairs, "
              f"{r['changed_rows']} rows, {r['changed_passes']} passes")
        print(f"  incremental, week ended    {r['week_s']:7.2f} s, {r['week_rows']} rows, "
              f"{r['week_passes']} passes")
        print(f"  digest_due pass            {r['due_s']:7.2f} s ({r['due']} due)   "
              f"RSS + {r['rss_mb']:.1f} MB   traced {traced} MB", flush=True)


if __name__ == "__main__":
    main()
