"""Sync benchmark: Rapport's real product path against a large sandbox population.

    python tests/benchmarks/bench_sync.py [--accounts 200] [--series 8]
                                          [--provider google|microsoft|both] [--threads 4]
                                          [--tracemalloc]

For each provider: a sandbox seeded with `--accounts` managers, each organising `--series`
weekly 1:1s that started 52 weeks ago. Only the managers are connected to Rapport (the
accounts); their reports are known people who hold no calendar in the sandbox (they are
not connected, so their copies would never be read). Rapport runs as `rapport sync --once`
does: SQLite in a temporary folder, the in-process dramatiq worker, the real Google client /
MSAL + httpx over HTTP(S) to the sandbox. Phases:

1. connect every account (the operators' import path: `connect_google`,
   `import_microsoft_refresh_token`);
2. first sync of every account, agendas written included: wall time and peak memory;
3. re-sync with no change by anyone (it sees the echo of our own agenda writes);
4. a second unchanged re-sync (nothing at all changed since);
5. the organizer of account 0 moves one upcoming occurrence by an hour; re-sync everyone.

Provider calls are counted by the sandbox (every HTTP request it served, by the user the
access token belongs to) and cross-checked against Rapport's own provider-call log.

Memory: the product runs in its own process (one per provider) and the sandbox in another,
so figures are the product's alone. "peak RSS" is `resource.getrusage(RUSAGE_SELF).ru_maxrss`
of the product process at the end of the first sync (the process-lifetime peak: imports,
connecting and the first sync); "RSS before" is the resident size just before the first
sync. With --tracemalloc, the peak of Python allocations during the first sync is added
(tracemalloc slows the run noticeably, so it is off by default).

Not collected by pytest (the file name does not match test_*.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import platform
import resource
import sys
import tempfile
import time
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PROVIDERS = ("google", "microsoft")
DOMAIN = "bench.test"
ZONES = (
    "America/New_York",
    "Europe/Berlin",
    "Asia/Kolkata",
    "America/Los_Angeles",
    "Europe/London",
)
CLIENT_ID = "rapport-bench"


# ----------------------------------------------------------------------------------------
# The synthetic population
# ----------------------------------------------------------------------------------------


def manager_email(i: int) -> str:
    return f"mgr{i:04d}@{DOMAIN}"


def build_population(provider: str, accounts: int, series: int, weeks_ago: int = 52) -> Any:
    """`accounts` managers on `provider`, each organising `series` weekly 1:1s."""
    from sandbox.team import Person, Population, SeriesSpec

    people: list[Person] = []
    specs: list[SeriesSpec] = []
    for i in range(accounts):
        zone = ZONES[i % len(ZONES)]
        manager = Person(manager_email(i), f"Manager {i:04d}", zone, provider)
        people.append(manager)
        for j in range(series):
            report = Person(
                f"mgr{i:04d}.r{j}@{DOMAIN}", f"Report {i:04d}-{j}", zone, "external"
            )  # known, but no calendar in the sandbox
            people.append(report)
            specs.append(
                SeriesSpec(
                    key=f"m{i:04d}-r{j}",
                    organizer=manager.email,
                    attendees=(report.email,),
                    title=f"{manager.name} / {report.name} 1:1",
                    time_zone=zone,
                    weekday=j % 5,
                    local_time=(9 + 2 * (j // 5) + (j % 2), 30 * (j % 2)),
                    minutes=30,
                    weeks_ago=weeks_ago,
                    description="Standing 1:1.",
                )
            )
    return Population(tuple(people), tuple(specs))


# ----------------------------------------------------------------------------------------
# The sandbox, in its own process (so its CPU and memory are not the product's)
# ----------------------------------------------------------------------------------------


def _serve_sandbox(conn: Any, provider: str, accounts: int, series: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    from sandbox.google import GoogleSandbox
    from sandbox.microsoft import GraphSandbox

    started = time.perf_counter()
    population = build_population(provider, accounts, series)
    sandbox: Any = (
        GoogleSandbox(population=population)
        if provider == "google"
        else GraphSandbox(population=population)
    )
    sandbox.start()
    conn.send(
        {
            "base_url": sandbox.base_url,
            "token_url": sandbox.token_url,
            "ca_file": getattr(sandbox, "ca_file", None),
            "seed_seconds": time.perf_counter() - started,
        }
    )
    while True:
        message = conn.recv()
        if message is None:
            break
        name, args, kwargs = message
        try:
            if name == "maxrss_mb":
                result: Any = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            else:
                result = getattr(sandbox, name)(*args, **kwargs)
            conn.send(("ok", result))
        except Exception as err:  # noqa: BLE001 - reported to the caller
            conn.send(("error", f"{type(err).__name__}: {err}"))
    sandbox.stop()


class RemoteSandbox:
    """The parts of `SandboxAdmin` the benchmark needs, over a pipe to the sandbox process."""

    def __init__(self, provider: str, accounts: int, series: int) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(
            target=_serve_sandbox,
            args=(child, provider, accounts, series),
            daemon=True,
            name=f"{provider}-sandbox",
        )
        self._process.start()
        info = self._conn.recv()
        self.base_url: str = info["base_url"]
        self.token_url: str = info["token_url"]
        self.ca_file: str | None = info["ca_file"]
        self.seed_seconds: float = info["seed_seconds"]

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self._conn.send((name, args, kwargs))
        status, result = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"sandbox {name}: {result}")
        return result

    def close(self) -> None:
        self._conn.send(None)
        self._process.join(timeout=10)


def product_urls(provider: str, sandbox: RemoteSandbox) -> dict[str, Any]:
    """The settings that point the product's `provider` client at the sandbox (the Graph
    sandbox serves HTTPS with its own CA); the other provider's at an address never called."""
    if provider == "google":
        urls = {"google_api_url": sandbox.base_url, "google_token_url": sandbox.token_url}
    else:
        urls = {"graph_api_url": sandbox.base_url, "microsoft_authority": sandbox.token_url}
    unused = {"google_api_url": "https://unused.invalid/calendar/v3/",
              "google_token_url": "https://unused.invalid/token",
              "graph_api_url": "https://unused.invalid/v1.0",
              "microsoft_authority": "https://unused.invalid/tenant"}
    return {**unused, **urls, "ca_bundle": Path(sandbox.ca_file) if sandbox.ca_file else None}


# ----------------------------------------------------------------------------------------
# Counting calls
# ----------------------------------------------------------------------------------------


def classify(method: str, path: str) -> str:
    """A provider request as list / read / write / token / other."""
    if "token" in path.rsplit("/", 1)[-1] or path.endswith("/token"):
        return "token"
    if "/oauth2/" in path or "openid-configuration" in path or "/discovery/" in path:
        return "auth"
    if method in ("PATCH", "PUT", "POST", "DELETE"):
        return "write"
    if path.endswith("/events") or path.endswith("/delta"):
        return "list"
    return "read"


@dataclass
class Calls:
    """Requests the sandbox served in one phase, per user and kind."""

    per_user: dict[str | None, Counter[str]] = field(default_factory=dict)
    shapes: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, requests: list[Any]) -> Calls:
        per_user: dict[str | None, Counter[str]] = defaultdict(Counter)
        shapes: Counter[str] = Counter()
        for r in requests:
            kind = classify(r.method, r.path)
            per_user[r.user][kind] += 1
            shapes[f"{kind}: {r.method} {_shape(r.path)} {r.status}"] += 1
        return cls(dict(per_user), shapes)

    def total(self, kind: str) -> int:
        return sum(c[kind] for c in self.per_user.values())

    def per_account(self, users: list[str], kind: str) -> tuple[float, int, int]:
        """(mean, min, max) of `kind` calls over the accounts' users."""
        values = [self.per_user.get(u, Counter())[kind] for u in users]
        return sum(values) / len(values), min(values), max(values)


def _shape(path: str) -> str:
    parts = path.split("/")
    out = []
    for p in parts:
        out.append("{id}" if (len(p) > 24 or "@" in p or "%40" in p) else p)
    return "/".join(out)


# ----------------------------------------------------------------------------------------
# One provider's run (in its own process)
# ----------------------------------------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class _DropWorkerRestartNoise(logging.Filter):
    """Each `run_until_idle` starts a new worker on the same broker; dramatiq warns about it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "middleware of the same type twice" not in record.getMessage()


def run_provider(
    provider: str, accounts: int, series: int, threads: int, use_tracemalloc: bool, out: Any
) -> None:
    """Run every phase for one provider; sends a result dict through `out`."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_DropWorkerRestartNoise())
    from cryptography.fernet import Fernet
    from pydantic import SecretStr
    from sqlalchemy import func, select

    from application.context import start
    from sandbox.team import Person
    from service.accounts.crypto import Vault
    from service.agenda.models import AgendaRecord
    from service.calendars.models import ProviderCallLog
    from service.calendars.onboarding import connect_with_refresh_token
    from service.pairs.models import Occurrence, Series
    from service.settings import Settings
    from workers import actors
    from workers.inprocess import run_until_idle

    result: dict[str, Any] = {"provider": provider, "accounts": accounts, "series": series}
    sandbox = RemoteSandbox(provider, accounts, series)
    result["sandbox_seed_s"] = sandbox.seed_seconds
    tmp = tempfile.TemporaryDirectory(prefix=f"rapport-bench-{provider}-")
    try:
        settings = Settings(
            data_dir=Path(tmp.name),
            secret_key=SecretStr(Fernet.generate_key().decode()),
            **product_urls(provider, sandbox),
        )
        started = start(settings)
        runtime, broker = started.runtime, started.broker
        vault = Vault.from_settings(settings)
        users = [manager_email(i) for i in range(accounts)]

        def db_calls() -> Counter[str]:
            with runtime.factory() as session:
                rows = session.execute(
                    select(ProviderCallLog.operation, func.count()).group_by(
                        ProviderCallLog.operation
                    )
                ).all()
            return Counter({op: n for op, n in rows})

        def sync_everyone() -> float:
            t0 = time.perf_counter()
            actors.sync_all_accounts()
            run_until_idle(broker, threads=threads, timeout=3600)
            return time.perf_counter() - t0

        def phase(name: str, action: Callable[[], float]) -> dict[str, Any]:
            sandbox.call("clear_requests")
            before = db_calls()
            seconds = action()
            calls = Calls.of(sandbox.call("requests"))
            logged = db_calls() - before
            figures: dict[str, Any] = {
                "seconds": seconds,
                "requests": sum(calls.shapes.values()),
                "shapes": dict(calls.shapes.most_common()),
                "logged": dict(logged),
            }
            for kind in ("list", "read", "write", "token"):
                mean, lo, hi = calls.per_account(users, kind)
                figures[kind] = {"mean": mean, "min": lo, "max": hi, "total": calls.total(kind)}
            figures["calls"] = calls
            print(
                f"  [{provider}] {name}: {seconds:.1f} s, {figures['requests']} requests",
                file=sys.stderr,
                flush=True,
            )
            return figures

        # 1. connect
        def connect_all() -> float:
            t0 = time.perf_counter()
            for i, email in enumerate(users):
                who = Person(email, "", "UTC", provider)
                with runtime.factory.begin() as session:
                    connect_with_refresh_token(
                        session,
                        settings=settings,
                        vault=vault,
                        provider=provider,
                        client_id=CLIENT_ID,
                        client_secret="bench-secret",
                        refresh_token=who.refresh_token,
                    )
                if (i + 1) % 50 == 0:
                    print(
                        f"  [{provider}] connected {i + 1}/{accounts}", file=sys.stderr, flush=True
                    )
            return time.perf_counter() - t0

        result["connect"] = phase("connect", connect_all)

        # 2. first sync (+ agenda writes)
        result["rss_before_mb"] = _rss_mb()
        if use_tracemalloc:
            tracemalloc.start()
        result["first"] = phase("first sync", sync_everyone)
        if use_tracemalloc:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            result["tracemalloc_peak_mb"] = peak / 2**20
        result["maxrss_mb"] = _maxrss_mb()
        result["rss_after_mb"] = _rss_mb()
        with runtime.factory() as session:
            result["pairs"] = (
                session.scalar(
                    select(func.count()).select_from(Series).where(Series.pair_id.is_not(None))
                )
                or 0
            )
            result["agendas_written"] = (
                session.scalar(
                    select(func.count())
                    .select_from(AgendaRecord)
                    .where(AgendaRecord.written_hash.is_not(None))
                )
                or 0
            )

        # 3. + 4. unchanged re-syncs
        result["echo"] = phase("re-sync (our echoes)", sync_everyone)
        result["quiet"] = phase("re-sync (unchanged)", sync_everyone)

        # 5. one changed occurrence
        key = "m0000-r0"
        now = datetime.now(UTC)
        upcoming = [
            s
            for s in sandbox.call("occurrence_starts", key, until=now + timedelta(days=14))
            if s > now
        ]
        moved_from = upcoming[0]
        sandbox.call("move_occurrence", key, moved_from, moved_from + timedelta(hours=1))
        changed = phase("re-sync (one occurrence moved)", sync_everyone)
        calls: Calls = changed["calls"]
        changed["account0"] = dict(calls.per_user.get(users[0], Counter()))
        others = Calls({u: c for u, c in calls.per_user.items() if u != users[0]})
        changed["others"] = {
            kind: others.per_account(users[1:], kind) if accounts > 1 else (0.0, 0, 0)
            for kind in ("list", "read", "write")
        }
        result["changed"] = changed
        result["moved"] = f"{key} {moved_from.isoformat()} +1h"
        with runtime.factory() as session:
            scheduled = session.scalar(
                select(Occurrence.scheduled_start)
                .join(Series, Series.id == Occurrence.series_id)
                .where(
                    Series.title.like("Manager 0000 / Report 0000-0 %"),
                    Occurrence.original_start == moved_from,
                )
            )
        result["move_seen"] = scheduled == moved_from + timedelta(hours=1)
        result["sandbox_maxrss_mb"] = sandbox.call("maxrss_mb")
        result["dead_letters"] = len(getattr(broker, "dead_letters", []))
        runtime.engine.dispose()
    finally:
        sandbox.close()
        tmp.cleanup()
    for name in ("connect", "first", "echo", "quiet", "changed"):
        result[name].pop("calls", None)
    out.send(result)


# ----------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------


def _per(f: dict[str, Any], kind: str) -> str:
    c = f[kind]
    if c["min"] == c["max"]:
        return f"{c['mean']:g}"
    return f"{c['mean']:.2f} ({c['min']}-{c['max']})"


def report(results: list[dict[str, Any]]) -> str:
    cols = [r["provider"] for r in results]
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, fn: Callable[[dict[str, Any]], str]) -> None:
        rows.append((label, [fn(r) for r in results]))

    row("accounts x weekly 1:1 series", lambda r: f"{r['accounts']} x {r['series']}")
    row("sandbox seeding (own process)", lambda r: f"{r['sandbox_seed_s']:.1f} s")
    row("connect all accounts", lambda r: f"{r['connect']['seconds']:.1f} s")
    row("first sync + agenda writes: time", lambda r: f"{r['first']['seconds']:.1f} s")
    row("  pairs detected / agendas written", lambda r: f"{r['pairs']} / {r['agendas_written']}")
    row("  peak RSS (ru_maxrss) product proc", lambda r: f"{r['maxrss_mb']:.0f} MB")
    row(
        "  RSS before -> after first sync",
        lambda r: f"{r['rss_before_mb']:.0f} -> {r['rss_after_mb']:.0f} MB",
    )
    if any("tracemalloc_peak_mb" in r for r in results):
        row(
            "  tracemalloc peak (first sync)", lambda r: f"{r.get('tracemalloc_peak_mb', 0):.0f} MB"
        )
    row(
        "  per account: list / read / write",
        lambda r: " / ".join(_per(r["first"], k) for k in ("list", "read", "write")),
    )
    for name, label in (("echo", "re-sync seeing our own writes"), ("quiet", "unchanged re-sync")):
        row(f"{label}: time", lambda r: f"{r[name]['seconds']:.1f} s")  # noqa: B023
        row(
            "  per account: list / read / write",
            lambda r: " / ".join(_per(r[name], k) for k in ("list", "read", "write")),  # noqa: B023
        )
        row("  token refreshes (total)", lambda r: str(r[name]["token"]["total"]))  # noqa: B023
    row("one occurrence moved: re-sync time", lambda r: f"{r['changed']['seconds']:.1f} s")
    row(
        "  that account: list / read / write",
        lambda r: " / ".join(
            str(r["changed"]["account0"].get(k, 0)) for k in ("list", "read", "write")
        ),
    )
    row(
        "  other accounts: list / read / write (max)",
        lambda r: " / ".join(
            f"{r['changed']['others'][k][0]:g} ({r['changed']['others'][k][2]})"
            for k in ("list", "read", "write")
        ),
    )
    row("  moved time seen in Rapport's database", lambda r: "yes" if r["move_seen"] else "NO")
    row("sandbox process peak RSS", lambda r: f"{r['sandbox_maxrss_mb']:.0f} MB")
    row("failed messages (dead letters)", lambda r: str(r["dead_letters"]))

    width = max(len(label) for label, _ in rows) + 2
    colw = max(18, *(len(v) for _, vs in rows for v in vs)) + 2
    lines = [" " * width + "".join(c.ljust(colw) for c in cols), "-" * (width + colw * len(cols))]
    for label, values in rows:
        lines.append(label.ljust(width) + "".join(v.ljust(colw) for v in values))
    lines.append("")
    lines.append(
        "list = events.list (Google) / calendarView delta (Graph) pages; read = single "
        "GETs; write = PATCH of an event; token = OAuth token endpoint."
    )
    for r in results:
        lines.append(
            f"[{r['provider']}] request shapes in the unchanged re-sync: "
            f"{json.dumps(r['quiet']['shapes'])}"
        )
        lines.append(
            f"[{r['provider']}] request shapes after the move ({r['moved']}): "
            f"{json.dumps(r['changed']['shapes'])}"
        )
        lines.append(
            f"[{r['provider']}] Rapport's call log, unchanged re-sync: "
            f"{json.dumps(r['quiet']['logged'])}; after the move: "
            f"{json.dumps(r['changed']['logged'])}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--series", type=int, default=8)
    parser.add_argument("--provider", choices=(*PROVIDERS, "both"), default="both")
    parser.add_argument(
        "--threads",
        type=int,
        default=4,
        help="worker threads of the in-process worker (as `rapport sync --once`)",
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="also trace Python allocations during the first sync (slower)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    providers = PROVIDERS if args.provider == "both" else (args.provider,)
    ctx = mp.get_context("spawn")
    results = []
    for provider in providers:
        receive, send = ctx.Pipe(duplex=False)
        process = ctx.Process(
            target=run_provider,
            name=f"bench-{provider}",
            args=(provider, args.accounts, args.series, args.threads, args.tracemalloc, send),
        )
        process.start()
        send.close()
        try:
            results.append(receive.recv())
        except EOFError:
            process.join()
            print(
                f"{provider}: the benchmark process failed (exit {process.exitcode})",
                file=sys.stderr,
            )
            return 1
        process.join()
    print(
        f"Rapport sync benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, SQLite, in-process "
        f"worker ({args.threads} threads)"
    )
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
