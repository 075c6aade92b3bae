"""Pure parsing of Graph JSON into Rapport's models; no I/O.

Follows https://learn.microsoft.com/en-us/graph/api/resources/event: times are
``dateTimeTimeZone`` values in the zone asked for by ``Prefer: outlook.timezone`` (we ask
for UTC), all-day events are floating midnights, ``@removed`` entries of a delta round carry
only the id (https://learn.microsoft.com/en-us/graph/delta-query-events).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

from connectors.base import (
    Attendee,
    BusyInterval,
    CalendarEvent,
    CalendarInfo,
    EventStatus,
    Response,
    SkippedItem,
)
from connectors.items import PARSE_ERRORS, skipped_item
from connectors.microsoft.timezones import iana_name, zone
from connectors.microsoft.types import GraphCalendar, GraphEvent, ScheduleInformation
from connectors.text import MAX_DESCRIPTION_CHARS

RESPONSES: dict[str, Response] = {
    "organizer": Response.ACCEPTED,
    "accepted": Response.ACCEPTED,
    "tentativelyAccepted": Response.TENTATIVE,
    "declined": Response.DECLINED,
    "none": Response.NEEDS_ACTION,
    "notResponded": Response.NEEDS_ACTION,
}
_FRACTION = re.compile(r"(\.\d{1,6})\d*")


class ParseError(ValueError):
    """A Graph item Rapport cannot use; the sync skips it and goes on."""


def _iso(value: str) -> datetime:
    """Graph's timestamps carry up to seven fractional digits; Python takes six."""
    return datetime.fromisoformat(_FRACTION.sub(r"\1", value.replace("Z", "+00:00")))


def parse_zoned(value: object, *, all_day: bool = False) -> datetime:
    """A ``dateTimeTimeZone`` as an aware UTC datetime (all-day: midnight UTC of the day)."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise ParseError(f"not a dateTimeTimeZone: {value!r:.80}")
    try:
        naive = _iso(value["dateTime"]).replace(tzinfo=None)
    except ValueError as err:
        raise ParseError(f"bad dateTime {value['dateTime']!r:.40}") from err
    if all_day:
        return datetime(naive.year, naive.month, naive.day, tzinfo=UTC)
    try:
        tz = zone(value.get("timeZone"))
    except ValueError as err:
        raise ParseError(str(err)) from err
    return naive.replace(tzinfo=tz).astimezone(UTC)


def parse_instant(value: object) -> datetime | None:
    """An ISO 8601 instant (``originalStart``, ``lastModifiedDateTime``) in UTC, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = _iso(value)
    except ValueError as err:
        raise ParseError(f"bad timestamp {value!r:.40}") from err
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def tombstone(raw: GraphEvent, calendar_id: str) -> CalendarEvent:
    """A delta ``@removed`` entry: only the id is known."""
    return CalendarEvent(id=raw["id"], calendar_id=calendar_id, status=EventStatus.CANCELLED)


def _attendees(raw: GraphEvent, organizer: str | None, owner: str | None) -> tuple[Attendee, ...]:
    own = RESPONSES.get(str((raw.get("responseStatus") or {}).get("response", "none")))
    out: list[Attendee] = []
    seen: set[str] = set()
    for entry in raw.get("attendees") or []:
        address = ((entry.get("emailAddress") or {}).get("address") or "").strip().lower()
        if not address or address in seen:
            continue
        seen.add(address)
        response = RESPONSES.get(
            str((entry.get("status") or {}).get("response", "none")), Response.NEEDS_ACTION
        )
        if address == owner and own not in (None, Response.NEEDS_ACTION):
            response = own  # the owner's own copy knows their answer best
        out.append(
            Attendee(
                email=address,
                display_name=(entry.get("emailAddress") or {}).get("name") or None,
                response=Response.ACCEPTED if address == organizer else response,
                is_resource=entry.get("type") == "resource",
                is_organizer=address == organizer,
                is_self=address == owner,
            )
        )
    if organizer and organizer not in seen:
        # Graph leaves the organizer out of `attendees`; Google lists them. One shape for both.
        name = ((raw.get("organizer") or {}).get("emailAddress") or {}).get("name")
        out.insert(
            0,
            Attendee(
                email=organizer,
                display_name=name or None,
                response=Response.ACCEPTED,
                is_organizer=True,
                is_self=organizer == owner,
            ),
        )
    return tuple(out)


def parse_event(
    raw: GraphEvent, *, calendar_id: str, owner: str | None = None, series_uid: str | None = None
) -> CalendarEvent:
    """One Graph event as a `CalendarEvent`; `series_uid` is the series master's iCalUId.

    Raises `ParseError` for items Rapport cannot use.
    """
    event_id = raw.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise ParseError("event without id")
    if "@removed" in raw:
        return tombstone(raw, calendar_id)
    all_day = bool(raw.get("isAllDay"))
    start = parse_zoned(raw.get("start"), all_day=all_day)
    end = parse_zoned(raw.get("end"), all_day=all_day)
    body = raw.get("body") or {}
    content = body.get("content") or ""
    if len(content) > MAX_DESCRIPTION_CHARS:
        raise ParseError(
            f"description of {len(content)} characters is over {MAX_DESCRIPTION_CHARS}"
        )
    organizer = ((raw.get("organizer") or {}).get("emailAddress") or {}).get("address")
    organizer = organizer.strip().lower() if organizer else None
    owner = owner.lower() if owner else None
    kind = raw.get("type", "singleInstance")
    series_id = raw.get("seriesMasterId") if kind in ("occurrence", "exception") else None
    if series_uid is None and kind in ("singleInstance", "seriesMaster"):
        series_uid = raw.get("iCalUId")
    return CalendarEvent(
        id=event_id,
        calendar_id=calendar_id,
        status=EventStatus.CANCELLED if raw.get("isCancelled") else EventStatus.CONFIRMED,
        series_id=series_id,
        original_start=parse_instant(raw.get("originalStart")) if series_id else None,
        start=start,
        end=end,
        all_day=all_day,
        time_zone=iana_name(raw.get("originalStartTimeZone")),
        title=raw.get("subject") or "",
        description=content,
        description_is_html=str(body.get("contentType", "text")).lower() == "html",
        organizer=organizer,
        attendees=_attendees(raw, organizer, owner),
        etag=raw.get("@odata.etag"),
        created=parse_instant(raw.get("createdDateTime")),
        updated=parse_instant(raw.get("lastModifiedDateTime")),
        ical_uid=series_uid,
    )


def parse_item(
    raw: GraphEvent, *, calendar_id: str, owner: str | None = None, series_uid: str | None = None
) -> CalendarEvent | SkippedItem:
    """Like `parse_event`, but a broken item becomes a `SkippedItem` instead of an error."""
    try:
        return parse_event(raw, calendar_id=calendar_id, owner=owner, series_uid=series_uid)
    except PARSE_ERRORS as err:  # ParseError too
        return skipped_item(raw, err)


def parse_calendar(raw: GraphCalendar) -> CalendarInfo:
    """A Graph calendar as `CalendarInfo`."""
    owner = (raw.get("owner") or {}).get("address")
    return CalendarInfo(
        id=raw["id"],
        name=raw.get("name") or "",
        is_primary=bool(raw.get("isDefaultCalendar")),
        owner_email=owner.lower() if owner else None,
    )


def parse_busy(info: ScheduleInformation) -> list[BusyInterval]:
    """Busy intervals of one getSchedule answer (anything but ``free``)."""
    return [
        BusyInterval(start=parse_zoned(item.get("start")), end=parse_zoned(item.get("end")))
        for item in info.get("scheduleItems") or []
        if item.get("status", "busy") != "free"
    ]


def text_to_html(text: str) -> str:
    """Plain text as a safe HTML body (escaped, line breaks kept)."""
    lines = [html.escape(line) for line in text.split("\n")]
    return "<html><body>" + "<br>\n".join(lines) + "</body></html>"
