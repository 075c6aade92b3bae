"""An in-memory calendar world and connector: the contract without HTTP, for fast unit tests.

Provider behaviour itself is tested against the Google and Graph sandboxes through the real
clients; this fake lets service tests (apply, sync, the agenda writer) set up exact
situations in microseconds. It is seeded with the same team as the sandboxes, offers the
same "as a person would" admin operations (`sandbox.admin.SandboxAdmin`), and follows the
contract of `connectors.base.CalendarConnector`, checked by the contract suite
(tests/connectors/test_contract.py): cursors are opaque, only the last page carries one, an
expired cursor raises `CursorExpired`, etags change on every write, a stale If-Match raises
`PreconditionFailed`, injected HTTP statuses become the shared error tree. What it does not
do: push channels (`subscribe` raises `NotImplementedError`) and HTTP retries (an injected
429 is raised at once as `RateLimited`).

Imported only by tests and the demo; it may use `connectors.base` but never `service/`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import ClassVar
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from connectors.base import (
    Attendee,
    BusyInterval,
    CalendarEvent,
    CalendarInfo,
    CallObserver,
    ChangePage,
    DirectoryPage,
    DirectoryPerson,
    EventStatus,
    FreeBusy,
    ProviderCall,
    Response,
    SkippedItem,
    Subscription,
)
from connectors.errors import (
    CursorExpired,
    Forbidden,
    MalformedEvent,
    NotFound,
    PreconditionFailed,
    Transient,
    error_for_status,
)
from sandbox.admin import RecordedRequest
from sandbox.team import TEAM, Population

HORIZON = timedelta(days=400)  # how far ahead recurring series are expanded
PROVIDER = "memory"


@dataclass
class _Series:
    """One meeting (recurring or single), shared by the calendars of its participants."""

    key: str
    organizer: str
    attendees: tuple[str, ...]
    title: str
    time_zone: str
    first_start: datetime  # aware, in `time_zone`
    minutes: int
    rrule: str | None
    all_day: bool = False
    description: str = ""
    until: datetime | None = None
    deleted: bool = False
    created: datetime | None = None
    cancelled: set[datetime] = field(default_factory=set)  # original starts (UTC)
    moved: dict[datetime, datetime] = field(default_factory=dict)
    declined: dict[datetime, set[str]] = field(default_factory=dict)
    descriptions: dict[datetime, str] = field(default_factory=dict)
    html: set[datetime] = field(default_factory=set)  # occurrences whose description is HTML

    @property
    def people(self) -> tuple[str, ...]:
        return (self.organizer, *self.attendees)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")



class MemoryWorld:
    """The calendars of a team, held in memory; several `MemoryConnector`s share one world."""

    provider = PROVIDER
    base_url = "memory://calendar/"
    token_url = "memory://token"

    def __init__(self, *, now: datetime | None = None, population: Population = TEAM) -> None:
        self.population = population
        self.now = (now or datetime.now(UTC)).astimezone(UTC)
        self.page_size = 50
        self.reset()

    # -- state ---------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the seeded team, no recorded requests, no injected faults."""
        self.series: dict[str, _Series] = {}
        self.changes: list[tuple[int, str, datetime | None]] = []  # (seq, key, original)
        self.expired_before = self.last_seq = 0
        self.revoked: set[str] = set()
        self.throttle_left, self.retry_after = 0, 1.0
        self.failing: dict[str, int] = {}
        self.truncated: set[str] = set()  # owners whose listings break off mid-body
        self.malformed: dict[str, list[tuple[str, str]]] = {}
        self.unreadable: set[tuple[str, str]] = set()  # (owner, event id) reads that fail
        self.recorded: list[RecordedRequest] = []
        self._seq = itertools.count(1)
        self._counter = itertools.count(1)
        today = self.now.date()
        for spec in self.population.series:
            self._add(_Series(
                key=spec.key, organizer=spec.organizer, attendees=spec.attendees,
                title=spec.title, time_zone=spec.time_zone, first_start=spec.first_start(today),
                minutes=spec.minutes, rrule=spec.rrule, all_day=spec.all_day,
                description=spec.description, created=self.now - timedelta(weeks=12)))

    def _add(self, series: _Series) -> None:
        self.series[series.key] = series
        self._touch(series.key)

    def _touch(self, key: str, original: datetime | None = None) -> int:
        seq = self.last_seq = next(self._seq)
        self.changes.append((seq, key, original))
        return seq

    def calendars(self) -> list[str]:
        """Emails of the people (not rooms) with a calendar in this world."""
        return [p.email for p in self.population.people if not p.is_room]

    def has_calendar(self, email: str) -> bool:
        """Whether `email` has a calendar here (rooms and strangers have none)."""
        return email.lower() in self.calendars()

    # -- expansion -----------------------------------------------------------------

    def _starts(self, series: _Series, until: datetime, *, cut: bool = True) -> list[datetime]:
        """Original starts (UTC) up to `until`, the wall-clock time kept across DST; with
        `cut`, none after the series was ended."""
        if series.rrule is None:
            start = series.first_start.astimezone(UTC)
            return [start] if start <= until else []
        rule = rrulestr(series.rrule.removeprefix("RRULE:"), dtstart=series.first_start)
        end = min(until, series.until or until) if cut else until
        starts = []
        for local in rule:
            moment = local.astimezone(UTC)
            if moment > end:
                break
            starts.append(moment)
        return starts

    def occurrence_id(self, series: _Series, original: datetime) -> str:
        """Like Google's instance ids: the series key and the original start in UTC."""
        return series.key if series.rrule is None else f"{series.key}_{_stamp(original)}"

    def event_id(self, owner: str, series_key: str, original_start: datetime) -> str:
        """The id of an occurrence (the same in every participant's calendar, as at Google)."""
        return self.occurrence_id(self.series[series_key], original_start.astimezone(UTC))

    def _render(self, series: _Series, original: datetime, owner: str) -> CalendarEvent:
        cancelled = series.deleted or original in series.cancelled or (
            series.until is not None and original > series.until)
        recurring = series.rrule is not None
        start = series.moved.get(original, original)
        if series.all_day:
            start = datetime.combine(series.first_start.date(), datetime.min.time(), UTC)
        length = timedelta(days=1) if series.all_day else timedelta(minutes=series.minutes)
        declined = series.declined.get(original, set())
        people = [self.population.person(e) for e in series.people]
        attendees = tuple(
            Attendee(email=p.email, display_name=p.name, is_resource=p.is_room,
                     is_organizer=p.email == series.organizer, is_self=p.email == owner,
                     response=Response.DECLINED if p.email in declined else Response.ACCEPTED)
            for p in people)
        return CalendarEvent(
            id=self.occurrence_id(series, original), calendar_id=owner,
            status=EventStatus.CANCELLED if cancelled else EventStatus.CONFIRMED,
            series_id=series.key if recurring else None,
            original_start=original if recurring else None,
            start=start, end=start + length, all_day=series.all_day,
            time_zone=series.time_zone, title=series.title,
            description=series.descriptions.get(original, series.description),
            description_is_html=original in series.html,
            organizer=series.organizer, attendees=attendees,
            etag=f'"{self._version(series.key, original)}"', created=series.created,
            updated=self.now, ical_uid=f"{series.key}@rapport-sandbox")

    def _version(self, key: str, original: datetime) -> int:
        """The etag of a copy: the sequence number of the last change that touched it."""
        return max(seq for seq, k, o in self.changes if k == key and o in (None, original))

    def _find(self, owner: str, event_id: str) -> tuple[_Series, datetime]:
        if (owner, event_id) in self.unreadable:
            raise MalformedEvent(f"memory: event {event_id} cannot be read", event_id=event_id)
        key, _, stamp = event_id.partition("_")
        series = self.series.get(key)
        if series is None or owner not in series.people:
            raise NotFound(f"memory: no event {event_id} in {owner}'s calendar")
        for original in self._starts(series, self.now + HORIZON):
            if self.occurrence_id(series, original) == event_id:
                return series, original
        raise NotFound(f"memory: no event {event_id} in {owner}'s calendar")

    # -- what a person does (sandbox.admin.SandboxAdmin) ------------------------------

    def create_series(self, *, organizer: str, attendees: list[str], title: str,
                      first_start: datetime, minutes: int = 30,
                      rrule: str | None = "RRULE:FREQ=WEEKLY", time_zone: str = "UTC",
                      description: str = "") -> str:
        """A new meeting in the organizer's and attendees' calendars; returns its key."""
        key = f"created{next(self._counter)}"
        self._add(_Series(key=key, organizer=organizer.lower(),
                          attendees=tuple(a.lower() for a in attendees), title=title,
                          time_zone=time_zone, first_start=first_start.astimezone(
                              ZoneInfo(time_zone)), minutes=minutes, rrule=rrule,
                          description=description, created=self.now))
        return key

    def series_keys(self) -> list[str]:
        """Keys of every series the world knows."""
        return list(self.series)

    def occurrence_starts(self, series_key: str, *, until: datetime) -> list[datetime]:
        """Original starts (UTC) of the series' live occurrences up to `until`."""
        series = self.series[series_key]
        return [s for s in self._starts(series, until)
                if not series.deleted and s not in series.cancelled]

    def _occurrence(self, series_key: str, original_start: datetime) -> tuple[_Series, datetime]:
        series = self.series[series_key]
        original = original_start.astimezone(UTC)
        if original not in self._starts(series, self.now + HORIZON):
            raise ValueError(f"{series_key} has no occurrence at {original.isoformat()}")
        return series, original

    def cancel_occurrence(self, series_key: str, original_start: datetime) -> None:
        """The organizer deletes one occurrence: every copy shows it cancelled."""
        series, original = self._occurrence(series_key, original_start)
        series.cancelled.add(original)
        self._touch(series_key, original)

    def move_occurrence(self, series_key: str, original_start: datetime,
                        new_start: datetime) -> None:
        """The organizer moves one occurrence; its original start stays its name."""
        series, original = self._occurrence(series_key, original_start)
        series.moved[original] = new_start.astimezone(UTC)
        self._touch(series_key, original)

    def decline_occurrence(self, series_key: str, original_start: datetime, attendee: str) -> None:
        """An attendee declines one occurrence (visible in every copy)."""
        series, original = self._occurrence(series_key, original_start)
        series.declined.setdefault(original, set()).add(attendee.lower())
        self._touch(series_key, original)

    def delete_series(self, series_key: str) -> None:
        """The organizer deletes the series: every occurrence cancelled."""
        self.series[series_key].deleted = True
        self._touch(series_key)

    def end_series(self, series_key: str, until: datetime) -> None:
        """The organizer cuts the series short: occurrences after `until` cancelled."""
        self.series[series_key].until = until.astimezone(UTC)
        self._touch(series_key)

    def human_edit_description(self, owner: str, series_key: str, original_start: datetime,
                               new_description: str) -> None:
        """A person edits one occurrence's description (shared by every copy, as at Google)."""
        series, original = self._occurrence(series_key, original_start)
        series.descriptions[original] = new_description
        self._touch(series_key, original)

    def description_of(self, owner: str, series_key: str, original_start: datetime) -> str:
        """The occurrence's description as stored."""
        series, original = self._occurrence(series_key, original_start)
        return series.descriptions.get(original, series.description)

    def add_malformed_event(self, owner: str, kind: str) -> str:
        """A broken item in `owner`'s calendar: full listings report it as skipped."""
        reasons = {"malformed": "no readable start", "bad_timezone": "unknown time zone",
                   "huge_description": "description too large"}
        event_id = f"broken{next(self._counter)}{kind.replace('_', '')}"
        self.malformed.setdefault(owner.lower(), []).append((event_id, reasons[kind]))
        return event_id

    def inject_malformed_reads(self, owner: str, series_key: str,
                               original_start: datetime) -> str:
        """Reading or patching `owner`'s copy of this occurrence raises `MalformedEvent`
        from now on (the real connectors' answer to an event without a readable start)."""
        event_id = self.event_id(owner, series_key, original_start)
        self.unreadable.add((owner.lower(), event_id))
        return event_id

    def expire_cursors(self) -> None:
        """Every cursor issued so far is gone: following one raises `CursorExpired`."""
        self.expired_before = self.last_seq = next(self._seq)

    def inject_throttle(self, count: int, *, retry_after: float = 1.0) -> None:
        """The next `count` calls raise `RateLimited` with this retry-after (no retries here)."""
        self.throttle_left, self.retry_after = count, retry_after

    def fail_listing(self, owner: str, *, status: int | None = 500) -> None:
        """Every change listing of `owner`'s calendar fails with `status` (None: heal)."""
        if status is None:
            self.failing.pop(owner.lower(), None)
        else:
            self.failing[owner.lower()] = status

    def truncate_listing(self, owner: str, *, truncated: bool = True) -> None:
        """Every change listing of `owner`'s calendar raises `Transient`, as the real
        connectors answer a body that breaks off (False: heal)."""
        if truncated:
            self.truncated.add(owner.lower())
        else:
            self.truncated.discard(owner.lower())

    def revoke(self, email: str) -> None:
        """The person's grant is gone: every call of theirs raises `AuthRevoked`."""
        self.revoked.add(email.lower())

    def requests(self) -> list[RecordedRequest]:
        """Calls served since the last reset (or `clear_requests`), as request records."""
        return list(self.recorded)

    def clear_requests(self) -> None:
        """Forget recorded calls (to count the calls of one step)."""
        self.recorded.clear()

    # -- what a connector reads ----------------------------------------------------

    def changed_since(self, owner: str, cursor: int, window_end: datetime) -> list[CalendarEvent]:
        """Every copy in `owner`'s calendar changed after `cursor`, tombstones included."""
        wanted: dict[tuple[str, datetime], None] = {}
        for seq, key, original in self.changes:
            series = self.series[key]
            if seq <= cursor or owner not in series.people:
                continue
            originals = [original] if original else self._starts(series, window_end, cut=False)
            wanted.update(dict.fromkeys((key, o) for o in originals))
        return [self._render(self.series[key], o, owner) for key, o in wanted]

    def listing(self, owner: str, start: datetime, end: datetime) -> list[CalendarEvent]:
        """What a full sync sees: live copies overlapping the window."""
        events = []
        for series in self.series.values():
            if owner not in series.people:
                continue
            for original in self._starts(series, end):
                event = self._render(series, original, owner)
                if event.status is EventStatus.CONFIRMED and event.end and event.start \
                        and event.end > start and event.start < end:
                    events.append(event)
        return events

    def free_busy(self, email: str, start: datetime, end: datetime) -> list[BusyInterval]:
        """When `email` is busy: occurrences they have not declined."""
        busy = []
        for event in self.listing(email, start, end):
            mine = next(a for a in event.attendees if a.email == email)
            if mine.response is not Response.DECLINED and event.start and event.end:
                busy.append(BusyInterval(event.start, event.end))
        return sorted(busy, key=lambda b: b.start)

    def write_description(self, owner: str, event_id: str, *, description: str,
                          is_html: bool, etag: str | None) -> CalendarEvent:
        """Replace one occurrence's description if `etag` still matches; organizers only."""
        series, original = self._find(owner, event_id)
        if owner != series.organizer:
            raise Forbidden(f"memory: {owner} may not change {series.organizer}'s event")
        current = self._render(series, original, owner)
        if etag is not None and etag != current.etag:
            raise PreconditionFailed(f"memory: etag {etag} of {event_id} is stale")
        series.descriptions[original] = description
        (series.html.add if is_html else series.html.discard)(original)
        self._touch(series.key, original)
        return self._render(series, original, owner)


class MemoryConnector:
    """One account's view of a `MemoryWorld`, honouring `connectors.base.CalendarConnector`."""

    provider: ClassVar[str] = PROVIDER

    def __init__(self, world: MemoryWorld, email: str, *, page_size: int | None = None,
                 observer: CallObserver | None = None) -> None:
        self.world = world
        self.email = email.lower()
        self.page_size = page_size
        self.observer = observer

    def _call(self, operation: str, path: str, *, listing: bool = False) -> None:
        """Record the call and raise what an injected fault or a revoked grant would."""
        world, status = self.world, 200
        retry_after: float | None = None
        if self.email in world.revoked:
            status = 401
        elif world.throttle_left:
            world.throttle_left -= 1
            status, retry_after = 429, world.retry_after
        elif listing and self.email in world.failing:
            status = world.failing[self.email]
        world.recorded.append(RecordedRequest("GET", path, {}, status, self.email))
        if self.observer:
            self.observer(ProviderCall(PROVIDER, operation, status, 0.0))
        if status != 200:
            raise error_for_status(status, f"memory {operation}: HTTP {status}",
                            retry_after=retry_after)
        if listing and self.email in world.truncated:
            raise Transient(f"memory {operation}: the answer's body broke off")

    def _calendar(self, calendar_id: str) -> str:
        owner = self.email if calendar_id == "primary" else calendar_id.lower()
        if owner != self.email or not self.world.has_calendar(owner):
            raise NotFound(f"memory: no calendar {calendar_id} for {self.email}")
        return owner

    def list_calendars(self) -> list[CalendarInfo]:
        """The account's one (primary) calendar."""
        self._call("calendars.list", "/calendars")
        who = self.world.population.person(self.email)
        return [CalendarInfo(id=self.email, name=who.name, time_zone=who.time_zone,
                             is_primary=True, owner_email=self.email)]

    def list_changes(self, calendar_id: str, cursor: str | None, *, window_start: datetime,
                     window_end: datetime) -> Iterator[ChangePage]:
        """Pages of changes since `cursor` (the live events of the window when None)."""
        path = f"/calendars/{calendar_id}/events"
        self._call("events.list", path, listing=True)
        owner = self._calendar(calendar_id)
        world = self.world
        skipped: list[SkippedItem] = []
        if cursor is None:
            items = world.listing(owner, window_start, window_end)
            skipped = [SkippedItem(i, r) for i, r in world.malformed.get(owner, [])]
        else:
            if not cursor.startswith("mem:") or int(cursor[4:]) < world.expired_before:
                raise CursorExpired(f"memory events.list: cursor {cursor} is gone")
            items = world.changed_since(owner, int(cursor[4:]), window_end)
        last = world.last_seq
        size = self.page_size or world.page_size
        pages = [items[i:i + size] for i in range(0, len(items), size)] or [[]]
        for number, page in enumerate(pages):
            if number:
                self._call("events.list", path, listing=True)
            final = number == len(pages) - 1
            yield ChangePage(events=page, cursor=f"mem:{last}" if final else None,
                             full_sync=cursor is None, skipped=skipped if final else [])

    def cursor_is_stale(self, cursor: str) -> bool:
        """True for a cursor this world never issued."""
        return not cursor.startswith("mem:")

    def get_event(self, calendar_id: str, event_id: str) -> CalendarEvent:
        """One copy as it is now, with its current etag."""
        self._call("events.get", f"/calendars/{calendar_id}/events/{event_id}")
        owner = self._calendar(calendar_id)
        series, original = self.world._find(owner, event_id)
        return self.world._render(series, original, owner)

    def patch_description(self, calendar_id: str, event_id: str, *, description: str,
                          is_html: bool, etag: str | None) -> CalendarEvent:
        """Replace the description with If-Match semantics."""
        self._call("events.patch", f"/calendars/{calendar_id}/events/{event_id}")
        owner = self._calendar(calendar_id)
        return self.world.write_description(owner, event_id, description=description,
                                            is_html=is_html, etag=etag)

    def free_busy(self, emails: list[str], start: datetime, end: datetime) -> FreeBusy:
        """Busy intervals of the people with a calendar here; the rest are unreadable."""
        self._call("freebusy", "/freeBusy")
        wanted = [e.lower() for e in emails]
        readable = [e for e in wanted if self.world.has_calendar(e)]
        return FreeBusy(busy={e: self.world.free_busy(e, start, end) for e in readable},
                        unreadable=frozenset(set(wanted) - set(readable)))

    def subscribe(self, calendar_id: str, *, address: str, token: str,
                  ttl_seconds: int, lifecycle_address: str | None = None) -> Subscription:
        """Not done: the memory world has no push channel."""
        raise NotImplementedError("the memory connector has no push channel")

    def unsubscribe(self, subscription: Subscription) -> None:
        """Not done: the memory world has no push channel."""
        raise NotImplementedError("the memory connector has no push channel")


class MemoryDirectory:
    """A company directory held in memory, honouring `connectors.base.DirectoryConnector`.

    It pages like the providers do (an opaque token on every page but the last: Admin SDK
    ``nextPageToken``, Graph ``@odata.nextLink``) and offers what an admin does in the
    console: add, suspend, remove a person, change a manager; `fail_page` makes one page
    answer an HTTP error (once) to test a pass that stops half-way. `provider` says which
    provider's shape the people have (Google names a manager by address, Graph by id and
    mail): the caller builds the entries accordingly.
    """

    def __init__(self, people: list[DirectoryPerson], *, provider: str = "google",
                 page_size: int = 2) -> None:
        self.provider = provider
        self.page_size = page_size
        self.people: dict[str, DirectoryPerson] = {p.id: p for p in people}
        self.failing: dict[int, int] = {}  # page number -> HTTP status, once
        self.requested: list[str | None] = []  # the page tokens asked for, in order

    def list_people(self, page_token: str | None = None) -> DirectoryPage:
        """One page of people; the token is the offset of the next page."""
        self.requested.append(page_token)
        offset = 0
        if page_token is not None:
            if not page_token.startswith("dir:"):
                raise error_for_status(400, f"memory users.list: bad page token {page_token}")
            offset = int(page_token[4:])
        number = offset // self.page_size
        status = self.failing.pop(number, None)
        if status is not None:
            raise error_for_status(status, f"memory users.list: HTTP {status}")
        everyone = list(self.people.values())
        page = everyone[offset:offset + self.page_size]
        end = offset + self.page_size
        return DirectoryPage(people=page,
                             next_page_token=f"dir:{end}" if end < len(everyone) else None)

    # -- what an admin does -----------------------------------------------------------

    def add(self, person: DirectoryPerson) -> None:
        self.people[person.id] = person

    def remove(self, user_id: str) -> None:
        del self.people[user_id]

    def suspend(self, user_id: str, suspended: bool = True) -> None:
        self.people[user_id] = replace(self.people[user_id], suspended=suspended)

    def set_manager(self, user_id: str, manager: DirectoryPerson | None) -> None:
        """Name `manager` as the person's manager, in this directory's provider's shape."""
        manager_id = manager.id if manager and self.provider != "google" else None
        email = manager.email if manager else None
        self.people[user_id] = replace(self.people[user_id], manager_id=manager_id,
                                       manager_email=email)

    def fail_page(self, number: int, *, status: int = 503) -> None:
        self.failing[number] = status
