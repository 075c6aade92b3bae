"""Items as Graph v1.0 JSON (https://learn.microsoft.com/en-us/graph/api/resources/event).

Times follow ``Prefer: outlook.timezone`` (default UTC), rendered as local wall time with
seven fractional digits and the zone's name, as Graph does
(https://learn.microsoft.com/en-us/graph/api/event-get#support-various-time-zones).
All-day events are floating: midnight of the day whatever the preferred zone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import tz_win, win_tz

from sandbox.microsoft.model import Item


def iana_zone(name: str) -> str:
    """The IANA name of a Windows zone name (CLDR's table, via tzlocal); IANA names pass.

    Graph takes either form in ``Prefer: outlook.timezone`` and in ``dateTimeTimeZone``
    (https://learn.microsoft.com/en-us/graph/api/resources/datetimetimezone).
    """
    return win_tz.get(name, name)


def windows_zone(iana: str) -> str:
    """The Windows name Graph reports for an IANA zone by default (mailboxSettings.timeZone),
    the IANA name itself when CLDR has no Windows name for it."""
    return "UTC" if iana in ("UTC", "Etc/UTC") else tz_win.get(iana, iana)


_PREFER_TZ = re.compile(r'outlook\.timezone\s*=\s*"?([^",;]+)"?', re.I)
_PREFER_PAGE = re.compile(r"odata\.maxpagesize\s*=\s*(\d+)", re.I)


def preferred_zone(prefer: str | None) -> tuple[str, tzinfo]:
    """The zone asked for by ``Prefer: outlook.timezone`` (unknown or absent: UTC)."""
    match = _PREFER_TZ.search(prefer or "")
    if match:
        name = match.group(1).strip()
        try:
            return name, ZoneInfo(iana_zone(name))
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return "UTC", UTC


def preferred_page_size(prefer: str | None, default: int) -> int:
    """``Prefer: odata.maxpagesize=N`` (https://learn.microsoft.com/en-us/graph/paging)."""
    match = _PREFER_PAGE.search(prefer or "")
    return max(1, int(match.group(1))) if match else default


def stamp(dt: datetime) -> str:
    """A UTC timestamp as Graph writes ``lastModifiedDateTime``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _local(dt: datetime, zone_name: str, zone: tzinfo, all_day: bool) -> dict[str, str]:
    value = dt.replace(tzinfo=None) if all_day else dt.astimezone(zone).replace(tzinfo=None)
    return {"dateTime": value.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": zone_name}


def render_event(item: Item, zone_name: str, zone: tzinfo, base_url: str) -> dict[str, object]:
    """One item as the Graph event resource."""
    preview = re.sub(r"<[^>]+>", " ", item.body)
    data: dict[str, object] = {
        "@odata.etag": f'W/"{item.etag}"',
        "id": item.id,
        "createdDateTime": stamp(item.created or item.start),
        "lastModifiedDateTime": stamp(item.modified or item.start),
        "changeKey": item.etag,
        "categories": [],
        "originalStartTimeZone": item.time_zone,
        "originalEndTimeZone": item.time_zone,
        "iCalUId": item.ical_uid,
        "reminderMinutesBeforeStart": 15,
        "isReminderOn": True,
        "subject": item.subject,
        "bodyPreview": " ".join(preview.split())[:255],
        "importance": "normal",
        "sensitivity": "normal",
        "isAllDay": item.all_day,
        "isCancelled": item.is_cancelled,
        "isOrganizer": item.owner == item.organizer,
        "responseRequested": True,
        "seriesMasterId": item.master_id,
        "showAs": "free" if item.is_cancelled else "busy",
        "type": item.kind,
        "webLink": f"{base_url}/owa/?itemid={item.id}",
        "responseStatus": {"response": item.response, "time": "0001-01-01T00:00:00Z"},
        "body": {"contentType": item.body_type, "content": item.body},
        "start": _local(item.start, zone_name, zone, item.all_day),
        "end": _local(item.end, zone_name, zone, item.all_day),
        "location": {"displayName": item.location, "locationType": "default"},
        "recurrence": item.recurrence,
        "attendees": [
            {
                "type": a.kind,
                "status": {"response": a.response, "time": "0001-01-01T00:00:00Z"},
                "emailAddress": {"name": a.name, "address": a.email},
            }
            for a in item.attendees
        ],
        "organizer": {"emailAddress": {"name": item.organizer_name, "address": item.organizer}},
    }
    if item.original_start is not None:
        data["originalStart"] = item.original_start.strftime("%Y-%m-%dT%H:%M:%SZ")
    data.update(item.overrides)
    return data


def removed(item: Item) -> dict[str, object]:
    """A delta entry for an item that left the calendar view."""
    return {
        "@odata.type": "#microsoft.graph.event",
        "id": item.id,
        "@removed": {"reason": "deleted"},
    }


def graph_error(code: str, message: str) -> dict[str, object]:
    """Graph's error body (https://learn.microsoft.com/en-us/graph/errors)."""
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"date": stamp(datetime.now(UTC)), "request-id": "sandbox"},
        }
    }
