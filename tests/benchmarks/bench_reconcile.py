"""Reconcile benchmark: one pass of the reconciler with nothing due, part by part, before
(the planner before issue 14: every upcoming agenda re-planned each pass) and after
(change-driven).

    python tests/benchmarks/bench_reconcile.py [--sizes 1600,50000] [--database-url URL]
                                               [--before-max 1600] [--before-ref REF]

Not collected by pytest. Per size: a migrated SQLite file (or `--database-url`, emptied
first), seeded straight with `seed_series.seed` (N series, a year of weekly history, 8 weeks
ahead, copies, agendas, topics, items; Core bulk inserts); then

1. warm-up: the first planning of every pair (batched, timed on its own), one full reconcile
   body (prep nudges queued), then every invite is made to hold its agenda (`settle_writes`),
   the queued email sent and the weekly snapshots of the seeded history written: the steady
   state, polling (no RAPPORT_PUBLIC_URL);
2. before: the same body with the old `plan_due_agendas` (its source read with git from
   `--before-ref`, default 038fefd, the last commit before change-driven planning, run
   against this schema; sizes up to `--before-max`), one reconcile
   interval later;
3. after: the body with this branch's planner, one and two intervals later.

Each part is what `workers.actors.reconcile` runs (its service calls, in its transactions),
with its time and SQL statement count (`tests.statements`). "writes due" is
what the pass would enqueue: 0 both times shows the two planners agree on every agenda.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import func, select, text

import service.models  # noqa: F401  (every table)
from service.agenda import planner
from service.agenda.models import PlanWanted
from service.calendars.push import calendars_needing_channels, calendars_of_stopped_accounts
from service.calendars.queries import accounts_without_calendars, calendars_due_for_sync
from service.db import make_engine, migrate, session_factory
from service.email.outbox import due_messages
from service.email.reconsent import queue_reconsent_emails
from service.metrics.digest import digest_due
from service.metrics.snapshots import Refreshed, refresh_snapshots
from service.outcomes import service as outcomes
from service.prep.nudge import queue_prep_nudges
from service.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: `tests.`
from tests.benchmarks.seed_series import NOW, seed, settle_writes  # noqa: E402
from tests.statements import statements  # noqa: E402

Planner = Callable[..., list[int]]


BEFORE_REF = "038fefd"  # main before change-driven planning


def main_planner(repo: Path, ref: str = BEFORE_REF) -> Planner:
    """The old `plan_due_agendas`, loaded from `git show REF:...` as its own module."""
    source = subprocess.run(["git", "-C", str(repo), "show", f"{ref}:service/agenda/planner.py"],
                            check=True, capture_output=True, text=True).stdout
    module = types.ModuleType("main_planner")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{ref}:service/agenda/planner.py", "exec"),  # noqa: S102
         module.__dict__)
    return module.plan_due_agendas  # type: ignore[no-any-return]


def reconcile_body(factory: Any, settings: Settings, now: datetime,
                   plan: Planner) -> list[tuple[str, float, int, int]]:
    """`workers.actors.reconcile`'s service calls in its transactions: (part, seconds,
    statements, items due) each."""
    parts: list[tuple[str, float, int, int]] = []

    def part(name: str, call: Callable[[], Any]) -> None:
        with statements(factory) as seen:
            t0 = time.perf_counter()
            result = call()
            seconds = time.perf_counter() - t0
        if isinstance(result, Refreshed):
            result = result.rows
        due = len(result) if isinstance(result, list | set | tuple) else int(bool(result))
        parts.append((name, seconds, len(seen), due))

    poll = timedelta(seconds=settings.poll_interval_seconds)
    with factory.begin() as session:
        part("calendars_due_for_sync",
             lambda: calendars_due_for_sync(session, now=now, poll_interval=poll, wall_now=now))
        part("accounts_without_calendars", lambda: accounts_without_calendars(session))
        part("plan_due_agendas (writes due)", lambda: plan(session, settings=settings, now=now))
        if settings.public_url:
            part("calendars_needing_channels",
                 lambda: calendars_needing_channels(session, now=now))
        part("calendars_of_stopped_accounts", lambda: calendars_of_stopped_accounts(session))
    with factory.begin() as session:
        part("outcomes.arm_checks", lambda: outcomes.arm_checks(session, settings=settings,
                                                                now=now))
        part("outcomes.settle_ended", lambda: outcomes.settle_ended(session, settings=settings,
                                                                    now=now))
        part("outcomes.revisit_drops", lambda: outcomes.revisit_drops(
            session, settings=settings, now=now))
        part("outcomes.due_checks", lambda: outcomes.due_checks(session, now=now))
        part("queue_reconsent_emails", lambda: queue_reconsent_emails(
            session, settings=settings, now=now))
        part("due_messages", lambda: due_messages(session, now=now))
    part("digest_due", lambda: digest_due(factory, settings=settings, now=now))
    part("refresh_snapshots", lambda: refresh_snapshots(factory, now=now))
    with factory.begin() as session:
        part("queue_prep_nudges", lambda: queue_prep_nudges(session, settings=settings,
                                                            now=now))
    return parts


def print_parts(title: str, parts: list[tuple[str, float, int, int]]) -> None:
    total_s = sum(p[1] for p in parts)
    total_n = sum(p[2] for p in parts)
    print(f"  {title}: total {total_s * 1000:9.1f} ms, {total_n:6d} statements")
    for name, seconds, sent, due in parts:
        print(f"    {name:<32} {seconds * 1000:9.1f} ms {sent:6d} stmts  due {due}")


def first_planning(factory: Any, settings: Settings, now: datetime) -> None:
    """Plan every pair (the first pass after the migration, or after the first syncs)."""
    t0, passes = time.perf_counter(), 0
    with statements(factory) as seen:
        while True:
            with factory.begin() as session:
                planner.plan_due_agendas(session, settings=settings, now=now)
                left = session.scalar(select(func.count()).select_from(PlanWanted))
            passes += 1
            if not left:
                break
    print(f"  first planning of every pair: {time.perf_counter() - t0:.1f} s, "
          f"{len(seen)} statements, {passes} passes")


def run_size(size: int, url: str, repo: Path, before_max: int, before_ref: str) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-reconcile-"))
    settings = Settings(data_dir=folder, secret_key=SecretStr(Fernet.generate_key().decode()),
                        digest_weekday=(NOW.weekday() + 2) % 7)  # no digest due this pass
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    migrate(engine)
    t0 = time.perf_counter()
    seeded = seed(engine, series=size)
    print(f"\n== {size} series: {seeded.occurrences} occurrences, {seeded.rows} rows seeded in "
          f"{time.perf_counter() - t0:.1f} s ({engine.dialect.name})")
    factory = session_factory(engine)
    first_planning(factory, settings, NOW)
    reconcile_body(factory, settings, NOW, planner.plan_due_agendas)  # warm-up
    settle_writes(engine)
    with engine.begin() as conn:  # the warm-up's prep nudges were delivered meanwhile
        conn.execute(text("UPDATE outbox SET status = 'sent'"))
    with factory.begin() as session:  # the warm-up's plan is the state the writes leave
        planner.plan_due_agendas(session, settings=settings, now=NOW)
    t0, rows, changes = time.perf_counter(), 0, 0
    while (step := refresh_snapshots(factory, now=NOW, max_rows=50_000)).changes:  # the seed's
        rows, changes = rows + step.rows, changes + step.changes
    print(f"  weekly snapshots of the seeded history: {rows} rows from {changes} logged changes"
          f" in {time.perf_counter() - t0:.1f} s")
    interval = timedelta(seconds=settings.reconcile_interval_seconds)
    if size <= before_max:
        print_parts(f"before (the planner at {before_ref})", reconcile_body(
            factory, settings, NOW + interval, main_planner(repo, before_ref)))
    for k in (2, 3):
        print_parts(f"after (pass {k - 1})", reconcile_body(
            factory, settings, NOW + k * interval, planner.plan_due_agendas))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1600,50000")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL URL (emptied!); default a SQLite file per size")
    parser.add_argument("--before-max", type=int, default=1600,
                        help="run the old planner only up to this many series")
    parser.add_argument("--before-ref", default=BEFORE_REF,
                        help="the git commit whose planner is 'before'")
    args = parser.parse_args()
    repo = Path(__file__).resolve().parents[2]
    with open("/proc/loadavg") as f:
        print(f"load average at start: {f.read().split()[:3]}")
    for size in (int(s) for s in args.sizes.split(",")):
        url = args.database_url or \
            f"sqlite:///{Path(tempfile.mkdtemp(prefix='bench-db-')) / 'rapport.db'}"
        run_size(size, url, repo, args.before_max, args.before_ref)
    with open("/proc/loadavg") as f:
        print(f"load average at end: {f.read().split()[:3]}")


if __name__ == "__main__":
    main()
