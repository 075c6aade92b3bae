"""Fault pace benchmark: requests against one failing calendar, invalid_grant refreshes of an
account that needs re-consent, and how soon a dead worker's calendar is synced again.

    python tests/benchmarks/bench_faults.py [--seconds 120] [--reconcile-every 10]
                                            [--poll-every 60] [--fault status|truncated]

Rapport runs as a long-running `rapport worker` + `rapport scheduler` pair would, in one
process: SQLite, the in-process dramatiq worker (2 threads, the long-running retry policy),
the real Google client / MSAL over HTTP(S) to both sandboxes, and a reconcile every
`--reconcile-every` seconds of wall time, polling each calendar every `--poll-every` seconds
(the clock is the real one). On each provider:

- one report whose calendar listing fails for the whole run (`--fault status`: 500 on every
  listing, `truncated`: a 200 whose JSON body breaks off half-way), a sync of it requested
  at the start (as a webhook would);
- their manager, whose grant was revoked while an agenda write was due (re-consent needed);
- a third person whose calendar a killed worker leaves leased.

Figures printed: listing requests the failing calendars received, token refreshes answered
invalid_grant and API calls answered 401 (the re-consent account's), per minute; and the
seconds from a worker's death (a lease left behind, its last renewal just now) to the next
completed sync of that calendar.

Not collected by pytest (the file name does not match test_*.py).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from dramatiq import Worker
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from sandbox.google import GoogleSandbox
from sandbox.microsoft import GraphSandbox
from sandbox.team import person
from service.accounts.models import Account
from service.agenda.models import PairTopic
from service.calendars.models import Calendar
from service.db import utcnow
from service.pairs.models import Series
from tests.benchmarks.seeded_team import connect_and_sync, start_on
from workers import actors

FAILING = {"google": "sam@acme.test", "microsoft": "lee@acme.test"}  # the reports
REVOKED = {"google": "maya@acme.test", "microsoft": "dana@acme.test"}  # organizers: writes due
HEALTHY = {"google": "alex@acme.test", "microsoft": "priya@acme.test"}
TOKEN_PATHS = ("/token", "/oauth2/v2.0/token")
LIST_MARKERS = ("/events", "/calendarView/delta")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--reconcile-every", type=float, default=10.0)
    parser.add_argument("--poll-every", type=int, default=60)
    parser.add_argument("--fault", choices=("status", "truncated"), default="status")
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)

    google, graph = GoogleSandbox().start(), GraphSandbox().start()
    sandboxes = {"google": google, "microsoft": graph}
    try:
        with tempfile.TemporaryDirectory() as folder:
            run(Path(folder), sandboxes, args)
    finally:
        google.stop()
        graph.stop()


def run(folder: Path, sandboxes: dict[str, GoogleSandbox | GraphSandbox],
        args: argparse.Namespace) -> None:
    started, vault = start_on(folder, sandboxes, poll_every=args.poll_every)
    runtime, broker = started.runtime, started.broker
    connect_and_sync(started, vault, (person(email) for emails in (FAILING, REVOKED, HEALTHY)
                                      for email in emails.values()))

    with runtime.factory.begin() as session:  # a new write is due for every pair
        for pair_id in set(session.scalars(select(Series.pair_id)
                                           .where(Series.pair_id.is_not(None)))):
            session.add(PairTopic(pair_id=pair_id, text="How the quarter went",
                                  added_by="report"))
    for provider, sandbox in sandboxes.items():
        sandbox.revoke(REVOKED[provider])
        if args.fault == "truncated":
            sandbox.truncate_listing(FAILING[provider])  # type: ignore[attr-defined]
        else:
            sandbox.fail_listing(FAILING[provider], status=500)
        sandbox.clear_requests()
    with runtime.factory.begin() as session:  # news of a change (a webhook) asks for a sync
        session.execute(update(Calendar).where(Calendar.account_id.in_(
            select(Account.id).where(Account.email.in_(FAILING.values()))))
            .values(sync_requested_at=utcnow()))

    worker = Worker(broker, worker_threads=2)
    worker.start()
    stop = threading.Event()

    def reconciler() -> None:
        while not stop.is_set():
            actors.reconcile.send()
            stop.wait(args.reconcile_every)

    thread = threading.Thread(target=reconciler, daemon=True)
    thread.start()
    time.sleep(args.seconds)
    recovery = dead_worker_recovery(runtime.factory)
    stop.set()
    thread.join()
    worker.stop()

    minutes = args.seconds / 60
    print(f"window: {args.seconds:.0f} s, reconcile every {args.reconcile_every:.0f} s, "
          f"fault: {args.fault}")
    for provider, sandbox in sandboxes.items():
        served = sandbox.requests()
        lists = [r for r in served if r.user == FAILING[provider]
                 and r.method == "GET" and r.path.endswith(LIST_MARKERS)]
        refused = [r for r in served if r.path.endswith(TOKEN_PATHS) and r.status == 400]
        unauthorised = [r for r in served if r.status == 401]  # a revoked token names no user
        print(f"{provider:9} failing calendar: {len(lists):4d} listings "
              f"({len(lists) / minutes:5.1f}/min); re-consent account: invalid_grant "
              f"refreshes {len(refused):3d} ({len(refused) / minutes:4.1f}/min), API 401s "
              f"{len(unauthorised):3d} ({len(unauthorised) / minutes:4.1f}/min)")
    for provider, seconds in recovery.items():
        shown = f"{seconds:.1f} s" if seconds is not None else "not within 90 s"
        print(f"{provider:9} dead worker's calendar synced again after {shown}")
    runtime.engine.dispose()


def dead_worker_recovery(factory: sessionmaker[Session]) -> dict[str, float | None]:
    """Leave a lease on a healthy calendar per provider as a worker killed mid-sync would
    (renewed just now, never again) and time how long until it is synced again."""
    ids: dict[str, int] = {}
    with factory.begin() as session:
        for provider, email in HEALTHY.items():
            calendar_id = session.scalar(select(Calendar.id).join(
                Account, Account.id == Calendar.account_id).where(Account.email == email))
            assert calendar_id is not None
            ids[provider] = calendar_id
            if hasattr(Calendar, "sync_lease_holder"):  # this branch: a 30 s lease, renewed
                values = {"sync_lease_until": utcnow() + timedelta(seconds=30),
                          "sync_lease_holder": "killed-worker"}
            else:  # before: a 10 minute lease, taken once
                values = {"sync_lease_until": utcnow() + timedelta(minutes=10)}
            session.execute(update(Calendar).where(Calendar.id == calendar_id)
                            .values(sync_requested_at=utcnow(), **values))
    began = time.monotonic()
    found: dict[str, float | None] = dict.fromkeys(ids)
    left = dict(ids)
    while left and time.monotonic() - began < 90:
        with factory() as session:
            for provider, calendar_id in list(left.items()):
                row = session.get(Calendar, calendar_id)
                if row is not None and row.sync_requested_at is None \
                        and row.sync_lease_until is None:
                    found[provider] = time.monotonic() - began
                    del left[provider]
        time.sleep(0.5)
    return found


if __name__ == "__main__":
    main()
