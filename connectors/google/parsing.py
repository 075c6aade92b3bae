"""Pure parsing: Google event JSON -> `CalendarEvent`. No I/O.

Follows https://developers.google.com/calendar/api/v3/reference/events#resource: times are
RFC 3339 ``dateTime`` with offset or ``date`` for all-day events; an instance carries
``recurringEventId`` and ``originalStartTime``; a deleted item may be a tombstone with only
``id`` and ``status: "cancelled"``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.base import (
    Attendee,
    CalendarEvent,
    EventStatus,
    Response,
    SkippedItem,
    starts_before,
)
from connectors.google.types import Event, EventAttendee, EventDateTime
from connectors.items import PARSE_ERRORS, skipped_item
from connectors.text import MAX_DESCRIPTION_CHARS, looks_like_html

_STATUSES = {s.value: s for s in EventStatus}
_RESPONSES = {r.value: r for r in Response}


class EventParseError(ValueError):
    """A provider item Rapport cannot read; reported as `SkippedItem`, never stops a sync."""


def parse_timestamp(value: str) -> datetime:
    """RFC 3339 timestamp -> aware UTC datetime."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError) as err:
        raise EventParseError(f"bad timestamp {value!r}") from err
    if parsed.tzinfo is None:
        raise EventParseError(f"timestamp without offset {value!r}")
    return parsed.astimezone(UTC)


def _zone(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise EventParseError(f"unknown time zone {name!r}") from err
    return name


def parse_when(when: EventDateTime | None, field: str) -> tuple[datetime, bool, str | None]:
    """(UTC start, all-day?, IANA zone) of a ``start``/``end``/``originalStartTime`` object.

    All-day dates become midnight UTC of that date: they belong to no time zone.
    """
    if not isinstance(when, dict):
        raise EventParseError(f"missing {field}")
    zone = _zone(when.get("timeZone"))
    if "dateTime" in when:
        return parse_timestamp(when["dateTime"]), False, zone
    if "date" in when:
        try:
            day = date.fromisoformat(when["date"])
        except (TypeError, ValueError) as err:
            raise EventParseError(f"bad {field} date {when['date']!r}") from err
        return datetime(day.year, day.month, day.day, tzinfo=UTC), True, zone
    raise EventParseError(f"{field} has neither dateTime nor date")


def parse_attendee(raw: EventAttendee) -> Attendee:
    """One attendee, email lower-cased."""
    email = raw.get("email")
    if not email:
        raise EventParseError("attendee without email")
    return Attendee(
        email=email.strip().lower(),
        display_name=raw.get("displayName"),
        response=_RESPONSES.get(raw.get("responseStatus", ""), Response.NEEDS_ACTION),
        is_resource=bool(raw.get("resource", False)),
        is_organizer=bool(raw.get("organizer", False)),
        is_self=bool(raw.get("self", False)),
    )


def parse_event(raw: Event, calendar_id: str) -> CalendarEvent:
    """A Google event, instance or tombstone as a `CalendarEvent`; raises `EventParseError`."""
    event_id = raw.get("id")
    if not event_id:
        raise EventParseError("event without id")
    status = _STATUSES.get(raw.get("status", "confirmed"))
    if status is None:
        raise EventParseError(f"unknown status {raw.get('status')!r}")
    series_id = raw.get("recurringEventId")
    original = raw.get("originalStartTime")
    original_start = parse_when(original, "originalStartTime")[0] if original else None
    updated = parse_timestamp(raw["updated"]) if raw.get("updated") else None
    created = parse_timestamp(raw["created"]) if raw.get("created") else None
    if status is EventStatus.CANCELLED and "start" not in raw:
        return CalendarEvent(
            id=event_id,
            calendar_id=calendar_id,
            status=status,
            series_id=series_id,
            original_start=original_start,
            etag=raw.get("etag"),
            updated=updated,
            ical_uid=raw.get("iCalUID"),
        )
    start, all_day, zone = parse_when(raw.get("start"), "start")
    end, _, end_zone = parse_when(raw.get("end"), "end")
    if end < start:
        raise EventParseError("end before start")
    description = raw.get("description") or ""
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise EventParseError(f"description too large ({len(description)} characters)")
    organizer = (raw.get("organizer") or {}).get("email")
    return CalendarEvent(
        id=event_id,
        calendar_id=calendar_id,
        status=status,
        series_id=series_id,
        original_start=original_start,
        start=start,
        end=end,
        all_day=all_day,
        time_zone=zone or end_zone,
        title=raw.get("summary") or "",
        description=description,
        description_is_html=looks_like_html(description),
        organizer=organizer.strip().lower() if organizer else None,
        attendees=tuple(parse_attendee(a) for a in raw.get("attendees") or ()),
        etag=raw.get("etag"),
        created=created,
        updated=updated,
        ical_uid=raw.get("iCalUID"),
    )


def parse_items(
    items: list[Event], calendar_id: str, *, before: datetime | None = None
) -> tuple[list[CalendarEvent], list[SkippedItem]]:
    """Parse a page; unreadable items become `SkippedItem` with their id.

    With `before` (a sync window's end) only the items that belong to the window are kept
    (`connectors.base.starts_before`). Google lists a full sync without ``timeMax`` (see
    `connectors.google.provider`), so most items of a first sync lie past the window: their
    times are read first and they are left out unparsed, not parsed and then dropped."""
    events: list[CalendarEvent] = []
    skipped: list[SkippedItem] = []
    for raw in items:
        if before is not None and _starts_from(raw, before):
            continue
        try:
            event = parse_event(raw, calendar_id)
        except PARSE_ERRORS as err:  # EventParseError too
            skipped.append(skipped_item(raw, err))
            continue
        if before is None or starts_before(event, before):
            events.append(event)
    return events, skipped


def _starts_from(raw: Event, end: datetime) -> bool:
    """True when every time the item gives (``start``, ``originalStartTime``) is at or after
    `end`; False when it gives none or one cannot be read (the full parse decides then)."""
    seen = False
    for when in (raw.get("start"), raw.get("originalStartTime")):
        if when is None:
            continue
        at = _quick_time(when)
        if at is None or at < end:
            return False
        seen = True
    return seen


def _quick_time(when: EventDateTime) -> datetime | None:
    """The instant of a ``dateTime`` (with its offset) or ``date``; None when unreadable."""
    try:
        if "dateTime" in when:
            at = datetime.fromisoformat(when["dateTime"])
            return at if at.tzinfo is not None else None
        if "date" in when:
            day = date.fromisoformat(when["date"])
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
    except (TypeError, ValueError):
        return None
    return None
