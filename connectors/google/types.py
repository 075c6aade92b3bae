"""TypedDicts for the Google Calendar v3 JSON shapes Rapport reads.

https://developers.google.com/calendar/api/v3/reference/events#resource
"""

from __future__ import annotations

from typing import TypedDict


class EventDateTime(TypedDict, total=False):
    """``start`` / ``end`` / ``originalStartTime``: dateTime (RFC 3339) or date (all-day)."""

    date: str
    dateTime: str
    timeZone: str


class EventPerson(TypedDict, total=False):
    """``organizer`` / ``creator``."""

    email: str
    displayName: str
    self: bool


class EventAttendee(TypedDict, total=False):
    """One entry of ``attendees``."""

    email: str
    displayName: str
    organizer: bool
    self: bool
    resource: bool
    optional: bool
    responseStatus: str


class Event(TypedDict, total=False):
    """An event, instance or tombstone (only id + status ``cancelled`` are guaranteed)."""

    kind: str
    etag: str
    id: str
    status: str
    summary: str
    description: str
    start: EventDateTime
    end: EventDateTime
    recurringEventId: str
    originalStartTime: EventDateTime
    recurrence: list[str]
    iCalUID: str
    organizer: EventPerson
    attendees: list[EventAttendee]
    created: str
    updated: str


class EventsPage(TypedDict, total=False):
    """events.list / events.instances response."""

    items: list[Event]
    nextPageToken: str
    nextSyncToken: str
    timeZone: str


class CalendarListEntry(TypedDict, total=False):
    """One entry of calendarList.list."""

    id: str
    summary: str
    summaryOverride: str
    timeZone: str
    primary: bool
    accessRole: str


class CalendarListPage(TypedDict, total=False):
    """calendarList.list response."""

    items: list[CalendarListEntry]
    nextPageToken: str


class BusyPeriod(TypedDict):
    """One busy span of freebusy.query."""

    start: str
    end: str


class FreeBusyCalendar(TypedDict, total=False):
    """freebusy.query result for one calendar."""

    busy: list[BusyPeriod]
    errors: list[dict[str, str]]


class FreeBusyResponse(TypedDict, total=False):
    """freebusy.query response."""

    calendars: dict[str, FreeBusyCalendar]


class Channel(TypedDict, total=False):
    """events.watch response."""

    id: str
    resourceId: str
    resourceUri: str
    token: str
    expiration: str
