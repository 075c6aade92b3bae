"""The Graph sandbox's in-memory records: one `Item` per event copy per mailbox.

Exchange keeps a separate copy of a meeting in every attendee's mailbox, each with its own
id (https://learn.microsoft.com/en-us/graph/api/resources/event); the sandbox does the same
and materialises every occurrence as its own item so delta rounds only compare versions.
"""

from __future__ import annotations

import hashlib
import html
import uuid
from dataclasses import dataclass, field
from datetime import datetime

ACCESS_TOKEN_SECONDS = 3600


def object_id(email: str) -> str:
    """The stable Entra object id of a sandbox person."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"rapport-sandbox:{email}"))


@dataclass
class AttendeeRecord:
    """One entry of an event's ``attendees`` collection."""

    email: str
    name: str
    kind: str = "required"  # required | optional | resource
    response: str = (
        "none"  # none | organizer | tentativelyAccepted | accepted | declined | notResponded
    )


@dataclass
class Item:
    """One event, occurrence, exception or series master in one mailbox."""

    id: str
    owner: str
    series_key: str
    kind: str  # singleInstance | occurrence | exception | seriesMaster
    subject: str
    start: datetime  # aware UTC (all-day: midnight UTC of the day)
    end: datetime
    time_zone: str  # IANA name of the event's own zone (originalStartTimeZone)
    organizer: str
    organizer_name: str
    attendees: list[AttendeeRecord]
    body: str = ""
    body_type: str = "html"
    response: str = "none"  # the mailbox owner's own responseStatus
    all_day: bool = False
    master_id: str | None = None
    original_start: datetime | None = None
    ical_uid: str = ""
    is_cancelled: bool = False
    removed: bool = False
    location: str = ""
    recurrence: dict[str, object] | None = None
    version: int = 0  # store change sequence of the last change
    change_count: int = 0  # feeds the etag / changeKey
    created: datetime | None = None
    modified: datetime | None = None
    overrides: dict[str, object] = field(default_factory=dict)  # broken fields (fault injection)

    @property
    def etag(self) -> str:
        """Graph's changeKey; ``@odata.etag`` is ``W/"<changeKey>"``."""
        digest = hashlib.sha1(f"{self.id}/{self.change_count}".encode()).hexdigest()[:20]
        return f"DwAAABYAAAA{digest}"


def opaque_id(*parts: str) -> str:
    """A stable, URL-safe, Exchange-looking id (``AAMk...``)."""
    return "AAMk" + hashlib.sha256("/".join(parts).encode()).hexdigest()[:40]


def occurrence_id(master_id: str, original_start: datetime) -> str:
    """Occurrence ids derive from the master id and the original start, like Exchange's."""
    return f"{master_id}_{original_start.strftime('%Y%m%dT%H%M%SZ')}"


def outlook_html(text: str) -> str:
    """Wrap plain text the way Outlook stores a body edited in its UI."""
    lines = "".join(
        f"<div>{html.escape(line) if line else '<br>'}</div>" for line in text.split("\n")
    )
    return (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        "</head><body>" + lines + "</body></html>"
    )
