"""The Google sandbox's in-memory calendars, events and change log.

Event data is shared between copies: like Google for attendees in the same domain, an
organizer's event and each attendee's copy have the same event id and iCalUID, and an
organizer's change shows in every copy. Per calendar the store keeps a change log (the
sequence number of each item's last change) from which incremental sync answers.

Documented behaviour followed (https://developers.google.com/calendar/api/v3/reference/events/list,
https://developers.google.com/calendar/api/guides/sync):

- ``singleEvents=true`` expands series into instances with ``recurringEventId`` and
  ``originalStartTime``; masters are served with ``singleEvents=false``.
- Cancelled instances and deleted events are served with ``status: "cancelled"`` when
  ``showDeleted=true`` and always during incremental sync.
- A change to a whole series (delete, cut short with UNTIL) returns every instance on the
  next incremental sync; instances that no longer exist come back cancelled.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.google import recurrence

JSON = dict[str, Any]


@dataclass
class Participant:
    """An attendee (the organizer included, as Google lists them)."""

    email: str
    name: str | None
    response: str = "accepted"
    resource: bool = False


@dataclass
class Override:
    """An exception: one instance changed on its own (cancelled, moved, edited, declined)."""

    etag: str
    updated: datetime
    status: str | None = None
    start: datetime | None = None  # UTC
    end: datetime | None = None
    description: str | None = None
    responses: dict[str, str] = field(default_factory=dict)


@dataclass
class EventRecord:
    """A single event or a series master, shared by every calendar holding a copy."""

    id: str
    ical_uid: str
    summary: str
    description: str
    organizer: str
    organizer_name: str | None
    participants: list[Participant]
    time_zone: str
    start: datetime  # aware, in time_zone (midnight for all-day)
    duration: timedelta
    etag: str
    created: datetime
    updated: datetime
    all_day: bool = False
    recurrence: list[str] | None = None
    status: str = "confirmed"
    sequence: int = 0
    overrides: dict[datetime, Override] = field(default_factory=dict)  # key: original start, UTC
    removed: set[datetime] = field(default_factory=set)  # instances cut off by end_series
    calendars: set[str] = field(default_factory=set)  # owners holding a copy
    raw: JSON | None = None  # a broken item, served exactly as stored
    series_key: str | None = None


@dataclass
class CalendarState:
    """One person's primary calendar and its change log."""

    owner: str
    name: str
    time_zone: str
    event_ids: dict[str, None] = field(default_factory=dict)  # insertion-ordered set
    changes: dict[str, int] = field(default_factory=dict)  # event id -> seq
    instance_changes: dict[str, dict[datetime, int]] = field(default_factory=dict)


def _etag_seq(etag: str) -> int:
    """The change sequence number an etag of this store carries (newer is larger)."""
    digits = etag.strip('"')
    return int(digits) if digits.isdigit() else -1


def rfc3339(value: datetime) -> str:
    """UTC timestamp the way Google writes ``updated`` / ``created``."""
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


class GoogleStore:
    """Calendars and events; every method is safe to call from the server and test threads."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.seq = 0
        self.events: dict[str, EventRecord] = {}
        self.calendars: dict[str, CalendarState] = {}

    # -- change tracking ------------------------------------------------------------------

    def next_etag(self) -> str:
        """A fresh etag (quoted, as Google sends it)."""
        self.seq += 1
        return f'"{3_000_000_000_000_000 + self.seq}"'

    def touch(self, rec: EventRecord, now: datetime) -> None:
        """Record a change to a whole event or series in every calendar holding a copy."""
        rec.etag = self.next_etag()
        rec.updated = now
        rec.sequence += 1
        for owner in rec.calendars:
            self.calendars[owner].changes[rec.id] = self.seq

    def touch_instance(self, rec: EventRecord, original: datetime, now: datetime) -> Override:
        """Record a change to one instance (creating its exception) in every copy."""
        override = rec.overrides.get(original)
        etag = self.next_etag()
        if override is None:
            override = Override(etag=etag, updated=now)
            rec.overrides[original] = override
        override.etag, override.updated = etag, now
        for owner in rec.calendars:
            self.calendars[owner].instance_changes.setdefault(rec.id, {})[original] = self.seq
        return override

    def add(self, rec: EventRecord) -> None:
        """Store a new event and log it as changed in its calendars."""
        self.events[rec.id] = rec
        rec.etag = self.next_etag()
        for owner in rec.calendars:
            cal = self.calendars[owner]
            cal.event_ids[rec.id] = None
            cal.changes[rec.id] = self.seq

    # -- instances ------------------------------------------------------------------------

    def instance_starts(self, rec: EventRecord, until: datetime) -> list[datetime]:
        """Original starts (UTC) of every instance up to `until`, removed ones included."""
        if not rec.recurrence:
            return []
        starts = {
            s.astimezone(UTC) for s in recurrence.expand(rec.recurrence, rec.start, until=until)
        }
        starts |= {s for s in rec.removed if s <= until}
        return sorted(starts)

    def live_starts(self, rec: EventRecord, until: datetime) -> list[datetime]:
        """Original starts (UTC) of instances that still belong to the series."""
        return [s for s in self.instance_starts(rec, until) if s not in rec.removed]

    def instance_status(self, rec: EventRecord, original: datetime) -> str:
        """confirmed / cancelled for one instance."""
        override = rec.overrides.get(original)
        if rec.status == "cancelled" or original in rec.removed:
            return "cancelled"
        if override is not None and override.status:
            return override.status
        return rec.status

    def instance_times(self, rec: EventRecord, original: datetime) -> tuple[datetime, datetime]:
        """Actual (start, end) in UTC of one instance, after any move."""
        override = rec.overrides.get(original)
        if override is not None and override.start is not None and override.end is not None:
            return override.start, override.end
        return original, original + rec.duration

    def instance_description(self, rec: EventRecord, original: datetime) -> str:
        """The instance's own description, or the series' one."""
        override = rec.overrides.get(original)
        if override is not None and override.description is not None:
            return override.description
        return rec.description

    # -- JSON views -----------------------------------------------------------------------

    def _when(self, rec: EventRecord, value: datetime) -> JSON:
        if rec.all_day:
            return {"date": value.astimezone(ZoneInfo(rec.time_zone)).date().isoformat()}
        local = value.astimezone(ZoneInfo(rec.time_zone))
        return {"dateTime": local.isoformat(), "timeZone": rec.time_zone}

    def _people(self, rec: EventRecord, owner: str, responses: dict[str, str]) -> list[JSON]:
        out: list[JSON] = []
        for p in rec.participants:
            item: JSON = {"email": p.email, "responseStatus": responses.get(p.email, p.response)}
            if p.name:
                item["displayName"] = p.name
            if p.email == rec.organizer:
                item["organizer"] = True
            if p.email == owner:
                item["self"] = True
            if p.resource:
                item["resource"] = True
            out.append(item)
        return out

    def _base(self, rec: EventRecord, owner: str) -> JSON:
        organizer: JSON = {"email": rec.organizer}
        if rec.organizer_name:
            organizer["displayName"] = rec.organizer_name
        if rec.organizer == owner:
            organizer["self"] = True
        return {
            "kind": "calendar#event",
            "htmlLink": f"https://calendar.sandbox.test/event?eid={rec.id}",
            "created": rfc3339(rec.created),
            "summary": rec.summary,
            "creator": dict(organizer),
            "organizer": organizer,
            "iCalUID": rec.ical_uid,
            "sequence": rec.sequence,
            "eventType": "default",
        }

    def event_json(self, rec: EventRecord, owner: str) -> JSON:
        """A single event or series master as ``events.get`` returns it."""
        if rec.raw is not None:
            return dict(rec.raw)
        if rec.status == "cancelled":
            return {"kind": "calendar#event", "etag": rec.etag, "id": rec.id, "status": "cancelled"}
        out = self._base(rec, owner)
        out.update(
            etag=rec.etag,
            id=rec.id,
            status=rec.status,
            updated=rfc3339(rec.updated),
            start=self._when(rec, rec.start),
            end=self._when(rec, rec.start + rec.duration),
        )
        if rec.description:
            out["description"] = rec.description
        if rec.recurrence:
            out["recurrence"] = list(rec.recurrence)
        if rec.participants:
            out["attendees"] = self._people(rec, owner, {})
        return out

    def instance_json(self, rec: EventRecord, original: datetime, owner: str) -> JSON:
        """One instance of a series, as ``singleEvents=true`` serves it."""
        override = rec.overrides.get(original)
        iid = recurrence.instance_id(rec.id, original, all_day=rec.all_day)
        etag = self.current_etag(rec, original)
        status = self.instance_status(rec, original)
        original_json = self._when(rec, original)
        if status == "cancelled":
            return {
                "kind": "calendar#event",
                "etag": etag,
                "id": iid,
                "status": "cancelled",
                "recurringEventId": rec.id,
                "originalStartTime": original_json,
            }
        start, end = self.instance_times(rec, original)
        out = self._base(rec, owner)
        updated = max(rec.updated, override.updated) if override is not None else rec.updated
        out.update(
            etag=etag,
            id=iid,
            status=status,
            updated=rfc3339(updated),
            start=self._when(rec, start),
            end=self._when(rec, end),
            recurringEventId=rec.id,
            originalStartTime=original_json,
        )
        description = self.instance_description(rec, original)
        if description:
            out["description"] = description
        if rec.participants:
            out["attendees"] = self._people(rec, owner, override.responses if override else {})
        return out

    def current_etag(self, rec: EventRecord, original: datetime | None) -> str:
        """The etag If-Match is compared with (and the one events.get serves).

        An etag changes whenever the resource does
        (https://developers.google.com/calendar/api/guides/version-resources): an instance with
        an exception of its own keeps that exception's etag, unless a change to the whole
        series (deleted, cut short with UNTIL) cancelled it since.
        """
        if original is None:
            return rec.etag
        override = rec.overrides.get(original)
        if override is None:
            return rec.etag
        if rec.status == "cancelled" or original in rec.removed:
            return max(override.etag, rec.etag, key=_etag_seq)
        return override.etag

    # -- lookups --------------------------------------------------------------------------

    def resolve(
        self, owner: str, event_id: str, horizon: datetime
    ) -> tuple[EventRecord, datetime | None] | None:
        """(record, original start) for an event or instance id in `owner`'s calendar."""
        cal = self.calendars.get(owner)
        if cal is None:
            return None
        if event_id in cal.event_ids:
            return self.events[event_id], None
        split = recurrence.split_instance_id(event_id)
        if split is None or split[0] not in cal.event_ids:
            return None
        rec = self.events[split[0]]
        if not rec.recurrence:
            return None
        original = recurrence.parse_suffix(split[1], rec.time_zone).astimezone(UTC)
        if original not in self.instance_starts(rec, max(horizon, original)):
            return None
        return rec, original

    # -- listing --------------------------------------------------------------------------

    def list_items(
        self,
        owner: str,
        *,
        single_events: bool,
        show_deleted: bool,
        since: int | None,
        time_min: datetime | None,
        time_max: datetime | None,
        horizon: datetime,
    ) -> list[JSON]:
        """What events.list returns: everything (since None) or changes after `since`."""
        cal = self.calendars[owner]
        items: list[tuple[str, JSON]] = []
        for event_id in cal.event_ids:
            rec = self.events[event_id]
            if since is None:
                items.extend(
                    self._full(rec, owner, single_events, show_deleted, time_min, time_max, horizon)
                )
            else:
                items.extend(self._changed(rec, cal, owner, single_events, since, horizon))
        items.sort(key=lambda pair: pair[0])
        return [item for _, item in items]

    def _overlaps(
        self, start: datetime, end: datetime, time_min: datetime | None, time_max: datetime | None
    ) -> bool:
        return (time_min is None or end > time_min) and (time_max is None or start < time_max)

    def _sort_key(self, rec: EventRecord, start: datetime | None) -> str:
        return f"{(start or rec.start).astimezone(UTC).isoformat()}|{rec.id}"

    def _full(
        self,
        rec: EventRecord,
        owner: str,
        single_events: bool,
        show_deleted: bool,
        time_min: datetime | None,
        time_max: datetime | None,
        horizon: datetime,
    ) -> list[tuple[str, JSON]]:
        if rec.raw is not None:
            return [(self._sort_key(rec, None), dict(rec.raw))]
        if not rec.recurrence:
            if rec.status == "cancelled" and not show_deleted:
                return []
            if not self._overlaps(rec.start, rec.start + rec.duration, time_min, time_max):
                return []
            return [(self._sort_key(rec, rec.start), self.event_json(rec, owner))]
        if not single_events:
            out: list[tuple[str, JSON]] = []
            if rec.status != "cancelled" or show_deleted:
                out.append((self._sort_key(rec, rec.start), self.event_json(rec, owner)))
            if rec.status != "cancelled":
                for original in rec.overrides:
                    out.append(
                        (self._sort_key(rec, original), self.instance_json(rec, original, owner))
                    )
            return out
        out = []
        upper = min(horizon, time_max) if time_max else horizon
        for original in self.instance_starts(rec, upper):
            status = self.instance_status(rec, original)
            if status == "cancelled" and not show_deleted:
                continue
            start, end = self.instance_times(rec, original)
            if status == "cancelled":
                start, end = original, original + rec.duration
            if self._overlaps(start, end, time_min, time_max):
                out.append((self._sort_key(rec, start), self.instance_json(rec, original, owner)))
        return out

    def _changed(
        self,
        rec: EventRecord,
        cal: CalendarState,
        owner: str,
        single_events: bool,
        since: int,
        horizon: datetime,
    ) -> list[tuple[str, JSON]]:
        whole = cal.changes.get(rec.id, 0) > since
        if rec.raw is not None or not rec.recurrence:
            return [(self._sort_key(rec, None), self.event_json(rec, owner))] if whole else []
        changed = [o for o, s in cal.instance_changes.get(rec.id, {}).items() if s > since]
        if not single_events:
            out = [(self._sort_key(rec, rec.start), self.event_json(rec, owner))] if whole else []
            out += [(self._sort_key(rec, o), self.instance_json(rec, o, owner)) for o in changed]
            return out
        originals = self.instance_starts(rec, horizon) if whole else sorted(changed)
        return [(self._sort_key(rec, o), self.instance_json(rec, o, owner)) for o in originals]

    def busy(
        self, owner: str, start: datetime, end: datetime, horizon: datetime
    ) -> list[tuple[datetime, datetime]]:
        """Busy intervals of `owner` (confirmed events not declined by them), merged."""
        spans: list[tuple[datetime, datetime]] = []
        for event_id in self.calendars[owner].event_ids:
            rec = self.events[event_id]
            if rec.raw is not None or rec.status == "cancelled" or rec.all_day:
                continue
            originals: list[datetime | None] = (
                list(self.instance_starts(rec, min(horizon, end))) if rec.recurrence else [None]
            )
            for original in originals:
                if original is None:
                    s, e, responses = rec.start.astimezone(UTC), rec.start + rec.duration, {}
                else:
                    if self.instance_status(rec, original) == "cancelled":
                        continue
                    s, e = self.instance_times(rec, original)
                    override = rec.overrides.get(original)
                    responses = override.responses if override else {}
                me = next((p for p in rec.participants if p.email == owner), None)
                if me is not None and responses.get(owner, me.response) == "declined":
                    continue
                if e > start and s < end:
                    spans.append((max(s, start), min(e.astimezone(UTC), end)))
        spans.sort()
        merged: list[tuple[datetime, datetime]] = []
        for s, e in spans:
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        return merged


def all_day_start(day: date, tz: str) -> datetime:
    """Midnight of `day` in `tz`: how the store keeps all-day starts."""
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))
