"""The one contract between Rapport and a calendar provider.

Connectors turn provider payloads into these provider-neutral models and never touch
the database; `service/` maps them onto storage. Nothing after a connector knows which
provider an event came from.

Recurring series are represented as *expanded occurrences*: every occurrence is its own
`CalendarEvent` carrying `series_id` (Google ``recurringEventId`` / Graph
``seriesMasterId``) and `original_start` (Google ``originalStartTime`` / Graph
``originalStart``). Google is asked with ``singleEvents=true`` and Graph's calendarView
delta only returns expanded occurrences anyway, so both providers reach the service in
one shape, and the provider's own expansion (time zones, DST, EXDATE, moved instances)
stays authoritative instead of being re-implemented by a local RRULE engine.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Protocol, runtime_checkable

from connectors.errors import (  # noqa: F401  (re-exported: one error tree)
    AuthRevoked,
    ConnectorError,
    CursorExpired,
    Forbidden,
    NotFound,
    PreconditionFailed,
    RateLimited,
    Transient,
)


class EventStatus(enum.StrEnum):
    """Whether an event (or one occurrence) takes place."""

    CONFIRMED = "confirmed"
    TENTATIVE = "tentative"
    CANCELLED = "cancelled"


class Response(enum.StrEnum):
    """An attendee's answer to the invitation."""

    NEEDS_ACTION = "needsAction"
    ACCEPTED = "accepted"
    TENTATIVE = "tentative"
    DECLINED = "declined"


@dataclass(frozen=True)
class Attendee:
    """One invitee of an event, as the provider reports it."""

    email: str
    display_name: str | None = None  # Google ``displayName``, Graph ``emailAddress.name``
    response: Response = Response.NEEDS_ACTION
    is_resource: bool = False  # rooms and equipment (Google ``resource``, Graph type ``resource``)
    is_organizer: bool = False
    is_self: bool = False  # the owner of the calendar this copy was read from


@dataclass(frozen=True)
class CalendarEvent:
    """One single event or one occurrence of a recurring series, provider-neutral.

    A tombstone (Google status ``cancelled`` with only ids, Graph ``@removed``) has
    ``status == CANCELLED`` and may lack start, end, title and attendees.
    """

    id: str
    calendar_id: str
    status: EventStatus = EventStatus.CONFIRMED
    series_id: str | None = None
    original_start: datetime | None = None
    start: datetime | None = None  # aware, UTC
    end: datetime | None = None  # aware, UTC
    all_day: bool = False
    time_zone: str | None = None  # IANA name of the event's own time zone
    title: str = ""
    description: str = ""
    description_is_html: bool = False
    organizer: str | None = None  # email, lower case
    attendees: tuple[Attendee, ...] = ()
    etag: str | None = None
    created: datetime | None = None  # when the event was booked (Google ``created``, Graph
    # ``createdDateTime``): tells a meeting made for a dropped 1:1 from one booked long before
    updated: datetime | None = None  # last change (Google ``updated``, Graph lastModifiedDateTime)
    ical_uid: str | None = None  # series-level iCalendar UID shared by every copy of the series

    @property
    def is_occurrence(self) -> bool:
        """True for an occurrence (or exception) of a recurring series."""
        return self.series_id is not None


@dataclass(frozen=True)
class CalendarInfo:
    """A calendar the account can read."""

    id: str
    name: str
    # IANA name of the zone the calendar's owner lives in: Google's calendar ``timeZone``;
    # Graph calendars have none, so its connector gives the mailbox's zone to the default one
    time_zone: str | None = None
    is_primary: bool = False
    owner_email: str | None = None


@dataclass(frozen=True)
class ChangePage:
    """One page of changes; `cursor` is set only on the last page of a round.

    The service saves the cursor in the same transaction as the last page's items, so a
    crash mid-round replays the round instead of skipping changes.
    """

    events: list[CalendarEvent]
    cursor: str | None = None
    full_sync: bool = False  # True when this round started without a cursor
    skipped: list[SkippedItem] = field(default_factory=list)


@dataclass(frozen=True)
class SkippedItem:
    """A provider item that could not be parsed: logged with its id, the sync goes on."""

    event_id: str | None
    reason: str


@dataclass(frozen=True)
class BusyInterval:
    """A span during which a person is not free."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class FreeBusy:
    """Busy intervals per person (emails lower case), and who could not be read at all.

    Both providers answer per person: Google freeBusy puts ``errors`` (e.g. reason
    ``notFound``) on a calendar it cannot see, Graph getSchedule an ``error`` on a schedule.
    Someone in `unreadable` is not free; their calendar is simply unknown.
    """

    busy: dict[str, list[BusyInterval]] = field(default_factory=dict)
    unreadable: frozenset[str] = frozenset()

    @classmethod
    def answer(cls, asked: list[str], *, busy: dict[str, list[BusyInterval]],
               unreadable: set[str]) -> FreeBusy:
        """The answer about everyone `asked`: whoever the provider gave no busy list for is
        unreadable, never free."""
        missing = {email.lower() for email in asked if email.lower() not in busy}
        return cls(busy=busy, unreadable=frozenset(unreadable | missing))


@dataclass(frozen=True)
class Subscription:
    """A push channel (Google watch channel / Graph subscription)."""

    id: str
    resource_id: str | None
    expires_at: datetime


@dataclass(frozen=True)
class ProviderCall:
    """One HTTP call made to a provider, reported so the service can count and log it."""

    provider: str
    operation: str  # e.g. "events.list", "events.patch", "calendarView.delta"
    status: int
    duration_ms: float


CallObserver = Callable[[ProviderCall], None]


def starts_before(event: CalendarEvent, window_end: datetime) -> bool:
    """Whether an event belongs to a window ending at `window_end`: it (or its original slot)
    starts before the end. A tombstone without times always belongs: its copy may be known."""
    times = [t for t in (event.original_start, event.start) if t is not None]
    return not times or min(times) < window_end


@runtime_checkable
class CalendarConnector(Protocol):
    """What Rapport needs from a calendar provider, for one account.

    Implementations translate provider errors into `connectors.errors` at the HTTP edge.
    """

    provider: ClassVar[str]

    def list_calendars(self) -> list[CalendarInfo]:
        """The calendars this account can read."""
        ...

    def list_changes(
        self,
        calendar_id: str,
        cursor: str | None,
        *,
        window_start: datetime,
        window_end: datetime,
    ) -> Iterator[ChangePage]:
        """Changes since `cursor` (everything in the window when None).

        The window bounds a full sync, and a cursor keeps following the window of the round
        that opened it: pages hold only events that `starts_before` `window_end` (a connector
        whose provider lists more drops the rest), so to move the window the caller starts a
        new round with ``cursor=None``. Raises `CursorExpired` when the provider says the
        cursor is gone.
        """
        ...

    def cursor_is_stale(self, cursor: str) -> bool:
        """True when a saved cursor cannot be followed any more by this connector (e.g. it
        points at an endpoint other than the configured one): the service then starts over
        with a full sync instead of retrying a dead address."""
        ...

    def get_event(self, calendar_id: str, event_id: str) -> CalendarEvent:
        """Read one event (or occurrence) fresh, with its current etag."""
        ...

    def patch_description(
        self,
        calendar_id: str,
        event_id: str,
        *,
        description: str,
        is_html: bool,
        etag: str | None,
    ) -> CalendarEvent:
        """Replace the description, only if the event still has `etag` (If-Match).

        Raises `PreconditionFailed` when someone changed the event in between; attendees
        are not notified of our edit.
        """
        ...

    def free_busy(self, emails: list[str], start: datetime, end: datetime) -> FreeBusy:
        """Busy intervals per person between start and end, and who could not be read."""
        ...

    def subscribe(
        self, calendar_id: str, *, address: str, token: str, ttl_seconds: int,
        lifecycle_address: str | None = None,
    ) -> Subscription:
        """Ask the provider to push change notifications for a calendar to `address`;
        `lifecycle_address` receives a provider's lifecycle notifications, where it has
        them (Graph does, Google channels do not)."""
        ...

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop a push channel."""
        ...


@dataclass(frozen=True)
class DirectoryPerson:
    """One user of a company directory (Google Admin SDK ``users``, Graph ``/users``).

    `id` is the provider's immutable user id. Google names a manager by address
    (``relations[type=manager].value``), Graph by id and mail (``$expand=manager``): either
    or both of `manager_id` / `manager_email` may be set. `time_zone` is an IANA name
    (Graph ``mailboxSettings.timeZone`` mapped from Windows names; Google has none here).
    """

    id: str
    email: str  # primary address, lower case
    name: str | None = None
    suspended: bool = False  # Google ``suspended``, Graph ``accountEnabled == false``
    manager_id: str | None = None
    manager_email: str | None = None  # lower case
    time_zone: str | None = None


@dataclass(frozen=True)
class DirectoryPage:
    """One page of the directory; `next_page_token` is None on the last page."""

    people: list[DirectoryPerson]
    next_page_token: str | None = None


@runtime_checkable
class DirectoryConnector(Protocol):
    """What Rapport needs from a company directory, for one company grant."""

    provider: ClassVar[str]

    def list_people(self, page_token: str | None = None) -> DirectoryPage:
        """One page of people in the granted scope (domain, org unit, group or tenant)."""
        ...
