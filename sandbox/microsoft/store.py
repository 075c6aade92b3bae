"""The Graph sandbox's mailboxes, series and change log (thread-safe, in memory).

Every change bumps a store-wide sequence; an item remembers the sequence of its last
change, so a delta round returns exactly the items changed since its token was issued.
Occurrences are materialised up to `HORIZON` ahead of the clock.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from sandbox import team
from sandbox.microsoft.model import (
    AttendeeRecord,
    Item,
    occurrence_id,
    opaque_id,
    outlook_html,
)

HORIZON = timedelta(days=400)
ICAL_SUFFIX = "@rapport-sandbox"


@dataclass
class SeriesState:
    """What the organizer scheduled; every mailbox copy is derived from it."""

    key: str
    organizer: str
    attendees: list[str]
    title: str
    time_zone: str
    first_start: datetime  # aware, in time_zone
    minutes: int
    rrule: str | None
    description: str = ""
    all_day: bool = False
    room: str | None = None
    until: datetime | None = None  # UTC; end_series cuts here
    deleted: bool = False
    cancelled: set[datetime] = field(default_factory=set)  # original starts (UTC)

    @property
    def ical_uid(self) -> str:
        """The series-level UID, shared with the Google sandbox (``iCalUID``)."""
        return f"{self.key}{ICAL_SUFFIX}"

    def original_starts(self, until: datetime) -> list[datetime]:
        """Every original start (UTC) from the first up to `until`, cancelled ones included."""
        if not self.rrule:
            return [self.first_start.astimezone(UTC)]
        local = self.first_start.replace(tzinfo=None)
        zone = ZoneInfo(self.time_zone)
        rule = rrulestr(self.rrule, dtstart=local)
        end = min(until, self.until) if self.until else until
        out = []
        for naive in rule:
            start = naive.replace(tzinfo=zone).astimezone(UTC)
            if start > end:
                break
            out.append(start)
        return out


def _recurrence(spec: SeriesState) -> dict[str, object] | None:
    """Graph's patternedRecurrence for a weekly RRULE (the only kind the seeds use)."""
    if not spec.rrule:
        return None
    parts = dict(p.split("=", 1) for p in spec.rrule.removeprefix("RRULE:").split(";"))
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    freq = parts.get("FREQ", "WEEKLY").lower()
    range_: dict[str, object] = {
        "type": "endDate" if spec.until else "noEnd",
        "startDate": spec.first_start.date().isoformat(),
        "endDate": spec.until.date().isoformat() if spec.until else "0001-01-01",
        "recurrenceTimeZone": spec.time_zone,
        "numberOfOccurrences": 0,
    }
    return {
        "pattern": {
            "type": "weekly" if freq == "weekly" else "daily",
            "interval": int(parts.get("INTERVAL", "1")),
            "daysOfWeek": [days[spec.first_start.weekday()]],
            "firstDayOfWeek": "sunday",
        },
        "range": range_,
    }


class Store:
    """Mailboxes of the seeded team (and created series), with a change sequence."""

    def __init__(
        self, now: Callable[[], datetime], population: team.Population = team.TEAM
    ) -> None:
        self.now = now
        self.population = population  # who is seeded (the demo team unless told otherwise)
        self.lock = threading.RLock()
        self.seq = 0
        self.mailboxes: dict[str, dict[str, Item]] = {}
        self.series: dict[str, SeriesState] = {}
        self._counter = itertools.count(1)

    # seeding ------------------------------------------------------------------

    def seed(self) -> None:
        """Back to the seeded population (the team from `team.py` by default)."""
        with self.lock:
            self.seq = 0
            self.series.clear()
            self.mailboxes = {p.email: {} for p in self.population.people_on("microsoft")}
            today = self.now().astimezone(UTC).date()
            for spec in self.population.series:
                self.add_series(
                    SeriesState(
                        key=spec.key,
                        organizer=spec.organizer,
                        attendees=list(spec.attendees),
                        title=spec.title,
                        time_zone=spec.time_zone,
                        first_start=spec.first_start(today),
                        minutes=spec.minutes,
                        rrule=spec.rrule,
                        description=spec.description,
                        all_day=spec.all_day,
                        room=spec.room,
                    )
                )

    def calendar_id(self, owner: str) -> str:
        """The id of the owner's default calendar."""
        return opaque_id("calendar", owner)

    def new_key(self) -> str:
        """A fresh series key for `create_series`."""
        return f"ms-series-{next(self._counter)}"

    def touch(self, item: Item) -> None:
        """Record a change: new version, new etag, new lastModifiedDateTime."""
        self.seq += 1
        item.version = self.seq
        item.change_count += 1
        item.modified = self.now().astimezone(UTC)

    def holders(self, spec: SeriesState) -> list[str]:
        """Mailboxes on this provider that hold a copy of the series."""
        emails = [spec.organizer, *spec.attendees]
        return [e for e in emails if e in self.mailboxes]

    def add_series(self, spec: SeriesState) -> None:
        """Materialise the series (master and occurrences) in every holder's mailbox."""
        with self.lock:
            self.series[spec.key] = spec
            horizon = self.now().astimezone(UTC) + HORIZON
            starts = spec.original_starts(horizon)
            for owner in self.holders(spec):
                master_id = opaque_id("event", owner, spec.key)
                if spec.rrule:
                    master = self._item(spec, owner, master_id, "seriesMaster", starts[0])
                    master.recurrence = _recurrence(spec)
                    master.ical_uid = spec.ical_uid
                    self._put(master)
                    for start in starts:
                        occ = self._item(
                            spec, owner, occurrence_id(master_id, start), "occurrence", start
                        )
                        occ.master_id = master_id
                        occ.original_start = start
                        # Graph: iCalUId "is different for each occurrence in a recurring series".
                        occ.ical_uid = opaque_id("ical", spec.key, start.isoformat())
                        self._put(occ)
                else:
                    single = self._item(spec, owner, master_id, "singleInstance", starts[0])
                    single.ical_uid = spec.ical_uid
                    self._put(single)

    def _put(self, item: Item) -> None:
        self.touch(item)
        self.mailboxes[item.owner][item.id] = item

    def _item(
        self, spec: SeriesState, owner: str, item_id: str, kind: str, start: datetime
    ) -> Item:
        if spec.all_day:
            day = start.astimezone(ZoneInfo(spec.time_zone)).date()
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            end = start + timedelta(days=1)
        else:
            end = start + timedelta(minutes=spec.minutes)
        attendees = []
        for email in spec.attendees:
            p = self.person(email)
            attendees.append(
                AttendeeRecord(
                    email=email,
                    name=p.name if p else email,
                    kind="resource" if p and p.is_room else "required",
                    response="accepted",
                )
            )
        org = self.person(spec.organizer)
        now = self.now().astimezone(UTC)
        room = self.person(spec.room) if spec.room else None
        return Item(
            id=item_id,
            owner=owner,
            series_key=spec.key,
            kind=kind,
            subject=spec.title,
            start=start,
            end=end,
            time_zone=spec.time_zone,
            organizer=spec.organizer,
            organizer_name=org.name if org else spec.organizer,
            attendees=attendees,
            body=outlook_html(spec.description) if spec.description else "",
            body_type="html",
            response="organizer" if owner == spec.organizer else "accepted",
            all_day=spec.all_day,
            created=now,
            location=room.name if room else "",
        )

    # lookups ------------------------------------------------------------------

    def person(self, email: str | None) -> team.Person | None:
        """A seeded person, or None for an address the sandbox does not know."""
        if email is None:
            return None
        try:
            return self.population.person(email)
        except KeyError:
            return None

    def items_of(self, series_key: str) -> Iterable[Item]:
        """Every copy (all mailboxes) belonging to the series."""
        for box in self.mailboxes.values():
            for item in box.values():
                if item.series_key == series_key:
                    yield item

    def occurrence_copies(self, series_key: str, original_start: datetime) -> list[Item]:
        """The copies of one occurrence (by original start) in every mailbox."""
        start = original_start.astimezone(UTC)
        found = [
            i
            for i in self.items_of(series_key)
            if (i.original_start == start) or (i.kind == "singleInstance" and i.start == start)
        ]
        if not found:
            raise KeyError(f"no occurrence of {series_key} at {start.isoformat()}")
        return found

    def find(self, owner: str, item_id: str) -> Item | None:
        """An item of the owner's mailbox, or None (removed items are gone)."""
        item = self.mailboxes.get(owner, {}).get(item_id)
        return None if item is None or item.removed else item

    def in_window(self, owner: str, start: datetime, end: datetime) -> list[Item]:
        """Occurrences, exceptions and single instances overlapping [start, end)."""
        return sorted(
            (
                i
                for i in self.mailboxes.get(owner, {}).values()
                if i.kind != "seriesMaster" and i.start < end and i.end > start
            ),
            key=lambda i: (i.start, i.id),
        )


def utc_day(d: date) -> datetime:
    """Midnight UTC of a date."""
    return datetime(d.year, d.month, d.day, tzinfo=UTC)
