"""Raw Graph v1.0 shapes the connector reads (https://learn.microsoft.com/en-us/graph/api/resources/event)."""

from __future__ import annotations

from typing import TypedDict


class EmailAddress(TypedDict, total=False):
    name: str
    address: str


class Recipient(TypedDict, total=False):
    emailAddress: EmailAddress


class ResponseStatus(TypedDict, total=False):
    response: str  # none | organizer | tentativelyAccepted | accepted | declined | notResponded
    time: str


class GraphAttendee(TypedDict, total=False):
    type: str  # required | optional | resource
    status: ResponseStatus
    emailAddress: EmailAddress


class DateTimeTimeZone(TypedDict, total=False):
    dateTime: str
    timeZone: str


class ItemBody(TypedDict, total=False):
    contentType: str  # text | html
    content: str


GraphEvent = TypedDict(
    "GraphEvent",
    {
        "@odata.etag": str,
        "@removed": dict[str, str],
        "id": str,
        "iCalUId": str,
        "subject": str,
        "body": ItemBody,
        "start": DateTimeTimeZone,
        "end": DateTimeTimeZone,
        "isAllDay": bool,
        "isCancelled": bool,
        "isOrganizer": bool,
        "seriesMasterId": str | None,
        "type": str,  # singleInstance | occurrence | exception | seriesMaster
        "originalStart": str,
        "originalStartTimeZone": str,
        "responseStatus": ResponseStatus,
        "attendees": list[GraphAttendee],
        "organizer": Recipient,
        "createdDateTime": str,
        "lastModifiedDateTime": str,
        "showAs": str,
    },
    total=False,
)

DeltaPage = TypedDict(
    "DeltaPage",
    {"value": list[GraphEvent], "@odata.nextLink": str, "@odata.deltaLink": str},
    total=False,
)


class GraphCalendar(TypedDict, total=False):
    id: str
    name: str
    isDefaultCalendar: bool
    owner: EmailAddress


class ScheduleItem(TypedDict, total=False):
    status: str  # free | tentative | busy | oof | workingElsewhere | unknown
    start: DateTimeTimeZone
    end: DateTimeTimeZone


class ScheduleInformation(TypedDict, total=False):
    scheduleId: str
    availabilityView: str
    scheduleItems: list[ScheduleItem]
    error: dict[str, str]


class GraphSubscription(TypedDict, total=False):
    id: str
    resource: str
    expirationDateTime: str
    clientState: str
