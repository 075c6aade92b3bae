"""Rapport deployed as an operator runs it, for the process-level fault suite: PostgreSQL,
Redis, separate `rapport worker` and `rapport scheduler` processes, both sandboxes over
HTTP(S), real SMTP to aiosmtpd; 4 accounts on each provider and their 1:1s.

`problems` states what must hold after any fault (every due agenda in its invite with every
topic, every calendar caught up, every alert and digest sent once, no duplicate row); a
scenario injects its fault, ends it, and measures how long until nothing is left to say.
"""

from __future__ import annotations

import email
import email.policy
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, cast

import dramatiq
from aiosmtpd.controller import Controller
from sqlalchemy import delete, select, text, update

from sandbox.admin import SandboxAdmin
from sandbox.google import GoogleSandbox
from sandbox.microsoft import GraphSandbox
from sandbox.team import SERIES
from service.agenda.block import START_MARKER
from service.agenda.items import add_topic
from service.agenda.models import AgendaRecord
from service.calendars.models import Calendar
from service.email.models import OutboxMessage
from service.email.outbox import make_message_id
from service.metrics.definitions import iso_week_of
from service.metrics.digest import CATCH_UP, dedupe_key, send_at
from service.metrics.models import DigestZone
from service.outcomes.service import alert_key
from service.pairs.models import Occurrence, Pair, Series
from service.people.models import Person
from service.people.zones import zone_of
from service.settings import Settings
from tests.e2e.helpers import visible
from workers.runtime import Runtime

from .fleet import Fleet

ACCOUNTS = {
    "google": ("maya@acme.test", "sam@acme.test", "alex@acme.test", "kim@acme.test"),
    "microsoft": ("priya@acme.test", "jordan@acme.test", "dana@acme.test", "lee@acme.test"),
}
# The seeded 1:1 series and the provider that hosts the organizer's copy.
ONE_ON_ONES = {spec.key: ("google" if spec.organizer.startswith("maya") else "microsoft", spec)
               for spec in SERIES if spec.key in ("maya-sam", "maya-alex", "maya-priya",
                                                  "maya-jordan", "dana-lee", "dana-kim")}
WEEKLY = {"google": ("maya-sam", "maya-jordan"), "microsoft": ("dana-lee",)}
RECOVERY_CEILING = 150.0  # seconds; the issue asks for 60, this is what a loaded box may take
EXPECTED_RECOVERY = 60.0
SETTLE = 6.0  # seconds of extra running after recovery, for late duplicates to show
POLL = 0.5


class Inbox:
    """aiosmtpd handler keeping every message it accepted."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(cast(EmailMessage, message))
        return "250 OK"

    def message_ids(self) -> Counter[str]:
        with self.lock:
            return Counter(str(m["Message-ID"]) for m in self.messages)


@dataclass(frozen=True)
class Cancelled:
    """An occurrence the test cancelled at the provider: it is owed one alert."""

    provider: str
    series_key: str
    original_start: datetime


@dataclass
class Stack:
    """The deployment under test and what the test did to it."""

    settings: Settings
    runtime: Runtime
    broker: dramatiq.Broker
    google: GoogleSandbox
    graph: GraphSandbox
    inbox: Inbox
    smtp: Controller
    fleet: Fleet
    # series key -> (topic text, start of the occurrence it was queued for)
    topics: dict[str, list[tuple[str, datetime]]] = field(default_factory=dict)
    cancelled: list[Cancelled] = field(default_factory=list)
    digests_due: set[str] = field(default_factory=set)  # manager emails

    def sandbox(self, provider: str) -> SandboxAdmin:
        return cast(SandboxAdmin, self.google if provider == "google" else self.graph)

    def sandboxes(self) -> list[SandboxAdmin]:
        return [self.sandbox("google"), self.sandbox("microsoft")]

    # -- what a scenario does -------------------------------------------------------------

    def next_start(self, key: str) -> datetime | None:
        """The series' next occurrence within the agenda horizon, as the provider says."""
        provider, _ = ONE_ON_ONES[key]
        now = datetime.now(UTC)
        horizon = now + timedelta(days=self.settings.agenda_horizon_days)
        starts = self.sandbox(provider).occurrence_starts(key, until=horizon)
        return next((s for s in starts if s > now), None)

    def add_topics(self, label: str) -> None:
        """The report of every 1:1 queues a topic: each due agenda must be written again."""
        with self.runtime.factory.begin() as session:
            for key, (_, spec) in ONE_ON_ONES.items():
                start = self.next_start(key)
                assert start is not None, key
                series = session.scalar(select(Series).where(
                    Series.organizer_email == spec.organizer,
                    Series.other_email == spec.attendees[0]))
                assert series is not None and series.pair_id is not None, key
                topic = f"{label}: {spec.attendees[0].split('@')[0]}'s topic"
                add_topic(session, pair_id=series.pair_id, text=topic)
                self.topics.setdefault(key, []).append((topic, start))

    def cancel_next_free(self, provider: str, series_key: str | None = None) -> Cancelled:
        """The organizer cancels a later occurrence of a weekly 1:1 (not the next one, whose
        agenda the checks follow); an alert is owed for it."""
        key = series_key or WEEKLY[provider][0]
        taken = {c.original_start for c in self.cancelled if c.series_key == key}
        sandbox = self.sandbox(provider)
        now = datetime.now(UTC)
        starts = [s for s in sandbox.occurrence_starts(key, until=now + timedelta(weeks=12))
                  if s > now + timedelta(days=self.settings.agenda_horizon_days)]
        start = next(s for s in starts if s not in taken)
        sandbox.cancel_occurrence(key, start)
        done = Cancelled(provider, key, start)
        self.cancelled.append(done)
        return done

    def begin(self) -> None:
        """Forget the requests served so far: write counts are per scenario."""
        for sandbox in self.sandboxes():
            sandbox.clear_requests()

    # -- what must hold -------------------------------------------------------------------

    def problems(self, *, caught_up_since: datetime | None = None) -> list[str]:
        """Everything that does not hold yet; empty once Rapport has recovered."""
        found = self.duplicates()
        found += self._agendas()
        found += self._emails()
        if caught_up_since is not None:
            with self.runtime.factory() as session:
                behind = session.scalars(select(Calendar.owner_email).where(or_none_before(
                    Calendar.last_sync_at, caught_up_since))).all()
            found += [f"calendar of {owner} not synced since the fault ended" for owner in behind]
        return found

    def _agendas(self) -> list[str]:
        found: list[str] = []
        with self.runtime.factory() as session:
            for key, (provider, spec) in ONE_ON_ONES.items():
                sandbox = self.sandbox(provider)
                start = self.next_start(key)
                if start is None:
                    found.append(f"{key}: no occurrence within the horizon (bad population)")
                    continue
                description = sandbox.description_of(spec.organizer, key, start)
                shown = visible(description)
                blocks = shown.count(START_MARKER)
                if blocks != 1:
                    found.append(f"{key}: {blocks} agenda blocks in the next invite")
                # a topic belongs to the meeting it was queued for; once that one has begun
                # (a suite running across a meeting's start) it is no longer owed here
                found += [f"{key}: topic {t!r} not in the invite"
                          for t, meant_for in self.topics.get(key, [])
                          if meant_for == start and t not in shown]
                record = session.scalar(
                    select(AgendaRecord)
                    .join(Occurrence, Occurrence.id == AgendaRecord.occurrence_id)
                    .join(Series, Series.id == Occurrence.series_id)
                    .where(Series.organizer_email == spec.organizer,
                           Series.other_email == spec.attendees[0],
                           Occurrence.original_start == start))
                if record is None or record.written_hash != record.content_hash:
                    found.append(f"{key}: agenda of the next occurrence not recorded as written")
        return found

    def _emails(self) -> list[str]:
        found: list[str] = []
        received = self.inbox.message_ids()
        with self.runtime.factory() as session:
            for cancelled in self.cancelled:
                _, spec = ONE_ON_ONES[cancelled.series_key]
                occurrence_id = session.scalar(
                    select(Occurrence.id).join(Series, Series.id == Occurrence.series_id)
                    .where(Series.organizer_email == spec.organizer,
                           Series.other_email == spec.attendees[0],
                           Occurrence.original_start == cancelled.original_start))
                if occurrence_id is None:
                    found.append(f"{cancelled.series_key}: cancelled occurrence unknown")
                    continue
                if received[make_message_id(alert_key(occurrence_id))] != 1:
                    found.append(f"{cancelled.series_key} {cancelled.original_start:%d %b}: "
                                 "alert not received")
            managers = {p.email: p for p in session.scalars(
                select(Person).where(Person.email.in_(self.digests_due)))}
            for address, manager in managers.items():
                week = iso_week_of(datetime.now(UTC), zone_of(manager.time_zone))
                if received[make_message_id(dedupe_key(manager.id, week))] != 1:
                    found.append(f"digest of {address} not received")
        return found

    def duplicates(self) -> list[str]:
        """What can never heal: a row, email or write that exists twice."""
        found = [f"email {mid} received {n} times"
                 for mid, n in self.inbox.message_ids().items() if n > 1]
        with self.runtime.factory() as session:
            for table, columns in DUPLICATE_KEYS.items():
                rows = session.execute(text(
                    f"SELECT {columns}, count(*) FROM {table} GROUP BY {columns} "
                    "HAVING count(*) > 1")).all()
                found += [f"{table}: {row[:-1]} stored {row[-1]} times" for row in rows]
        return found

    def writes(self) -> Counter[tuple[str | None, str]]:
        """Successful event writes per (user, event) since `begin`."""
        return Counter((r.user, r.path) for sandbox in self.sandboxes()
                       for r in sandbox.requests()
                       if r.method == "PATCH" and "/events/" in r.path and r.status < 300)


DUPLICATE_KEYS = {  # table -> the natural key no two rows may share
    "occurrences": "series_id, original_start",
    "occurrence_copies": "calendar_id, provider_event_id",
    "agendas": "occurrence_id",
    "outbox": "dedupe_key",
    "series": "series_key",
    "pairs": "manager_id, report_id",
    "calendars": "account_id, provider_calendar_id",
}


def or_none_before(column: Any, moment: datetime) -> Any:
    """`column` is unset or earlier than `moment`."""
    return column.is_(None) | (column < moment)


def expect_digests(stack: Stack) -> None:
    """Rapport has known the pairs for weeks (so the weekly digest is due) and note which
    managers' send time this local week has come, by the settings' weekday and time; return
    once the scheduler's reconcile has queued their digests."""
    now = datetime.now(UTC)
    keys: dict[str, str] = {}  # outbox dedupe key -> manager email
    with stack.runtime.factory.begin() as session:
        session.execute(update(Pair).values(created_at=now - timedelta(days=15)))
        for manager in session.scalars(select(Person).join(Pair, Pair.manager_id == Person.id)
                                       .group_by(Person.id)):
            week = iso_week_of(now, zone_of(manager.time_zone))
            due = send_at(week, zone_of(manager.time_zone), stack.settings)
            if due <= now < due + CATCH_UP:
                stack.digests_due.add(manager.email)
                keys[dedupe_key(manager.id, week)] = manager.email
    # Had Rapport known them all along, no reconcile during the first sync would have found
    # a zone's managers too new and marked its week done (a mark trusted for an hour): drop
    # the marks of passes that began before the pairs were aged, a late one's included.
    deadline = time.monotonic() + 60
    while True:
        with stack.runtime.factory.begin() as session:
            session.execute(delete(DigestZone).where(DigestZone.done_at < now))
            queued = set(session.scalars(select(OutboxMessage.dedupe_key).where(
                OutboxMessage.dedupe_key.in_(keys))))
        if len(queued) == len(keys) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(queued) == len(keys), \
        f"digests never queued: {sorted(keys[k] for k in set(keys) - queued)}"


@dataclass(frozen=True)
class Recovery:
    """How long after the fault ended nothing was left to say (or what was still left)."""

    seconds: float
    left: list[str]


def wait_for_recovery(stack: Stack, *, since: float, label: str,
                      caught_up_since: datetime | None = None,
                      ceiling: float = RECOVERY_CEILING) -> Recovery:
    """Poll `problems` until none is left (or the ceiling passes); print the figure, and
    when it took longer than expected, when each problem went away (what it waited for)."""
    left = stack.problems(caught_up_since=caught_up_since)
    timeline = [(time.monotonic() - since, left)]
    while left and time.monotonic() - since < ceiling:
        if stack.duplicates():
            break  # a duplicate never heals: no point waiting
        if not stack.fleet.running():
            break
        time.sleep(POLL)
        left = stack.problems(caught_up_since=caught_up_since)
        if sorted(left) != sorted(timeline[-1][1]):  # what is left, not the order it comes in
            timeline.append((time.monotonic() - since, left))
    seconds = time.monotonic() - since
    print(f"\n[faults] {label}: recovered in {seconds:.1f} s" if not left else
          f"\n[faults] {label}: NOT recovered after {seconds:.1f} s: {left[:5]}")
    if seconds > EXPECTED_RECOVERY / 2:
        for at, problems in timeline:
            print(f"[faults]   at {at:5.1f} s: {problems[:6]}")
    return Recovery(seconds, left)


def settled(stack: Stack, check: Callable[[], list[str]] | None = None) -> list[str]:
    """Let everything run a little longer, then what no longer holds (late duplicates)."""
    time.sleep(SETTLE)
    return stack.problems() + (check() if check else [])
