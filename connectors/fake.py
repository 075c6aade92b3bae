"""An in-memory connector for service and worker tests: the contract without HTTP.

Provider behaviour itself is tested against the sandboxes through the real clients; this
fake lets storage, agenda and worker tests set up exact situations quickly. It follows the
contract: cursors are opaque, only the last page carries one, etags change on every write,
a stale If-Match raises `PreconditionFailed`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import ClassVar

from connectors.base import (
    BusyInterval,
    CalendarEvent,
    CalendarInfo,
    CallObserver,
    ChangePage,
    EventStatus,
    ProviderCall,
    Subscription,
)
from connectors.errors import AuthRevoked, CursorExpired, NotFound, PreconditionFailed


class FakeCalendarWorld:
    """The shared state several `FakeConnector`s (one per account) read and write."""

    def __init__(self) -> None:
        self.events: dict[str, dict[str, CalendarEvent]] = {}
        self.changes: dict[str, list[tuple[int, str]]] = {}
        self.owners: dict[str, str] = {}
        self.revoked: set[str] = set()
        self.expired_before: int = 0
        self._seq = itertools.count(1)
        self._etag = itertools.count(1)
        self.page_size = 50

    def put(self, event: CalendarEvent) -> CalendarEvent:
        """Store (insert or replace) an event as a person or the provider would."""
        stored = replace(event, etag=f'"{next(self._etag)}"')
        self.events.setdefault(event.calendar_id, {})[event.id] = stored
        self.changes.setdefault(event.calendar_id, []).append((next(self._seq), event.id))
        return stored

    def remove(self, calendar_id: str, event_id: str) -> None:
        """Delete an event: incremental syncs see a tombstone."""
        self.events.get(calendar_id, {}).pop(event_id, None)
        self.changes.setdefault(calendar_id, []).append((next(self._seq), event_id))

    def add_calendar(self, calendar_id: str, owner: str) -> None:
        """A calendar owned by `owner`."""
        self.events.setdefault(calendar_id, {})
        self.owners[calendar_id] = owner

    def expire_cursors(self) -> None:
        """Every cursor issued so far is gone."""
        self.expired_before = next(self._seq)


class FakeConnector:
    """One account's view of a `FakeCalendarWorld`."""

    provider: ClassVar[str] = "fake"

    def __init__(self, world: FakeCalendarWorld, email: str,
                 observer: CallObserver | None = None) -> None:
        self.world = world
        self.email = email
        self.observer = observer
        self.calls: list[str] = []

    def _call(self, operation: str, status: int = 200) -> None:
        if self.email in self.world.revoked:
            status = 401
        self.calls.append(operation)
        if self.observer:
            self.observer(ProviderCall("fake", operation, status, 0.0))
        if status == 401:
            raise AuthRevoked(f"grant of {self.email} was revoked")

    def list_calendars(self) -> list[CalendarInfo]:
        self._call("calendars.list")
        return [CalendarInfo(id=cid, name=cid, is_primary=True, owner_email=owner)
                for cid, owner in self.world.owners.items() if owner == self.email]

    def list_changes(self, calendar_id: str, cursor: str | None, *, window_start: datetime,
                     window_end: datetime) -> Iterator[ChangePage]:
        self._call("events.list")
        if cursor is not None and int(cursor) < self.world.expired_before:
            raise CursorExpired("cursor expired")
        events = self.world.events.get(calendar_id, {})
        changes = self.world.changes.get(calendar_id, [])
        last = changes[-1][0] if changes else 0
        if cursor is None:
            items = [e for e in events.values()
                     if e.start is None or window_start <= e.start < window_end]
        else:
            changed = dict.fromkeys(eid for seq, eid in changes if seq > int(cursor))
            items = [events.get(eid) or CalendarEvent(id=eid, calendar_id=calendar_id,
                                                      status=EventStatus.CANCELLED)
                     for eid in changed]
        pages = [items[i:i + self.world.page_size]
                 for i in range(0, len(items), self.world.page_size)] or [[]]
        for number, page in enumerate(pages):
            if number:
                self._call("events.list")
            final = number == len(pages) - 1
            yield ChangePage(events=page, cursor=str(last) if final else None,
                             full_sync=cursor is None)

    def get_event(self, calendar_id: str, event_id: str) -> CalendarEvent:
        self._call("events.get")
        try:
            return self.world.events[calendar_id][event_id]
        except KeyError as err:
            raise NotFound(event_id) from err

    def patch_description(self, calendar_id: str, event_id: str, *, description: str,
                          is_html: bool, etag: str | None) -> CalendarEvent:
        self._call("events.patch")
        current = self.world.events.get(calendar_id, {}).get(event_id)
        if current is None:
            raise NotFound(event_id)
        if etag is not None and etag != current.etag:
            raise PreconditionFailed(f"etag {etag} is stale")
        return self.world.put(replace(current, description=description,
                                      description_is_html=is_html))

    def free_busy(self, emails: list[str], start: datetime,
                  end: datetime) -> dict[str, list[BusyInterval]]:
        self._call("freebusy")
        busy: dict[str, list[BusyInterval]] = {e: [] for e in emails}
        for events in self.world.events.values():
            for event in events.values():
                if event.status == EventStatus.CANCELLED or event.start is None:
                    continue
                people = {a.email for a in event.attendees} | {event.organizer or ""}
                for email in emails:
                    if email in people and event.start < end and (event.end or start) > start:
                        busy[email].append(BusyInterval(event.start, event.end or event.start))
        return busy

    def subscribe(self, calendar_id: str, *, address: str, token: str,
                  ttl_seconds: int) -> Subscription:
        raise NotImplementedError("the fake connector has no push channel")

    def unsubscribe(self, subscription: Subscription) -> None:
        raise NotImplementedError("the fake connector has no push channel")
