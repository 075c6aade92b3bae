"""The connectors the contract suite runs over, and helpers the connector tests share.

A plain module (not conftest.py) so tests import it by a name of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any, cast
from urllib.parse import parse_qs, urlparse

import pytest

from connectors.base import CalendarConnector, CallObserver
from connectors.google import GoogleConnector
from connectors.microsoft import GraphConnector
from connectors.retry import MAX_SLEEP_PER_CALL
from sandbox.admin import SandboxAdmin
from sandbox.google import GoogleSandbox
from sandbox.google.recurrence import instance_id
from sandbox.memory import MemoryConnector, MemoryWorld
from sandbox.microsoft import GraphSandbox
from sandbox.team import DOMAIN

CLIENT_ID = "rapport-tests"


class RecordingSleep:
    """An injectable sleep that records what it was asked to wait and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)

    @property
    def waits(self) -> list[float]:
        """The same record under the name the Graph tests used."""
        return self.calls




def sync_window(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The window a full sync reads: four weeks back, 120 days ahead (the settings' defaults)."""
    now = now or datetime.now(UTC)
    return now - timedelta(days=28), now + timedelta(days=120)





@dataclass(frozen=True)
class ConnectorCase:
    """One connector under the contract, with the world it reads and what to expect of it.

    `make(email, page_size=None, attempts=None, observer=None, sleep_budget=None)` builds a
    connector for a seeded person; the people and series are the seeded team's (sandbox/team.py).
    """

    name: str
    admin: SandboxAdmin
    make: Callable[..., CalendarConnector]
    manager: str  # organizer of `series_key`, a weekly 30-minute 1:1
    report: str
    series_key: str
    title: str
    zone: str
    invitation: tuple[str, str, str, int, tuple[int, int]]  # attendee, series key, organizer,
    # weeks between occurrences, local time: organized by someone at another provider
    room: tuple[str, str, str]  # owner, series key, room email
    calendar_of: Callable[[str], str]  # email -> the calendar id the connector is asked for
    event_id: Callable[[str, str, datetime], str]  # (owner, series key, original start)
    series_id: Callable[[str, str, datetime], str | None]  # the provider's id of the series
    listing_path: Callable[[str], str]  # how the path of a change listing ends, per email
    notify: Callable[[str], int]  # push a change notification; how many were delivered
    sleeps: RecordingSleep
    all_day: tuple[str, str] | None = None  # owner, key of a seeded all-day event
    unsupported: frozenset[str] = frozenset()

    def require(self, feature: str) -> None:
        """Skip the test when this connector says it does not do `feature`."""
        if feature in self.unsupported:
            pytest.skip(f"the {self.name} connector does not do {feature}")


def google_case(sandbox: GoogleSandbox, make: Callable[..., GoogleConnector],
                 sleeps: RecordingSleep) -> ConnectorCase:
    def build(email: str, *, page_size: int | None = None, attempts: int | None = None,
              observer: CallObserver | None = None,
              sleep_budget: float | None = None) -> GoogleConnector:
        options: dict[str, Any] = {"observer": observer}
        if sleep_budget is not None:
            options["max_sleep"] = sleep_budget
        if page_size:
            options["page_size"] = page_size
        if attempts:
            options["max_attempts"] = attempts
        return make(email, **options)

    return ConnectorCase(
        name="google", admin=sandbox, make=build, manager=f"maya@{DOMAIN}",
        report=f"sam@{DOMAIN}", series_key="maya-sam", title="Maya / Sam 1:1",
        zone="America/New_York",
        invitation=(f"kim@{DOMAIN}", "dana-kim", f"dana@{DOMAIN}", 2, (8, 0)),
        room=(f"maya@{DOMAIN}", "maya-alex", f"boardroom@resource.{DOMAIN}"),
        calendar_of=lambda email: email,
        event_id=lambda owner, key, start: instance_id(sandbox.event_id(key), start),
        series_id=lambda owner, key, start: sandbox.event_id(key),
        listing_path=lambda email: f"/calendars/{email}/events",
        notify=lambda email: len(sandbox.notify(email)), sleeps=sleeps,
        all_day=(f"maya@{DOMAIN}", "offsite"),
    )


def graph_case(sandbox: GraphSandbox, make: Callable[..., GraphConnector],
                sleeps: RecordingSleep, name: str = "microsoft") -> ConnectorCase:
    def build(email: str, *, page_size: int | None = None, attempts: int | None = None,
              observer: CallObserver | None = None,
              sleep_budget: float | None = None) -> GraphConnector:
        return make(email, page_size=page_size or 100, attempts=attempts or 4,
                    observer=observer, budget=sleep_budget or MAX_SLEEP_PER_CALL)

    return ConnectorCase(
        name=name, admin=cast(SandboxAdmin, sandbox), make=build,
        manager=f"dana@{DOMAIN}",
        report=f"lee@{DOMAIN}", series_key="dana-lee", title="Dana/Lee 1:1",
        zone="Europe/London",
        invitation=(f"priya@{DOMAIN}", "maya-priya", f"maya@{DOMAIN}", 2, (8, 30)),
        room=(f"dana@{DOMAIN}", "design-review", f"thames@resource.{DOMAIN}"),
        calendar_of=lambda email: "primary", event_id=sandbox.event_id,
        series_id=lambda owner, key, start: sandbox._copy_of(owner, key, start).master_id,
        listing_path=lambda email: "/calendarView/delta",
        notify=sandbox.notify, sleeps=sleeps,
        unsupported=frozenset({"a grant per person"}) if name == "microsoft-app" else frozenset(),
    )


def memory_case(world: MemoryWorld) -> ConnectorCase:
    def build(email: str, *, page_size: int | None = None, attempts: int | None = None,
              observer: CallObserver | None = None,
              sleep_budget: float | None = None) -> MemoryConnector:
        return MemoryConnector(world, email, page_size=page_size, observer=observer)

    def no_push(email: str) -> int:
        raise NotImplementedError("the memory world has no push channel")

    return ConnectorCase(
        name="memory", admin=world, make=build, manager=f"maya@{DOMAIN}",
        report=f"sam@{DOMAIN}", series_key="maya-sam", title="Maya / Sam 1:1",
        zone="America/New_York",
        invitation=(f"priya@{DOMAIN}", "maya-priya", f"maya@{DOMAIN}", 2, (8, 30)),
        room=(f"maya@{DOMAIN}", "maya-alex", f"boardroom@resource.{DOMAIN}"),
        calendar_of=lambda email: email, event_id=world.event_id, notify=no_push,
        series_id=lambda owner, key, start: key,
        listing_path=lambda email: f"/calendars/{email}/events",
        sleeps=RecordingSleep(), all_day=(f"maya@{DOMAIN}", "offsite"),
        # what sandbox/memory.py says it does not do: push channels and HTTP retries
        unsupported=frozenset({"subscribe", "retries"}),
    )


CASE_NAMES = ("google", "microsoft", "microsoft-app", "memory")  # microsoft-app: app-only

@dataclass
class Webhook:
    """A local HTTP endpoint that answers like Rapport's webhooks and records what came."""

    address: str
    received: list[tuple[dict[str, str], bytes]]


class Receiver(BaseHTTPRequestHandler):
    """Echoes Graph's validationToken (text/plain, 200); records every notification (202)."""

    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:  # noqa: N802
        token = parse_qs(urlparse(self.path).query).get("validationToken")
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        reply = token[0].encode() if token else b""
        if not token:
            self.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200 if token else 202)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass
