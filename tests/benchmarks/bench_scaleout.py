"""Scale-out benchmark: `rapport scheduler` plus 1, 2, 4 `rapport worker` processes on
PostgreSQL and Redis against a Google (or Graph) sandbox of 2,000 accounts (issue 14 target 6).

    PYTHONPATH=$PWD python tests/benchmarks/bench_scaleout.py [--provider google|microsoft]
        [--accounts 2000] [--series 2]
        [--workers 1,2,4] [--threads 4] [--changes 50] [--latency-ms 0] [--worker-cpus 0]
        [--database postgresql+psycopg://postgres@127.0.0.1:5432/test_scaleout]
        [--broker redis://127.0.0.1:6379/9]

Rapport runs as an operator runs it: the real `rapport worker --threads N` and `rapport
scheduler` commands as subprocesses (`tests.faults.fleet`), configured by RAPPORT_*
environment only, on a migrated PostgreSQL database and a Redis broker, the real Google
client over HTTP to a sandbox in a process of its own (`bench_sync.RemoteSandbox`: `--series`
weekly 1:1s per account that started a year ago; every account's calendar is its own).

The accounts are connected once, through the product's import path, into a template database;
each worker count starts from a copy of it (`CREATE DATABASE ... TEMPLATE`), an empty Redis
db and a freshly reset sandbox. The workers start first; the scheduler's first reconcile then
finds every calendar never synced and enqueues the whole first sync at once. Figures:

- first sync: calendars per second from the first events.list to the moment the last
  calendar had its first one (Rapport's provider-call log), agenda writes (events.patch)
  per second over their own first-to-last window, and the wall time until all work was done;
- provider calls per change: `--changes` accounts each see one upcoming occurrence moved at
  the sandbox, then a sync of just those calendars is sent (as a push notification does),
  then another `--changes` moves and a sync of every calendar (as a poll pass does); the
  sandbox's own request log is counted per changed occurrence and per unchanged calendar;
- per process: peak RSS (VmHWM) and CPU seconds of every worker, the scheduler, the
  sandbox, the PostgreSQL backends of the run's database, Redis (shared with the machine)
  and this harness, all from /proc (`scaleout_probe`), to show what saturates the machine.

`--latency-ms L` makes every sandbox request (token refreshes included) wait L ms first
(`slow_down("any", ...)`, an asyncio sleep, so the sandbox keeps serving meanwhile): the real
Calendar API is remote, tens to hundreds of ms per request, while the sandbox answers in about
1 ms on the same cores, so without it the benchmark measures a CPU-bound box, with it a
worker's threads wait on the network as they would in production. The latency is printed
with the figures; the accounts are connected before it is set.

`--worker-cpus C` caps each worker at C CPUs with a cgroup CFS quota of its own
(`cpu_quota.CpuQuota`), as a container's CPU limit does in production. Without it, the workers
share this 2-core machine with PostgreSQL, Redis and the sandbox, so from 2 workers on the
figure is the machine's ceiling; with it, N workers have N times one worker's CPU while the
machine has that to give, and the ratio shows whether the product itself scales (leases,
queues, row locks). The report prints how long each worker was held back by its quota.

Table statistics: this machine's PostgreSQL runs with `autovacuum = off` (a shared test
server), so tables filled during the run would never be analyzed and the planner would keep
planning for the empty tables of the template (a 200-account first sync then spent ~58 ms of
PostgreSQL per `owed_writes` statement walking every calendar's copies; 0.16 ms analyzed). A
production server has autovacuum on (the default): it analyzes a table once 50 + 10 % of its
rows changed, looking every `autovacuum_naptime` (1 min). `--analyze-every S` (default 60)
stands in for it: the harness runs ANALYZE on the run's database every S seconds (its CPU is
counted with PostgreSQL's) and once on the template after connecting; 0 turns it off.
https://www.postgresql.org/docs/15/routine-vacuuming.html#AUTOVACUUM

Then the Google call budget those figures imply for a 50,000-person company against the
Calendar API's documented quota (10,000 requests per minute per project, 600 per minute per
user per project: https://developers.google.com/workspace/calendar/api/guides/quota).

`--provider microsoft`: the same against the Graph sandbox (`RemoteSandbox("microsoft")`,
HTTPS with its own CA, passed to the processes as RAPPORT_CA_BUNDLE), the accounts connected
with a refresh token for provider "microsoft". The change listing is calendarView delta
(kind "list"); a calendar's first sync also lists its series masters once (GET .../events,
counted as kind "masters"). The budget is against Graph's Outlook limits, which are per
mailbox (GRAPH_PER_MAILBOX) with a global cap per app, not per project.

Not collected by pytest (the file name does not match test_*.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import URL, make_url

from application.context import Started, start
from sandbox.team import Person
from service.accounts.crypto import Vault
from service.accounts.models import Account
from service.agenda.models import AgendaRecord
from service.calendars.models import Calendar, ProviderCallLog
from service.calendars.onboarding import connect_with_refresh_token
from service.settings import Settings
from tests.benchmarks.bench_sync import (
    CLIENT_ID,
    RemoteSandbox,
    classify,
    manager_email,
    product_urls,
)
from tests.benchmarks.cpu_quota import CpuQuota, QuotaUnavailable
from tests.benchmarks.scaleout_probe import Sampler, Usage, find_pids
from tests.faults.conftest import process_env
from tests.faults.fleet import Fleet
from workers import actors
from workers.inprocess import wait_until_idle

QUOTA_PER_MINUTE = 10_000  # Calendar API requests per minute per project (Google, above)
COMPANY = 50_000  # people, one calendar each
READY_TIMEOUT = 60.0  # seconds a worker has to say it runs
API_KINDS = ("list", "masters", "read", "write")  # what the API limits count (not OAuth tokens)
PROVIDER_NAMES = {"google": "Google", "microsoft": "Microsoft 365 (Graph)"}
# The call-log operation of a calendar's change listing, whose first per calendar starts its sync
LIST_OPERATION = {"google": "events.list", "microsoft": "calendarView.delta"}
# Microsoft Graph, "Outlook service limits" (Calendar API resources: event, calendar, ...):
# 10,000 API requests in a 10 minute period and 150 MB of upload (PATCH, POST, PUT) in a
# 5 minute period per app ID and mailbox combination, 4 concurrent requests per app ID;
# global: 130,000 requests per 10 seconds per app across all tenants.
# https://learn.microsoft.com/graph/throttling-limits
GRAPH_PER_MAILBOX = 10_000  # requests per 10 minutes per app and mailbox
GRAPH_GLOBAL_PER_MINUTE = 130_000 * 6  # per app across all tenants (130,000 per 10 s)


@dataclass
class Phase:
    """Requests the sandbox served during one phase, by kind, and how long it took."""

    seconds: float
    kinds: Counter[str]
    per_user: dict[str | None, Counter[str]]

    @property
    def api(self) -> int:
        return sum(self.kinds[k] for k in API_KINDS)


def sandbox_pid(sandbox: RemoteSandbox) -> int:
    """The sandbox's own process, for its CPU figures."""
    pid = sandbox._process.pid  # noqa: SLF001 - bench_sync's helper does not expose it
    assert pid is not None
    return pid


def fixed(pids: list[int]) -> Callable[[], list[int]]:
    """A role whose processes are known (the list may still be filled in later)."""
    return lambda: pids


def kind_of(method: str, path: str) -> str:
    """`classify`, with Graph's series-master listing (GET .../events, the calendar's
    masters only; its change listing is calendarView/delta) as a kind of its own."""
    kind = classify(method, path)
    return "masters" if kind == "list" and path.startswith("/v1.0/") and \
        path.endswith("/events") else kind


def served(sandbox: RemoteSandbox, seconds: float) -> Phase:
    kinds: Counter[str] = Counter()
    per_user: dict[str | None, Counter[str]] = {}
    for request in sandbox.call("requests"):
        kind = kind_of(request.method, request.path)
        kinds[kind] += 1
        per_user.setdefault(request.user, Counter())[kind] += 1
    return Phase(seconds, kinds, per_user)


# -- databases ----------------------------------------------------------------------------


def maintenance(server: URL) -> URL:
    """The server's ``postgres`` maintenance database: what the harness administers and
    watches from, so the base name given by ``--database`` need not exist."""
    return server.set(database="postgres")


def recreate(server: URL, name: str, *, template: str | None = None) -> str:
    """Drop and create database `name` (a copy of `template`); its URL."""
    admin = create_engine(maintenance(server), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            copy = f' TEMPLATE "{template}"' if template else ""
            conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    finally:
        admin.dispose()
    return server.set(database=name).render_as_string(hide_password=False)


def connect_accounts(settings: Settings, accounts: int, provider: str) -> float:
    """Connect every manager through the product's import path (one calendar list each)."""
    began = time.perf_counter()
    started = start(settings)
    vault = Vault.from_settings(settings)
    for i in range(accounts):
        who = Person(manager_email(i), "", "UTC", provider)
        with started.runtime.factory.begin() as session:
            connect_with_refresh_token(session, settings=settings, vault=vault,
                                       provider=provider, client_id=CLIENT_ID,
                                       client_secret="bench-secret",
                                       refresh_token=who.refresh_token)
        if (i + 1) % 250 == 0:
            say(f"connected {i + 1}/{accounts} accounts")
    close(started)
    return time.perf_counter() - began


def close(started: Started) -> None:
    started.broker.close()
    started.runtime.engine.dispose()


def say(line: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {line}", file=sys.stderr, flush=True)


# -- one worker count -----------------------------------------------------------------------


@dataclass
class Run:
    """What one worker count measured."""

    workers: int
    calendars: int
    sync_window: float  # first events.list -> the last calendar's first events.list
    writes: int
    write_window: float
    first_wall: float  # scheduler start -> all work done
    first: Phase
    push: Phase
    poll: Phase
    polled: int
    changes: int
    usage: dict[str, Usage]
    unwritten: int
    load: str
    throttled: list[float]  # per worker: seconds held back by its `--worker-cpus` quota

    @property
    def calendars_per_s(self) -> float:
        return self.calendars / self.sync_window if self.sync_window else 0.0

    @property
    def writes_per_s(self) -> float:
        return self.writes / self.write_window if self.write_window else 0.0


class Autoanalyze:
    """ANALYZE of one database every `every` seconds in a thread, in place of the
    autovacuum daemon this server runs without (see the module docstring)."""

    def __init__(self, url: str, every: float) -> None:
        self.engine = create_engine(url, pool_size=1, isolation_level="AUTOCOMMIT")
        self.every = every
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="autoanalyze", daemon=True)

    def start(self) -> Autoanalyze:
        if self.every > 0:
            self._thread.start()
        return self

    def analyze(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("ANALYZE"))
        self.runs += 1

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.analyze()

    def stop(self) -> int:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.engine.dispose()
        return self.runs


def wait_for_workers(logs: Path, count: int) -> None:
    """Until `count` worker logs say the worker runs (its consumers are up)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        ready = [p for p in logs.glob("*-worker.log")
                 if "Worker running" in p.read_text(errors="replace")]
        if len(ready) >= count:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(ready)} of {count} workers started")
        time.sleep(0.2)


def wait_for_first_sync(engine: Engine, calendars: int, timeout: float) -> None:
    """Until every calendar has been synced once."""
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while True:
            done = conn.scalar(select(func.count()).select_from(Calendar)
                               .where(Calendar.last_sync_at.is_not(None))) or 0
            conn.commit()
            if done >= calendars:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{done}/{calendars} calendars synced after {timeout:.0f} s")
            time.sleep(0.5)


def first_sync_windows(engine: Engine, provider: str) -> tuple[float, int, float]:
    """(seconds from the first change listing to the last account's first one, successful
    events.patch calls, seconds from the first of those to the last), from the call log."""
    with engine.connect() as conn:
        firsts = conn.execute(select(func.min(ProviderCallLog.at))
                              .where(ProviderCallLog.operation == LIST_OPERATION[provider])
                              .group_by(ProviderCallLog.account_id)).scalars().all()
        writes = conn.execute(select(func.count(), func.min(ProviderCallLog.at),
                                     func.max(ProviderCallLog.at))
                              .where(ProviderCallLog.operation == "events.patch",
                                     ProviderCallLog.status < 300)).one()
    sync_window = (max(firsts) - min(firsts)).total_seconds() if firsts else 0.0
    count, first, last = writes
    return sync_window, int(count), (last - first).total_seconds() if count > 1 else 0.0


def idle(started: Started, timeout: float) -> None:
    """Until no message of any queue is queued, in flight or delayed into this window."""
    wait_until_idle(started.broker, deadline=time.monotonic() + timeout)


def move_occurrences(sandbox: RemoteSandbox, accounts: list[int], *, nth: int) -> None:
    """The organizer of each account moves the `nth` upcoming occurrence of its first 1:1
    by an hour (within the agenda horizon for nth=0)."""
    now = datetime.now(UTC)
    for i in accounts:
        key = f"m{i:04d}-r0"
        upcoming = [s for s in sandbox.call("occurrence_starts", key,
                                            until=now + timedelta(weeks=nth + 2)) if s > now]
        sandbox.call("move_occurrence", key, upcoming[nth], upcoming[nth] + timedelta(hours=1))


def calendar_ids(engine: Engine, emails: list[str] | None = None) -> list[int]:
    query = select(Calendar.id).join(Account, Account.id == Calendar.account_id)
    if emails is not None:
        query = query.where(Account.email.in_(emails))
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


def sync_and_wait(started: Started, sandbox: RemoteSandbox, ids: list[int],
                  timeout: float) -> Phase:
    """Send a sync of `ids` as a push notification (the webhook) or a poll pass (the
    reconciler) does; the requests it cost once every resulting piece of work is done."""
    sandbox.call("clear_requests")
    began = time.perf_counter()
    for calendar_id in ids:
        actors.sync_calendar.send(calendar_id)
    idle(started, timeout)
    return served(sandbox, time.perf_counter() - began)


def run_workers(count: int, args: argparse.Namespace, settings: Settings, server: URL,
                template: str, sandbox: RemoteSandbox, logs: Path) -> Run:
    url = recreate(server, f"{template.removesuffix('_tpl')}_w{count}", template=template)
    run_settings = settings.model_copy(update={"database_url": url})
    sandbox.call("reset")
    if args.latency_ms:
        sandbox.call("slow_down", "any", args.latency_ms / 1000)
    started = start(run_settings)
    started.broker.client.flushdb()  # type: ignore[attr-defined]  # queues and rate limits
    engine = started.runtime.engine
    database = make_url(url).database
    dropped = ("RAPPORT_SMTP_URL",  # the .eml outbox
               *(() if settings.ca_bundle else ("RAPPORT_CA_BUNDLE",)))  # Google here is HTTP
    env = {k: v for k, v in process_env(run_settings).items() if k not in dropped}
    env["RAPPORT_LOG_LEVEL"] = "WARNING"  # a line per synced calendar is the harness's CPU
    folder = logs / f"w{count}"
    folder.mkdir()
    fleet = Fleet(env, folder)
    pg = create_engine(maintenance(server), pool_size=1)
    analyzer = Autoanalyze(url, args.analyze_every)
    quotas: list[CpuQuota] = []
    try:
        workers = [fleet.worker(threads=args.threads) for _ in range(count)]
        if args.worker_cpus:
            for n, worker in enumerate(workers):
                name = f"rapport-bench-{os.getpid()}-worker-{n + 1}"  # runs stay apart
                quotas.append(CpuQuota(name, args.worker_cpus))
                quotas[-1].add(worker.pid)
        wait_for_workers(folder, count)
        scheduler_box: list[int] = []
        redis = find_pids("redis-server", argument=":6379")

        def backends() -> list[int]:
            with pg.connect() as conn:
                return list(conn.execute(text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = :d"), {"d": database})
                    .scalars())

        sampler = Sampler({
            **{f"worker {n + 1}": fixed([w.pid]) for n, w in enumerate(workers)},
            "scheduler": fixed(scheduler_box),  # filled once the scheduler starts
            "sandbox": fixed([sandbox_pid(sandbox)]),
            "postgres (run db)": backends,
            "redis (shared)": fixed(redis),
            "harness": fixed([os.getpid()]),
        }).start()
        sandbox.call("clear_requests")
        analyzer.start()
        began = time.perf_counter()
        scheduler_box.append(fleet.scheduler().pid)
        calendars = len(calendar_ids(engine))
        wait_for_first_sync(engine, calendars, args.timeout)
        idle(started, args.timeout)
        first = served(sandbox, time.perf_counter() - began)
        sync_window, writes, write_window = first_sync_windows(engine, args.provider)
        say(f"{count} worker(s): first sync of {calendars} calendars in {first.seconds:.1f} s")

        changed = [i * args.accounts // args.changes for i in range(args.changes)]
        emails = [manager_email(i) for i in changed]
        move_occurrences(sandbox, changed, nth=0)
        push = sync_and_wait(started, sandbox, calendar_ids(engine, emails), args.timeout)
        move_occurrences(sandbox, changed, nth=1)
        step = max(args.accounts // args.poll_sample, 1)  # every step-th calendar, 1: all
        sample = [manager_email(i) for i in range(args.accounts)
                  if i in changed or i % step == 1 % step]
        poll = sync_and_wait(started, sandbox, calendar_ids(engine, sample), args.timeout)
        usage = sampler.stop()
        with engine.connect() as conn:
            unwritten = conn.scalar(select(func.count()).select_from(AgendaRecord).where(
                AgendaRecord.written_hash.is_distinct_from(AgendaRecord.content_hash))) or 0
        return Run(count, calendars, sync_window, writes, write_window, first.seconds, first,
                   push, poll, len(sample), len(changed), usage, unwritten,
                   " ".join(Path("/proc/loadavg").read_text().split()[:3]),
                   [q.throttled_s() for q in quotas])
    finally:
        ending = signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the cleanup runs whole
        say(f"{count} worker(s): ANALYZE ran {analyzer.stop()} times")
        fleet.stop_all()
        for quota in quotas:
            quota.close()
        pg.dispose()
        started.broker.client.flushdb()  # type: ignore[attr-defined]
        close(started)
        signal.signal(signal.SIGTERM, ending)


# -- report -------------------------------------------------------------------------------


def report(runs: list[Run], args: argparse.Namespace) -> str:
    base = runs[0]
    lines = [
        f"Rapport scale-out benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; {args.accounts} "
        f"{PROVIDER_NAMES[args.provider]} accounts x {args.series} weekly 1:1s, "
        f"`rapport worker --threads {args.threads}`{quota_text(args)}, "
        f"PostgreSQL + Redis; provider latency {args.latency_ms:g} ms per request "
        "(sandbox `slow_down(\"any\")`; 0: the sandbox's own ~1 ms on these cores); "
        f"ANALYZE every {args.analyze_every:g} s (0: never; the server's autovacuum is "
        f"{autovacuum(args)})",
        "",
        "| workers | calendars/s (first sync) | x 1 worker | agenda writes/s | first sync "
        "wall | per worker CPU s (util) | worker peak RSS MB | scheduler CPU s | sandbox "
        "CPU s (util) | PG CPU s | Redis CPU s | harness CPU s | load avg at end |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        workers = [u for name, u in run.usage.items() if name.startswith("worker")]
        cpu = " / ".join(f"{u.cpu_total:.0f} ({u.cpu_total / run.first_wall:.2f})"
                         for u in workers)
        if run.throttled:
            cpu += f"; throttled {' / '.join(f'{t:.0f}' for t in run.throttled)} s"
        rss = " / ".join(f"{max(u.peak_mb.values(), default=0):.0f}" for u in workers)
        box = run.usage["sandbox"].cpu_total
        lines.append(
            f"| {run.workers} | {run.calendars_per_s:.1f} | "
            f"{run.calendars_per_s / base.calendars_per_s:.2f} | {run.writes_per_s:.1f} | "
            f"{run.first_wall:.0f} s | {cpu} | {rss} | "
            f"{run.usage['scheduler'].cpu_total:.1f} | {box:.0f} ({box / run.first_wall:.2f}) | "
            f"{run.usage['postgres (run db)'].cpu_total:.0f} | "
            f"{run.usage['redis (shared)'].cpu_total:.0f} | "
            f"{run.usage['harness'].cpu_total:.0f} | {run.load} |")
    kinds = first_sync_kinds(args.provider)
    lines += ["", "CPU seconds cover the whole run (first sync, the push and the poll pass); "
              "util = CPU s / first-sync wall s (1.00 = one core).", "",
              f"| workers | first sync: API calls per calendar ({' / '.join(kinds)}), tokens | "
              "push: API calls per changed occurrence | poll pass: API calls per changed "
              "occurrence / per calendar | unwritten agendas |",
              "| --- | --- | --- | --- | --- |"]
    for run in runs:
        f = run.first.kinds
        lines.append(
            f"| {run.workers} | {' / '.join(f'{f[k] / run.calendars:.2f}' for k in kinds)}, "
            f"{f['token']}{graph_auth(run.first, args.provider)} | "
            f"{run.push.api / run.changes:.2f} ({dict(run.push.kinds)}) | "
            f"{run.poll.api / run.changes:.1f} / {run.poll.api / run.polled:.3f} "
            f"({run.polled} calendars) | "
            f"{run.unwritten} |")
    limits = budget if args.provider == "google" else graph_limits
    lines += ["", *limits(runs[-1], args)]
    return "\n".join(lines)


def quota_text(args: argparse.Namespace) -> str:
    """How the workers' CPU was capped, for the report's first line."""
    if not args.worker_cpus:
        return ", no CPU cap per worker"
    return f" capped at {args.worker_cpus:g} CPU each (cgroup CFS quota, as a container limit)"


def graph_auth(phase: Phase, provider: str) -> str:
    """MSAL's reads of the authority's OpenID configuration and keys (kind "auth"; Graph
    only, Google's client reads none)."""
    return f" + {phase.kinds['auth']} authority reads" if provider == "microsoft" else ""


def first_sync_kinds(provider: str) -> tuple[str, ...]:
    """The API call kinds of the first sync's column: Graph's also lists series masters
    (once per calendar, `_list_series_uids`), Google's listing carries them."""
    return API_KINDS if provider == "microsoft" else tuple(k for k in API_KINDS
                                                           if k != "masters")


def autovacuum(args: argparse.Namespace) -> str:
    """The server's `autovacuum` setting (whether it analyzes tables on its own)."""
    engine = create_engine(maintenance(make_url(args.database)))
    try:
        with engine.connect() as conn:
            return str(conn.scalar(text("SHOW autovacuum")))
    finally:
        engine.dispose()


def call_rates(run: Run) -> tuple[float, float, float]:
    """API calls per calendar in the first sync, per unchanged calendar in the poll pass (minus
    what its changes cost) and per pushed change."""
    unchanged = run.poll.api - run.push.api
    return (run.first.api / run.calendars, unchanged / max(run.polled - run.changes, 1),
            run.push.api / run.changes)


def budget(run: Run, args: argparse.Namespace) -> list[str]:
    """What the figures imply for COMPANY people against QUOTA_PER_MINUTE."""
    per_calendar_first, per_unchanged, per_change = call_rates(run)
    poll_minutes = args.poll_seconds / 60
    steady = COMPANY * per_unchanged / poll_minutes
    floor_minutes = COMPANY * per_calendar_first / QUOTA_PER_MINUTE
    rate = run.calendars_per_s
    return [
        f"Call budget for {COMPANY:,} people (one calendar each) against Google's "
        f"{QUOTA_PER_MINUTE:,} requests/min/project (tokens are OAuth, not Calendar API):",
        f"- first sync: {per_calendar_first:.2f} API calls per calendar -> "
        f"{COMPANY * per_calendar_first:,.0f} calls, at least {floor_minutes:.0f} min at the "
        f"quota; at the {run.workers}-worker rate here ({rate:.1f} calendars/s = "
        f"{rate * 60 * per_calendar_first:,.0f} calls/min) it takes "
        f"{COMPANY / rate / 60 if rate else 0:.0f} min",
        f"- steady-state polling every {args.poll_seconds} s: {per_unchanged:.2f} calls per "
        f"unchanged calendar -> {steady:,.0f} calls/min = {100 * steady / QUOTA_PER_MINUTE:.0f}"
        f" % of the quota; the quota allows polling at most every "
        f"{COMPANY * per_unchanged / QUOTA_PER_MINUTE:.1f} min, with no room left for changes",
        f"- each change pushed: {per_change:.2f} calls; what the quota leaves for changes at "
        f"that poll pace: {max(QUOTA_PER_MINUTE - steady, 0) / per_change:,.0f} changes/min",
    ]


def graph_limits(run: Run, args: argparse.Namespace) -> list[str]:
    """What the figures imply for COMPANY people against Graph's Outlook limits, which are
    per mailbox (GRAPH_PER_MAILBOX), with a global cap per app (GRAPH_GLOBAL_PER_MINUTE)."""
    per_calendar_first, per_unchanged, per_change = call_rates(run)
    polls_per_window = 600 / args.poll_seconds  # the mailbox limit's window is 10 minutes
    mailbox_polling = per_unchanged * polls_per_window
    steady = COMPANY * per_unchanged / (args.poll_seconds / 60)
    rate = run.calendars_per_s
    return [
        f"Call budget for {COMPANY:,} people (one mailbox each) against Microsoft Graph's "
        f"Outlook limits: {GRAPH_PER_MAILBOX:,} requests per 10 min per app and mailbox, 4 "
        f"concurrent requests, {GRAPH_GLOBAL_PER_MINUTE // 6:,} requests per 10 s per app "
        "globally (https://learn.microsoft.com/graph/throttling-limits; tokens are Entra ID's, "
        "not Graph's):",
        f"- first sync: {per_calendar_first:.2f} API calls per mailbox "
        f"({100 * per_calendar_first / GRAPH_PER_MAILBOX:.2f} % of its 10-min limit) -> "
        f"{COMPANY * per_calendar_first:,.0f} calls, at least "
        f"{COMPANY * per_calendar_first / GRAPH_GLOBAL_PER_MINUTE:.1f} min at the global cap; "
        f"at the {run.workers}-worker rate here ({rate:.1f} calendars/s = "
        f"{rate * 60 * per_calendar_first:,.0f} calls/min) it takes "
        f"{COMPANY / rate / 60 if rate else 0:.0f} min",
        f"- steady-state polling every {args.poll_seconds} s: {per_unchanged:.2f} calls per "
        f"unchanged mailbox = {mailbox_polling:.1f} of its {GRAPH_PER_MAILBOX:,} per 10 min; "
        f"{steady:,.0f} calls/min company-wide = "
        f"{100 * steady / GRAPH_GLOBAL_PER_MINUTE:.1f} % of the global cap",
        f"- each change pushed: {per_change:.2f} calls; a mailbox polled at that pace has room "
        f"for {max(GRAPH_PER_MAILBOX - mailbox_polling, 0) / per_change:,.0f} changes per "
        "10 min",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--provider", choices=tuple(PROVIDER_NAMES), default="google")
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--series", type=int, default=2)
    parser.add_argument("--workers", default="1,2,4",
                        help="worker process counts to run, one after the other")
    parser.add_argument("--threads", type=int, default=4, help="`rapport worker --threads`")
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--poll-sample", type=int, default=400,
                        help="calendars the poll pass syncs (the changed ones among them)")
    parser.add_argument("--poll-seconds", type=int, default=300,
                        help="the polling interval the budget assumes (the default setting)")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="every sandbox request waits this long first (a remote API)")
    parser.add_argument("--database", default=os.environ.get(
        "RAPPORT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test_scaleout"),
        help="server and base name: databases <name>_tpl and <name>_w<N> are (re)created")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--worker-cpus", type=float, default=0.0,
                        help="cap each worker at this many CPUs, as a container limit does "
                             "(cgroup CFS quota, root only); 0: no cap")
    parser.add_argument("--analyze-every", type=float, default=60.0,
                        help="ANALYZE the run database every S s (autovacuum's stand-in); 0: no")
    args = parser.parse_args(argv)
    # a SIGTERM (timeout, kill) unwinds like Ctrl-C, so the workers, the scheduler and their
    # cgroups are stopped and removed by `run_workers`' cleanup (which a SIGTERM does not cut
    # short) instead of left running
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    logging.basicConfig(level=logging.WARNING)
    counts = [int(n) for n in args.workers.split(",")]
    if args.worker_cpus:
        try:
            CpuQuota(f"rapport-bench-{os.getpid()}-check", args.worker_cpus).close()
        except QuotaUnavailable as err:
            parser.error(f"--worker-cpus: {err}")
    server = make_url(args.database)
    template = f"{server.database}_tpl"

    say(f"sandbox: seeding {args.accounts} accounts x {args.series} series")
    sandbox = RemoteSandbox(args.provider, args.accounts, args.series)
    folder = Path(tempfile.mkdtemp(prefix="rapport-scaleout-"))
    try:
        settings = Settings(
            data_dir=folder, database_url=recreate(server, template), broker_url=args.broker,
            secret_key=SecretStr(Fernet.generate_key().decode()),
            **product_urls(args.provider, sandbox),
            smtp_url=SecretStr("smtp://127.0.0.1:1"),  # dropped: the .eml outbox is used
            poll_interval_seconds=3600,  # no poll during a run: syncs are asked for explicitly
        )
        connected = connect_accounts(settings, args.accounts, args.provider)
        say(f"connected in {connected:.0f} s; logs in {folder}")
        if args.analyze_every > 0:
            once = Autoanalyze(settings.database_url or "", 0)  # the template's statistics
            once.analyze()
            once.stop()  # no connection may stay open to a template
        logs = folder / "logs"
        logs.mkdir()
        runs = [run_workers(count, args, settings, server, template, sandbox, logs)
                for count in counts]
        print(report(runs, args))
    finally:
        sandbox.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
