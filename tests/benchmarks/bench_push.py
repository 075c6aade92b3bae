"""Push vs poll benchmark: provider calls an unchanged calendar costs per poll and per channel
renewal, measured, and what that makes for a 10,000-person company in steady state.

    python tests/benchmarks/bench_push.py [--people 10000] [--poll-every 300]

Rapport as `rapport worker` would run it, in one process: SQLite, the in-process dramatiq
worker, the real Google client / MSAL over HTTP(S) to both sandboxes, our real webhook
endpoints served by uvicorn on a local port (RAPPORT_PUBLIC_URL), the seeded team connected.
After the first sync and the reconcile that opens every channel, four measured steps per
provider, counted by the sandbox (every HTTP request it served): a poll of every unchanged
calendar (the second one: the first still reads the echo of our agenda writes), a renewal
of every channel (`RENEW_BEFORE` reached), and what polling costs a calendar whose channel
is live once the poll interval passed without a notification, then once the push fallback
interval (RAPPORT_PUSH_POLL_FALLBACK_SECONDS) passed. Graph's validation POST goes to us
and is not counted, nor are token refreshes and MSAL metadata reads (see API_PATHS). Not
collected by pytest.
"""

from __future__ import annotations

import argparse
import logging
import socket
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from sqlalchemy import func, select, update

from application.web.webhooks import webhook_router
from sandbox.google import GoogleSandbox
from sandbox.microsoft import GraphSandbox
from sandbox.team import PEOPLE
from service.accounts.models import Account
from service.calendars.models import Calendar
from service.calendars.push import CHANNEL_TTL, RENEW_BEFORE
from service.db import utcnow
from tests.benchmarks.seeded_team import connect_and_sync, start_on
from workers import actors
from workers.inprocess import run_until_idle

GOOGLE_PER_MINUTE = 10_000  # Calendar API queries per minute per project (default quota)
API_PATHS = ("/calendar/v3/", "/v1.0/")  # tokens and MSAL's metadata left out: each run's
# fresh worker threads fetch them once, a long-running worker keeps them
GRAPH_PER_MAILBOX = 10_000 / 10  # Outlook: 10,000 requests per 10 minutes per app per mailbox


def _serve(app: FastAPI) -> tuple[str, uvicorn.Server]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--poll-every", type=int, default=300)
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    sandboxes = {"google": GoogleSandbox().start(), "microsoft": GraphSandbox().start()}
    try:
        with tempfile.TemporaryDirectory() as folder:
            run(Path(folder), sandboxes, args)
    finally:
        for sandbox in sandboxes.values():
            sandbox.stop()


def run(folder: Path, sandboxes: dict[str, GoogleSandbox | GraphSandbox],
        args: argparse.Namespace) -> None:
    started, vault = start_on(folder, sandboxes, poll_every=args.poll_every)
    runtime, broker = started.runtime, started.broker
    app = FastAPI()
    app.include_router(webhook_router(factory=runtime.factory, vault=vault,
                                      enqueue_sync=actors.sync_calendar.send,
                                      enqueue_renew=actors.renew_channel.send))
    url, server = _serve(app)
    settings = runtime.settings = runtime.settings.model_copy(update={"public_url": url})
    connect_and_sync(started, vault, (p for p in PEOPLE if not p.is_room))  # opens channels
    with runtime.factory() as session:
        rows = session.execute(
            select(Account.provider, func.count()).join(Calendar, Calendar.account_id == Account.id)
            .where(Calendar.subscription_id.is_not(None)).group_by(Account.provider))
        calendars = {provider: count for provider, count in rows}

    def measured(step: dict[str, object]) -> dict[str, int]:
        for sandbox in sandboxes.values():
            sandbox.clear_requests()
        with runtime.factory.begin() as session:
            session.execute(update(Calendar).values(**step))
        actors.reconcile.send()
        run_until_idle(broker, threads=2, timeout=300)
        served = {p: [r for r in s.requests() if r.path.startswith(API_PATHS)]
                  for p, s in sandboxes.items()}
        return {p: len(rs) for p, rs in served.items()}

    measured({"sync_requested_at": utcnow()})  # the first sees the echo of our agenda writes
    poll = measured({"sync_requested_at": utcnow()})
    renew = measured({"subscription_expires_at": utcnow() + RENEW_BEFORE - timedelta(hours=1)})
    fallback_s = settings.push_poll_fallback_seconds
    # no notification for a poll interval, then for the fallback interval: what polling
    # still costs a calendar whose (fresh) channel is live
    paced = measured({"last_sync_at": utcnow() - timedelta(seconds=args.poll_every + 1)})
    fallen_back = measured({"last_sync_at": utcnow() - timedelta(seconds=fallback_s + 1)})
    server.should_exit = True
    runtime.engine.dispose()

    renew_every = (CHANNEL_TTL - RENEW_BEFORE).total_seconds() / 60
    print(f"calendars with a channel: {calendars}; poll every {args.poll_every} s, channel renewed "
          f"every {renew_every / 1440:.0f} days")
    for provider in sandboxes:
        watched = calendars.get(provider, 0) or 1
        per_poll, per_renewal = poll[provider] / watched, renew[provider] / watched
        polling = args.people * per_poll * 60 / args.poll_every
        pushing = args.people * per_renewal / renew_every
        limit = (f"{polling / GOOGLE_PER_MINUTE:.0%} of 10,000/min/project" if provider == "google"
                 else f"{per_poll * 60 / args.poll_every / GRAPH_PER_MAILBOX:.4%} of a "
                      "mailbox's 1,000/min")
        print(f"{provider:9} per calendar: {per_poll:.1f} calls per poll, {per_renewal:.1f} per "
              f"renewal; {args.people:,} people: polling {polling:,.0f} calls/min ({limit}), "
              f"push renewals {pushing:,.1f} calls/min + 1 list per change notification")
        per_paced, per_fallback = paced[provider] / watched, fallen_back[provider] / watched
        # polled at the poll pace while that already reads it, else at the fallback pace
        polls = (per_paced * 60 / args.poll_every if per_paced
                 else per_fallback * 60 / fallback_s)
        steady = pushing + args.people * polls
        print(f"{provider:9} live channel: {per_paced:.1f} calls per calendar once the poll "
              f"interval passed, {per_fallback:.1f} once the {fallback_s / 3600:g} h fallback "
              f"passed; {args.people:,} people with push: {steady:,.1f} calls/min steady "
              f"state (renewals + polls) + 1 list per change notification")


if __name__ == "__main__":
    main()
