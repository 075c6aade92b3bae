"""Metrics and digest benchmark: N managers x 8 reports x 2 years of weekly 1:1 history.

    python tests/benchmarks/bench_metrics.py [--sizes 100,300,1000] [--reports 8]
                                             [--weeks 104] [--tracemalloc]

Not collected by pytest (the file name does not match test_*.py). Each size runs in its own
process on a fresh SQLite file (migrated like production): seed people, pairs, one weekly
series per pair and `--weeks` weeks of occurrences with a mix of outcomes, plus an agenda
per occurrence; then time

1. metrics: `compute_manager` (12-week window) for every manager, one short session each;
2. digests: `build_digest` (metrics + Jinja2 text and HTML + CSS inlining) for every manager;
3. snapshots: `recompute_snapshots` of the last 12 weeks for every pair (the weekly job);
4. due: one `digest_due` pass over every manager (what the reconciler runs each minute).

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


def run_size(managers: int, reports: int, weeks: int, use_tracemalloc: bool,
             out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from cryptography.fernet import Fernet

    from service.db import make_engine, session_factory
    from service.metrics.digest import build_digest, digest_due
    from service.metrics.queries import manager_ids
    from service.metrics.reports import compute_manager
    from service.metrics.snapshots import recompute_snapshots
    from service.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        t0 = time.perf_counter()
        occurrences = seed(url, managers, reports, weeks)
        seed_s = time.perf_counter() - t0
        settings = Settings(data_dir=Path(tmp), secret_key=Fernet.generate_key().decode())
        engine = make_engine(url)
        factory = session_factory(engine)
        with factory() as session:
            ids = manager_ids(session)
        rss_before = _rss_mb()
        if use_tracemalloc:
            tracemalloc.start()
        t0 = time.perf_counter()
        for mid in ids:
            with factory() as session:
                compute_manager(session, manager_id=mid, now=NOW)
        metrics_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        size = 0
        for mid in ids:
            with factory() as session:
                _, rendered = build_digest(session, settings=settings, manager_id=mid,
                                           iso_week="2026-W48", now=NOW)
                size += len(rendered.html) + len(rendered.text)
        digest_s = time.perf_counter() - t0
        traced = tracemalloc.get_traced_memory()[1] / 2**20 if use_tracemalloc else None
        if use_tracemalloc:
            tracemalloc.stop()
        t0 = time.perf_counter()
        with factory.begin() as session:
            snapshots = recompute_snapshots(session, now=NOW, weeks=12)
        snap_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with factory() as session:
            due = digest_due(session, settings=settings, now=NOW)
        due_s = time.perf_counter() - t0
        engine.dispose()
        out.put({"managers": managers, "pairs": managers * reports, "occurrences": occurrences,
                 "seed_s": seed_s, "metrics_s": metrics_s, "digest_s": digest_s,
                 "snap_s": snap_s, "snapshots": snapshots, "due_s": due_s, "due": len(due),
                 "rss_mb": _rss_mb() - rss_before, "traced_mb": traced,
                 "avg_kb": size / max(len(ids), 1) / 1024})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,300,1000")
    parser.add_argument("--reports", type=int, default=8)
    parser.add_argument("--weeks", type=int, default=104)
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")
    print(f"{'managers':>8} {'pairs':>6} {'occurr.':>8} {'seed s':>7} {'metrics s':>9} "
          f"{'ms/mgr':>7} {'digests s':>9} {'ms/mgr':>7} {'snap s':>7} {'due s':>6} "
          f"{'RSS + MB':>8} {'traced MB':>9} {'KB/mail':>7}")
    for managers in (int(s) for s in args.sizes.split(",")):
        queue = ctx.Queue()
        proc = ctx.Process(target=run_size, args=(managers, args.reports, args.weeks,
                                                  args.tracemalloc, queue))
        proc.start()
        r = queue.get()
        proc.join()
        traced = f"{r['traced_mb']:.1f}" if r["traced_mb"] is not None else "-"
        print(f"{r['managers']:>8} {r['pairs']:>6} {r['occurrences']:>8} {r['seed_s']:>7.1f} "
              f"{r['metrics_s']:>9.2f} {1000 * r['metrics_s'] / managers:>7.2f} "
              f"{r['digest_s']:>9.2f} {1000 * r['digest_s'] / managers:>7.2f} "
              f"{r['snap_s']:>7.2f} {r['due_s']:>6.2f} {r['rss_mb']:>8.1f} {traced:>9} "
              f"{r['avg_kb']:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
