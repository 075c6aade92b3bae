"""The realistic team both sandboxes are seeded with, provider-neutral.

Two managers, their reports spread over Google and Microsoft 365 (so some pairs cross
providers), weekly and biweekly 1:1s, a 3-person meeting, a meeting with a room, an
all-day event, a one-off meeting, and a recurring two-person meeting whose title does
not say "1:1". Start dates are relative to the sandbox clock so there is always an
upcoming occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Person:
    email: str
    name: str
    time_zone: str
    provider: str  # "google" | "microsoft"
    is_room: bool = False

    @property
    def refresh_token(self) -> str:
        """The sandbox's long-lived grant for this person (what a consent flow would yield)."""
        return f"sandbox-refresh-{self.email}"


@dataclass(frozen=True)
class SeriesSpec:
    """A meeting to seed; `rrule` is None for a single event."""

    key: str
    organizer: str
    attendees: tuple[str, ...]  # besides the organizer; rooms included
    title: str
    time_zone: str
    weekday: int  # 0 = Monday, of the first occurrence
    local_time: tuple[int, int]
    minutes: int = 30
    rrule: str | None = "RRULE:FREQ=WEEKLY"
    weeks_ago: int = 10  # first occurrence this many weeks before the seeding date
    all_day: bool = False
    description: str = ""
    room: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def first_start(self, today: date) -> datetime:
        """The first occurrence, on `weekday`, about `weeks_ago` weeks before `today`."""
        monday = today - timedelta(days=today.weekday()) - timedelta(weeks=self.weeks_ago)
        day = monday + timedelta(days=self.weekday)
        hour, minute = self.local_time
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(self.time_zone))


DOMAIN = "acme.test"

PEOPLE: tuple[Person, ...] = (
    Person(f"maya@{DOMAIN}", "Maya Chen", "America/New_York", "google"),
    Person(f"sam@{DOMAIN}", "Sam Rivera", "America/New_York", "google"),
    Person(f"alex@{DOMAIN}", "Alex Becker", "Europe/Berlin", "google"),
    Person(f"priya@{DOMAIN}", "Priya Nair", "Asia/Kolkata", "microsoft"),
    Person(f"jordan@{DOMAIN}", "Jordan Lee", "America/Los_Angeles", "microsoft"),
    Person(f"dana@{DOMAIN}", "Dana Okafor", "Europe/London", "microsoft"),
    Person(f"lee@{DOMAIN}", "Lee Morgan", "Europe/London", "microsoft"),
    Person(f"kim@{DOMAIN}", "Kim Tanaka", "Asia/Tokyo", "google"),
    Person(f"boardroom@resource.{DOMAIN}", "Boardroom (8)", "America/New_York", "google", True),
    Person(f"thames@resource.{DOMAIN}", "Thames room", "Europe/London", "microsoft", True),
)

SERIES: tuple[SeriesSpec, ...] = (
    SeriesSpec("maya-sam", f"maya@{DOMAIN}", (f"sam@{DOMAIN}",), "Maya / Sam 1:1",
               "America/New_York", 1, (10, 0),
               description="Standing 1:1. Notes doc: https://docs.example/maya-sam"),
    SeriesSpec("maya-alex", f"maya@{DOMAIN}", (f"alex@{DOMAIN}", f"boardroom@resource.{DOMAIN}"),
               "1:1 Alex <> Maya", "America/New_York", 2, (9, 0), minutes=45,
               room=f"boardroom@resource.{DOMAIN}"),
    SeriesSpec("maya-priya", f"maya@{DOMAIN}", (f"priya@{DOMAIN}",), "Maya - Priya one on one",
               "America/New_York", 3, (8, 30), rrule="RRULE:FREQ=WEEKLY;INTERVAL=2"),
    SeriesSpec("maya-jordan", f"maya@{DOMAIN}", (f"jordan@{DOMAIN}",), "1-1 Jordan & Maya",
               "America/New_York", 0, (13, 0)),
    SeriesSpec("dana-lee", f"dana@{DOMAIN}", (f"lee@{DOMAIN}",), "Dana/Lee 1:1",
               "Europe/London", 1, (14, 0), description="Agenda below.\nBring your questions!"),
    SeriesSpec("dana-kim", f"dana@{DOMAIN}", (f"kim@{DOMAIN}",), "Kim : Dana catch-up",
               "Europe/London", 4, (8, 0), rrule="RRULE:FREQ=WEEKLY;INTERVAL=2"),
    SeriesSpec("team-sync", f"maya@{DOMAIN}", (f"sam@{DOMAIN}", f"alex@{DOMAIN}"), "Team sync",
               "America/New_York", 0, (11, 0)),
    SeriesSpec("design-review", f"dana@{DOMAIN}",
               (f"lee@{DOMAIN}", f"priya@{DOMAIN}", f"thames@resource.{DOMAIN}"),
               "Design review", "Europe/London", 3, (15, 0), minutes=60,
               room=f"thames@resource.{DOMAIN}"),
    SeriesSpec("atlas-pairing", f"sam@{DOMAIN}", (f"alex@{DOMAIN}",), "Project Atlas pairing",
               "America/New_York", 4, (9, 30), minutes=60),
    SeriesSpec("offsite", f"maya@{DOMAIN}", (), "Company offsite", "America/New_York", 2, (0, 0),
               rrule=None, weeks_ago=-1, all_day=True),
    SeriesSpec("coffee", f"maya@{DOMAIN}", (f"sam@{DOMAIN}",), "Coffee", "America/New_York",
               3, (15, 0), rrule=None, weeks_ago=0),
)

# The pairs a correct detection finds (manager, report): the ground truth for tests.
EXPECTED_PAIRS: frozenset[tuple[str, str]] = frozenset({
    (f"maya@{DOMAIN}", f"sam@{DOMAIN}"),
    (f"maya@{DOMAIN}", f"alex@{DOMAIN}"),
    (f"maya@{DOMAIN}", f"priya@{DOMAIN}"),
    (f"maya@{DOMAIN}", f"jordan@{DOMAIN}"),
    (f"dana@{DOMAIN}", f"lee@{DOMAIN}"),
    (f"dana@{DOMAIN}", f"kim@{DOMAIN}"),
})


@dataclass(frozen=True)
class Population:
    """Who a sandbox is seeded with: people (with calendars on a provider) and meetings.

    The default is the demo team below; a benchmark passes a synthetic one of any size.
    Lookups by email are indexed, so large populations stay cheap.
    """

    people: tuple[Person, ...]
    series: tuple[SeriesSpec, ...]

    @cached_property
    def _by_email(self) -> dict[str, Person]:
        return {p.email: p for p in self.people}

    def person(self, email: str) -> Person:
        """Look a person up by email (KeyError when unknown)."""
        return self._by_email[email]

    def people_on(self, provider: str) -> list[Person]:
        """The (non-room) people whose calendar lives at `provider`."""
        return [p for p in self.people if p.provider == provider and not p.is_room]


TEAM = Population(PEOPLE, SERIES)


def person(email: str) -> Person:
    """Look a seeded person up by email."""
    return TEAM.person(email)


def people_on(provider: str) -> list[Person]:
    """The (non-room) people whose calendar lives at `provider`."""
    return TEAM.people_on(provider)
