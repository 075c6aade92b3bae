"""Reading provider items into `CalendarEvent`s the same way for every connector.

A broken item in a sync page becomes a `SkippedItem` with its id (the sync goes on); a broken
answer to a single read or write raises `MalformedEvent` (retrying would read it again).
"""

from __future__ import annotations

from collections.abc import Callable

from connectors.base import CalendarEvent, SkippedItem
from connectors.errors import MalformedEvent

# What a parser raises for an item it cannot read (its own ParseError is a ValueError).
PARSE_ERRORS = (ValueError, TypeError, AttributeError, KeyError)


def skipped_item(raw: object, err: Exception) -> SkippedItem:
    """The `SkippedItem` for an unreadable raw item, with its id when it has a usable one."""
    event_id = raw.get("id") if isinstance(raw, dict) else None
    return SkippedItem(event_id=event_id if isinstance(event_id, str) else None,
                       reason=str(err))


def read_event(parse: Callable[[], CalendarEvent], *, event_id: str,
               after: str = "") -> CalendarEvent:
    """`parse()`, or `MalformedEvent` carrying `event_id` when the item cannot be read."""
    try:
        return parse()
    except PARSE_ERRORS as err:
        raise MalformedEvent(f"event {event_id} cannot be read{after}: {err}",
                             event_id=event_id) from err
