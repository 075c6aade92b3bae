"""First sync, sync only: Rapport against the physical floor and against gcal-sync, one run.

    python tests/benchmarks/floor_sync.py [--accounts 50] [--series 8]
                                          [--rapport LABEL=PATH ...] [--repeat 1]
                                          [--only COLUMN ...] [--profile DIR] [--json FILE]

One Google sandbox (the population of `bench_sync.py`: N managers x 8 weekly 1:1s that
started 52 weeks ago) in its own process; each column runs in a fresh process of its own,
one account after another, against that sandbox, and reports wall and CPU seconds of the
first sync only (setup such as migrations and connecting accounts is not timed):

- **floor**: bare `httpx` (one keep-alive client): one token POST per account, then the
  events.list pages with Rapport's request shape (``singleEvents=true``,
  ``showDeleted=true``, ``maxResults=250``, ``timeMin`` = now - lookback, no ``timeMax``,
  ``pageToken`` until ``nextSyncToken``), `json` parsing, `datetime.fromisoformat`, and
  SQLAlchemy Core multi-row INSERTs (series, sources, occurrences, copies; ids returned with
  each row's natural key) into Rapport's own migrated schema in a SQLite file, one
  transaction per calendar. No detection, no pair, no people: what any sync must do at least.
- **gcal-sync** (the `bench` extra, ``gcal-sync==8.0.0``; skipped with a message when it is
  not installed): its `CalendarEventSyncManager` over its own aiohttp session, with the same
  request shape (a request template that adds ``singleEvents``/``showDeleted``/
  ``maxResults=250``; gcal-sync also sends its ``fields`` mask, which the sandbox ignores),
  pydantic models per event and its store saved as one JSON file per calendar (as Home
  Assistant persists it).
- **rapport[:LABEL]**: the product's sync only, as the `sync_calendar` actor runs it minus the
  agenda planning: a migrated SQLite file, the accounts connected untimed, then for every
  calendar `AccountConnectors.for_calendar` + `service.sync.calendar_sync.sync_calendar`
  with a provider-call recorder. ``--rapport main=/work/main`` runs the same column with
  `PYTHONPATH` set to another checkout (e.g. main, for a before/after in one run); without
  it the column uses this checkout.

Every column stores the same window (now - 28 days to now + 120 days); the row counts are
printed so a column that stored less is visible, with the SQL statements and commits of the
database columns. With ``--repeat`` the columns alternate and the best of each is printed.
``--profile DIR`` cProfiles each column's timed part; ``FLOOR_SYNC_SQL_LOG=FILE`` logs its SQL.
Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import inspect
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
LOOKBACK = timedelta(days=28)  # Rapport's default sync_lookback_days
LOOKAHEAD = timedelta(days=120)  # Rapport's default sync_lookahead_days
PAGE_SIZE = 250  # GoogleConnector's page size
CLIENT_ID = "rapport-bench"
CLIENT_SECRET = "bench-secret"
PROFILE_ENV = "FLOOR_SYNC_PROFILE"  # a file: the timed part of a column is cProfiled into it
READY = "ready"  # a column's child says it is set up; the parent answers when it may start


def _accounts(count: int) -> list[str]:
    return [f"mgr{i:04d}@bench.test" for i in range(count)]


def _refresh_token(email: str) -> str:
    return f"sandbox-refresh-{email}"  # what `sandbox.team.Person.refresh_token` hands out


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@contextmanager
def _timed(out: dict[str, Any]) -> Iterator[None]:
    """Wall and CPU seconds (this process, every thread) of the block; it starts once the
    parent, told that setup is done, has reset the sandbox's request log."""
    print(READY, flush=True)
    sys.stdin.readline()
    profile_to = os.environ.get(PROFILE_ENV)
    profiler = cProfile.Profile() if profile_to else None
    wall, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    yield
    if profiler:
        profiler.disable()
    out["seconds"] = time.perf_counter() - wall
    out["cpu_seconds"] = time.process_time() - cpu
    if profiler and profile_to:
        profiler.dump_stats(profile_to)


def _count_statements(engine: Any, out: dict[str, Any]) -> None:
    """Count the SQL statements and the commits the column sends (deterministic, unlike
    the seconds on a shared machine)."""
    from sqlalchemy import event

    out["statements"] = out["commits"] = 0

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        out["statements"] += 1
        if os.environ.get("FLOOR_SYNC_SQL_LOG"):
            with open(os.environ["FLOOR_SYNC_SQL_LOG"], "a") as log:
                log.write(" ".join(sql.split())[:150] + "\n")

    def commit(*_args: Any) -> None:
        out["commits"] += 1

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)


def _row_counts(database_url: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as conn:
        counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()  # noqa: S608
                  for t in ("series", "occurrences", "occurrence_copies")}
    engine.dispose()
    return counts


def _migrated_sqlite(folder: str) -> tuple[str, Any]:
    from service.db import make_engine, migrate

    url = f"sqlite:///{folder}/floor.db"
    engine = make_engine(url)
    migrate(engine)
    return url, engine


# ----------------------------------------------------------------------------------------
# Column: the floor
# ----------------------------------------------------------------------------------------


def _floor_rows(items: list[dict[str, Any]], window_end: datetime) -> list[dict[str, Any]]:
    """The occurrences of recurring series that start before the window's end."""
    rows = []
    for item in items:
        original = item.get("originalStartTime", {}).get("dateTime")
        if not item.get("recurringEventId") or original is None:
            continue
        start = datetime.fromisoformat(item["start"]["dateTime"])
        if datetime.fromisoformat(original) >= window_end and start >= window_end:
            continue
        rows.append(item)
    return rows


def run_floor(base_url: str, token_url: str, accounts: list[str], now: datetime,
              folder: str) -> dict[str, Any]:
    import httpx
    from sqlalchemy import insert

    from service.calendars.models import Calendar
    from service.pairs.models import Occurrence, OccurrenceCopy, Series, SeriesSource

    url, engine = _migrated_sqlite(folder)
    calendar_ids = _floor_calendars(engine, accounts)
    window_start, window_end = now - LOOKBACK, now + LOOKAHEAD
    series_t, source_t, occurrence_t, copy_t, calendar_t = (
        _table(m) for m in (Series, SeriesSource, Occurrence, OccurrenceCopy, Calendar))
    out: dict[str, Any] = {}
    _count_statements(engine, out)
    with _timed(out), httpx.Client(timeout=30) as http:
        for email in accounts:
            token = http.post(token_url, data={
                "grant_type": "refresh_token", "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET, "refresh_token": _refresh_token(email),
            }).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            params: dict[str, Any] = {"singleEvents": "true", "showDeleted": "true",
                                      "maxResults": PAGE_SIZE, "timeMin": _rfc3339(window_start)}
            items: list[dict[str, Any]] = []
            sync_token = None
            while sync_token is None:
                page = http.get(f"{base_url}calendars/{email}/events", params=params,
                                headers=headers).json()
                items.extend(_floor_rows(page.get("items", []), window_end))
                sync_token = page.get("nextSyncToken")
                params = {**params, "pageToken": page.get("nextPageToken")}
            calendar_id = calendar_ids[email]
            with engine.begin() as conn:
                # ids come back with a natural key: RETURNING in parameter order would make
                # SQLAlchemy insert row by row on SQLite
                firsts = {i["recurringEventId"]: i for i in items}
                keys = conn.execute(insert(series_t).returning(
                    series_t.c.id, series_t.c.series_key), [
                    {"series_key": i["iCalUID"], "title": i.get("summary", ""),
                     "organizer_email": i["organizer"]["email"], "human_count": 2,
                     "confidence": 1.0, "detection_reason": "", "status": "active",
                     "first_seen_at": now, "time_zone": i["start"].get("timeZone")}
                    for i in firsts.values()]).all()
                by_key = {key: sid for sid, key in keys}
                series = {rid: by_key[i["iCalUID"]] for rid, i in firsts.items()}
                conn.execute(insert(source_t), [
                    {"series_id": sid, "calendar_id": calendar_id, "provider_series_id": key,
                     "is_organizer_copy": True} for key, sid in series.items()])
                occurrence_ids = {(sid, start): oid for oid, sid, start in conn.execute(
                    insert(occurrence_t).returning(occurrence_t.c.id, occurrence_t.c.series_id,
                                                   occurrence_t.c.original_start), [
                    {"series_id": series[i["recurringEventId"]],
                     "original_start": datetime.fromisoformat(
                         i["originalStartTime"]["dateTime"]),
                     "scheduled_start": datetime.fromisoformat(i["start"]["dateTime"]),
                     "scheduled_end": datetime.fromisoformat(i["end"]["dateTime"]),
                     "status": "cancelled" if i.get("status") == "cancelled" else "confirmed",
                     "updated_at": now}
                    for i in items])}
                conn.execute(insert(copy_t), [
                    {"occurrence_id": occurrence_ids[
                        (series[i["recurringEventId"]],
                         datetime.fromisoformat(i["originalStartTime"]["dateTime"]))],
                     "calendar_id": calendar_id,
                     "provider_event_id": i["id"], "is_organizer_copy": True,
                     "etag": i.get("etag"), "description": i.get("description", ""),
                     "description_is_html": False, "removed": i.get("status") == "cancelled",
                     "seen_at": now} for i in items])
                conn.execute(calendar_t.update().where(calendar_t.c.id == calendar_id)
                             .values(cursor=sync_token, last_sync_at=now))
    engine.dispose()
    out["rows"] = _row_counts(url)
    return out


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


def _floor_calendars(engine: Any, accounts: list[str]) -> dict[str, int]:
    """Account and calendar rows, as connecting would leave them (not timed)."""
    from sqlalchemy import insert

    from service.accounts.models import Account
    from service.calendars.models import Calendar

    ids = {}
    with engine.begin() as conn:
        for email in accounts:
            account_id = conn.execute(insert(_table(Account)).values(
                provider="google", email=email, credentials_encrypted=b"-"
            ).returning(_table(Account).c.id)).scalar_one()
            ids[email] = conn.execute(insert(_table(Calendar)).values(
                account_id=account_id, provider_calendar_id=email, owner_email=email,
                name=email).returning(_table(Calendar).c.id)).scalar_one()
    return ids


# ----------------------------------------------------------------------------------------
# Column: gcal-sync
# ----------------------------------------------------------------------------------------


def run_gcal_sync(base_url: str, token_url: str, accounts: list[str], now: datetime,
                  folder: str) -> dict[str, Any]:
    import aiohttp
    from gcal_sync.api import (
        Boolean,
        GoogleCalendarService,
        SyncEventsRequest,
        _RawListEventsRequest,
    )
    from gcal_sync.auth import AbstractAuth
    from gcal_sync.store import CalendarStore
    from gcal_sync.sync import CalendarEventSyncManager
    from pydantic import Field

    class SameShape(_RawListEventsRequest):
        """gcal-sync's raw request plus ``showDeleted``, which it does not model."""

        show_deleted: Boolean | None = Field(default=None, alias="showDeleted")

    class RapportShapedRequest(SyncEventsRequest):
        """Rapport's first-sync request: expanded instances, deleted ones too, 250 a page."""

        def to_request(self) -> _RawListEventsRequest:
            raw = json.loads(self.model_dump_json(exclude_none=True, by_alias=True))
            return SameShape(**raw, singleEvents=Boolean.TRUE, showDeleted=Boolean.TRUE,
                             maxResults=PAGE_SIZE)

    class RefreshOnce(AbstractAuth):
        """One refresh-token grant per account, then its access token."""

        def __init__(self, session: aiohttp.ClientSession, email: str) -> None:
            super().__init__(session, host=base_url.rstrip("/"))
            self._email, self._token = email, ""

        async def async_get_access_token(self) -> str:
            if not self._token:
                async with self._websession.post(token_url, data={
                    "grant_type": "refresh_token", "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "refresh_token": _refresh_token(self._email)}) as resp:
                    self._token = (await resp.json())["access_token"]
            return self._token

    class JsonFileStore(CalendarStore):
        def __init__(self, path: Path) -> None:
            self._path = path
            self._data: dict[str, Any] | None = None

        async def async_load(self) -> dict[str, Any] | None:
            return self._data

        async def async_save(self, data: dict[str, Any]) -> None:
            self._data = data
            self._path.write_text(json.dumps(data, default=str))

    window_start = now - LOOKBACK
    stored = 0

    async def sync_all() -> None:
        nonlocal stored
        async with aiohttp.ClientSession() as session:
            for n, email in enumerate(accounts):
                api = GoogleCalendarService(RefreshOnce(session, email))
                store = JsonFileStore(Path(folder) / f"gcal-{n}.json")
                manager = CalendarEventSyncManager(
                    api, store=store, request_template=RapportShapedRequest(
                        calendarId=email, timeMin=window_start))
                await manager.run()
                data = await store.async_load() or {}
                stored += len(data.get("event_sync", {}).get(email, {}).get("items", {}))

    out: dict[str, Any] = {}
    with _timed(out):
        asyncio.run(sync_all())
    out["rows"] = {"events stored (no window cut)": stored}
    return out


# ----------------------------------------------------------------------------------------
# Column: Rapport's sync only
# ----------------------------------------------------------------------------------------


def run_rapport(base_url: str, token_url: str, accounts: list[str], now: datetime,
                folder: str) -> dict[str, Any]:
    from cryptography.fernet import Fernet
    from pydantic import SecretStr
    from sqlalchemy import select

    from service.accounts.crypto import Vault
    from service.calendars.calls import CallRecorder, start_recording, stop_recording
    from service.calendars.models import Calendar
    from service.calendars.onboarding import connect_with_refresh_token
    from service.settings import Settings
    from service.sync.calendar_sync import sync_calendar
    from workers.runtime import build_runtime

    settings = Settings(data_dir=Path(folder), secret_key=SecretStr(Fernet.generate_key().decode()),
                        google_api_url=base_url, google_token_url=token_url,
                        graph_api_url="https://unused.invalid/v1.0",
                        microsoft_authority="https://unused.invalid/tenant")
    runtime = build_runtime(settings)
    vault = Vault.from_settings(settings)
    for email in accounts:
        with runtime.factory.begin() as session:
            connect_with_refresh_token(session, settings=settings, vault=vault,
                                       provider="google", client_id=CLIENT_ID,
                                       client_secret=CLIENT_SECRET,
                                       refresh_token=_refresh_token(email))
    with runtime.factory() as session:
        calendars = session.execute(select(Calendar.id, Calendar.account_id)
                                    .order_by(Calendar.id)).all()
    out: dict[str, Any] = {}
    _count_statements(runtime.engine, out)
    with _timed(out):
        for calendar_id, account_id in calendars:
            recorder = CallRecorder(account_id)
            token = start_recording(recorder)
            try:  # an older tree (`--rapport`) stored the calls through a parameter
                older = {"recorder": recorder} if "recorder" in inspect.signature(
                    sync_calendar).parameters else {}
                sync_calendar(runtime.factory, calendar_id=calendar_id,
                              connector=runtime.connectors.for_calendar(calendar_id),
                              settings=settings, now=now, **older)
            finally:
                stop_recording(token)
    runtime.engine.dispose()
    out["rows"] = _row_counts(settings.resolved_database_url)
    return out


COLUMNS: dict[str, Callable[..., dict[str, Any]]] = {
    "floor": run_floor, "gcal-sync": run_gcal_sync, "rapport": run_rapport}


def child(args: argparse.Namespace) -> int:
    """One column in this process; prints its figures as one JSON line."""
    if args.column == "gcal-sync":
        try:
            import gcal_sync  # noqa: F401
        except ImportError:
            print(json.dumps({"skipped": "gcal-sync is not installed "
                              "(pip install -e '.[bench]')"}))
            return 0
    now = datetime.fromisoformat(args.now)
    with tempfile.TemporaryDirectory(prefix="rapport-floor-") as folder:
        figures = COLUMNS[args.column](args.base_url, args.token_url, _accounts(args.accounts),
                                       now, folder)
    figures["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures))
    return 0


# ----------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------


def _run_column(column: str, label: str, pythonpath: Path, sandbox: Any, classify: Any,
                args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    """One column in a child process; the sandbox counts the requests of its timed part."""
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    if args.profile:
        env[PROFILE_ENV] = str(args.profile / f"{label.replace(' ', '_')}.prof")
    with subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--column", column,
             "--accounts", str(args.accounts), "--base-url", sandbox.base_url,
             "--token-url", sandbox.token_url, "--now", now.isoformat()],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        first = proc.stdout.readline()
        if first.strip() == READY:
            sandbox.call("clear_requests")
            proc.stdin.write("go\n")
            proc.stdin.flush()
            first = ""
        stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{label}: failed (exit {proc.returncode})\n{stderr[-3000:]}")
    figures: dict[str, Any] = json.loads((first + stdout).strip().splitlines()[-1])
    requests = sandbox.call("requests")
    figures["requests"] = len(requests)
    figures["kinds"] = dict(Counter(classify(r.method, r.path) for r in requests))
    figures["label"] = label
    print(f"  {label}: {figures.get('seconds', 0):.2f} s", file=sys.stderr, flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--series", type=int, default=8)
    parser.add_argument("--rapport", action="append", default=[], metavar="LABEL=PATH",
                        help="also run Rapport's column from another checkout (repeatable)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of every column")
    parser.add_argument("--only", choices=tuple(COLUMNS), action="append",
                        help="run only these columns (repeatable; e.g. to profile one)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="cProfile the timed part of every column into DIR/LABEL.prof")
    parser.add_argument("--column", choices=tuple(COLUMNS), help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--token-url", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.column:
        return child(args)

    sys.path.insert(0, str(HERE))
    from bench_sync import RemoteSandbox, classify

    columns: list[tuple[str, str, Path]] = [("floor", "floor", ROOT),
                                            ("gcal-sync", "gcal-sync 8.0.0", ROOT)]
    for spec in args.rapport:
        label, _, path = spec.partition("=")
        columns.append(("rapport", f"rapport:{label}", Path(path).resolve()))
    columns.append(("rapport", "rapport (this checkout)", ROOT))
    columns = [c for c in columns if not args.only or c[0] in args.only]
    sandbox = RemoteSandbox("google", args.accounts, args.series)
    print(f"sandbox seeded in {sandbox.seed_seconds:.1f} s", file=sys.stderr)
    load = Path("/proc/loadavg").read_text().split()[:3]
    results: list[dict[str, Any]] = []
    try:
        now = datetime.now(UTC)
        for _ in range(args.repeat):
            for column, label, path in columns:
                results.append(_run_column(column, label, path, sandbox, classify, args, now))
    finally:
        sandbox.close()
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    print(f"First sync, sync only: {args.accounts} Google accounts x {args.series} weekly "
          f"series, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, load average {' '.join(load)} -> "
          f"{' '.join(load_after)}")
    print(report(results, args.accounts))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def report(results: list[dict[str, Any]], accounts: int) -> str:
    """Every run, then (with --repeat) the best of each column, ratios to the floor's best."""
    ran = [r for r in results if "skipped" not in r]
    floor = min((r["seconds"] for r in ran if r["label"] == "floor"), default=None)
    header = (f"{'column':28} {'wall s':>8} {'CPU s':>8} {'CPU ms/acct':>12} {'x floor':>8} "
              f"{'requests':>9} {'peak RSS':>9}  rows")
    lines = [header]
    for r in results:
        if "skipped" in r:
            lines.append(f"{r['label']:28} skipped: {r['skipped']}")
            continue
        ratio = f"{r['seconds'] / floor:.2f}" if floor else "-"
        rows = ", ".join(f"{k} {v}" for k, v in r["rows"].items())
        if "statements" in r:
            rows += f"; SQL statements {r['statements']}, commits {r['commits']}"
        lines.append(f"{r['label']:28} {r['seconds']:8.2f} {r['cpu_seconds']:8.2f} "
                     f"{1000 * r['cpu_seconds'] / accounts:12.1f} {ratio:>8} "
                     f"{r['requests']:9d} {r['maxrss_mb']:7.0f} MB  {rows}")
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(r["kinds"].items()))
        lines.append(f"{'':28}   requests by kind: {kinds}")
    labels = list(dict.fromkeys(r["label"] for r in ran))
    if len(ran) > len(labels):
        lines += ["", f"best of {len(ran) // len(labels)} rounds (the columns alternate):",
                  f"{'column':28} {'wall s':>8} {'CPU s':>8} {'CPU ms/acct':>12} {'x floor':>8}"]
        for label in labels:
            wall = min(r["seconds"] for r in ran if r["label"] == label)
            cpu = min(r["cpu_seconds"] for r in ran if r["label"] == label)
            ratio = f"{wall / floor:.2f}" if floor else "-"
            lines.append(f"{label:28} {wall:8.2f} {cpu:8.2f} {1000 * cpu / accounts:12.1f} "
                         f"{ratio:>8}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
