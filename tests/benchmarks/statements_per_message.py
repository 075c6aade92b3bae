"""Where a worker's database work goes: SQL statements per actor message, by statement text,
during a first sync, a pushed change and a reconcile pass (issue 14 target 6).

    PYTHONPATH=$PWD python tests/benchmarks/statements_per_message.py [--accounts 200]
        [--series 2] [--database postgresql+psycopg://postgres@127.0.0.1:5432/test_scaleout]

The product in-process (the real actors on dramatiq's stub broker, `run_until_idle`), on a
migrated PostgreSQL database `<name>_stmts` and a Google sandbox in its own process. Every
statement is counted with SQLAlchemy's `before_cursor_execute` event, attributed to the actor
whose message the thread is processing (a dramatiq middleware), keyed by its text with
literals and parameter lists folded, and timed to `after_cursor_execute` (client side: the
round trip plus PostgreSQL's work). PostgreSQL's own view comes from the cumulative
statistics views of that database: `pg_stat_user_functions` (the PL/pgSQL trigger functions,
with `track_functions = 'pl'` set on the database) and `pg_stat_user_tables` (rows written).
pg_stat_statements is not used: it needs `shared_preload_libraries`, a server restart.
Not collected by pytest.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dramatiq
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from application.context import start
from service.settings import Settings
from tests.benchmarks.bench_scaleout import (
    calendar_ids,
    connect_accounts,
    maintenance,
    move_occurrences,
    recreate,
)
from tests.benchmarks.bench_sync import RemoteSandbox, manager_email
from workers import actors
from workers.inprocess import run_until_idle

_current = threading.local()


class ActorOf(dramatiq.Middleware):
    """Remembers, per worker thread, which actor's message is being processed."""

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        _current.actor = message.actor_name
        _current.message_id = message.message_id

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *,
                              result: Any = None, exception: BaseException | None = None) -> None:
        _current.actor = None


def shape(statement: str) -> str:
    """A statement's text with whitespace, literals and expanded parameter lists folded."""
    s = re.sub(r"\s+", " ", statement).strip()
    s = re.sub(r"%\(\w+\)s", "?", s)
    s = re.sub(r"(\?, )+\?", "?...", s)
    s = re.sub(r"\b\d+\b", "N", s)
    return s[:150]


class Statements:
    """Counts and client-side seconds per (actor, statement shape), plus messages per actor."""

    def __init__(self) -> None:
        self.count: Counter[tuple[str, str]] = Counter()
        self.seconds: defaultdict[tuple[str, str], float] = defaultdict(float)
        self.traces: dict[str, tuple[str, list[str]]] = {}  # actor -> (message id, sequence)
        self.lock = threading.Lock()

    def clear(self) -> None:
        with self.lock:
            self.count.clear()
            self.seconds.clear()
            self.traces.clear()

    def listen(self, engine: Any) -> None:
        @event.listens_for(engine, "before_cursor_execute")
        def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            conn.info["began"] = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            key = (getattr(_current, "actor", None) or "(harness)", shape(statement))
            spent = time.perf_counter() - conn.info.pop("began", time.perf_counter())
            message = getattr(_current, "message_id", None)
            with self.lock:
                self.count[key] += 1
                self.seconds[key] += spent
                trace = self.traces.setdefault(key[0], (message or "", []))
                if trace[0] == message:  # the first message of each actor, in order
                    trace[1].append(key[1])


class Processed(dramatiq.Middleware):
    """Messages each actor processed (the stub broker keeps no count)."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.lock = threading.Lock()

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *,
                              result: Any = None, exception: BaseException | None = None) -> None:
        with self.lock:
            self.count[message.actor_name] += 1


def report(title: str, stats: Statements, processed: Counter[str], top: int) -> None:
    print(f"\n### {title}\n")
    print("| actor | messages | statements | per message | client s per message |")
    print("| --- | ---: | ---: | ---: | ---: |")
    per_actor: Counter[str] = Counter()
    seconds: defaultdict[str, float] = defaultdict(float)
    for (actor, _), n in stats.count.items():
        per_actor[actor] += n
    for (actor, _), s in stats.seconds.items():
        seconds[actor] += s
    for actor, n in per_actor.most_common():
        m = processed.get(actor, 0)
        print(f"| {actor} | {m} | {n} | {n / m if m else 0:.1f} | "
              f"{seconds[actor] / m if m else 0:.4f} |")
    for actor, (_, sequence) in stats.traces.items():
        if actor == "(harness)":
            continue
        print(f"\nOne {actor} message, statement by statement ({len(sequence)}):\n")
        for n, sql in enumerate(sequence, 1):
            print(f"{n:3}. {sql[:110]}")
    print(f"\nTop {top} statements by count:\n")
    print("| actor | count | per message | client ms total | statement |")
    print("| --- | ---: | ---: | ---: | --- |")
    for (actor, sql), n in stats.count.most_common(top):
        m = processed.get(actor, 0)
        print(f"| {actor} | {n} | {n / m if m else 0:.2f} | "
              f"{1000 * stats.seconds[(actor, sql)]:.0f} | `{sql}` |")


def pg_view(url: str) -> None:
    engine = create_engine(url)
    with engine.connect() as conn:
        funcs = conn.execute(text(
            "SELECT funcname, calls, round(total_time::numeric, 1), round(self_time::numeric, 1)"
            " FROM pg_stat_user_functions ORDER BY total_time DESC LIMIT 10")).all()
        tables = conn.execute(text(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del, seq_scan, idx_scan"
            " FROM pg_stat_user_tables ORDER BY n_tup_ins + n_tup_upd + n_tup_del DESC"
            " LIMIT 12")).all()
        db = conn.execute(text(
            "SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted,"
            " tup_updated, tup_deleted FROM pg_stat_database WHERE datname = current_database()"
        )).one()
    engine.dispose()
    print("\n### PostgreSQL's view (cumulative over the whole run)\n")
    print("| trigger function | calls | total ms | self ms |\n| --- | ---: | ---: | ---: |")
    for row in funcs:
        print(f"| {row[0]} | {row[1]} | {row[2]} | {row[3]} |")
    print("\n| table | inserted | updated | deleted | seq scans | index scans |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in tables:
        print("| " + " | ".join(str(v) for v in row) + " |")
    print(f"\ncommits {db[0]}, rollbacks {db[1]}, rows returned {db[2]}, fetched {db[3]}, "
          f"inserted {db[4]}, updated {db[5]}, deleted {db[6]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--series", type=int, default=2)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--database",
                        default="postgresql+psycopg://postgres@127.0.0.1:5432/test_scaleout")
    args = parser.parse_args(argv)
    server = make_url(args.database)
    name = f"{server.database}_stmts"
    url = recreate(server, name)
    admin = create_engine(maintenance(server), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # the trigger functions' time, in pg_stat_user_functions
        conn.execute(text(f"ALTER DATABASE \"{name}\" SET track_functions = 'pl'"))
    admin.dispose()
    sandbox = RemoteSandbox("google", args.accounts, args.series)
    folder = Path(tempfile.mkdtemp(prefix="rapport-stmts-"))
    try:
        settings = Settings(
            data_dir=folder, database_url=url,
            secret_key=SecretStr(Fernet.generate_key().decode()),
            google_api_url=sandbox.base_url, google_token_url=sandbox.token_url,
            graph_api_url="https://unused.invalid/v1.0",
            microsoft_authority="https://unused.invalid/tenant",
            poll_interval_seconds=3600)
        connect_accounts(settings, args.accounts, "google")
        started = start(settings)
        broker, engine = started.broker, started.runtime.engine
        processed = Processed()
        broker.add_middleware(ActorOf())
        broker.add_middleware(processed)
        stats = Statements()
        stats.listen(engine)

        actors.reconcile.send()  # as the scheduler's first pass: it queues the first sync
        run_until_idle(broker, threads=4, timeout=3600)
        report(f"First sync of {args.accounts} calendars (reconcile -> sync_calendar -> "
               "write_agenda)", stats, processed.count, args.top)

        stats.clear()
        processed.count.clear()
        changed = [i * args.accounts // args.changes for i in range(args.changes)]
        move_occurrences(sandbox, changed, nth=0)
        for calendar_id in calendar_ids(engine, [manager_email(i) for i in changed]):
            actors.sync_calendar.send(calendar_id)
        run_until_idle(broker, threads=4, timeout=600)
        report(f"{args.changes} pushed changes (one occurrence moved each)", stats,
               processed.count, args.top)

        stats.clear()
        processed.count.clear()
        actors.reconcile.send()
        run_until_idle(broker, threads=4, timeout=600)
        report("One reconcile pass with nothing due", stats, processed.count, 15)
        pg_view(url)
        print(f"\n({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load "
              f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])})")
        started.runtime.engine.dispose()
    finally:
        sandbox.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
