"""Pure parsing of Graph event JSON (no network)."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.base import EventStatus, Response, SkippedItem
from connectors.microsoft.parse import parse_event, parse_item, text_to_html


def raw(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "@odata.etag": 'W/"abc"',
        "id": "E1",
        "type": "occurrence",
        "seriesMasterId": "M1",
        "originalStart": "2025-03-04T15:00:00Z",
        "subject": "1:1",
        "isAllDay": False,
        "start": {"dateTime": "2025-03-04T07:00:00.0000000", "timeZone": "Pacific Standard Time"},
        "end": {"dateTime": "2025-03-04T07:30:00.0000000", "timeZone": "Pacific Standard Time"},
        "body": {"contentType": "text", "content": "hi"},
        "organizer": {"emailAddress": {"name": "Dana", "address": "Dana@Acme.test"}},
        "responseStatus": {"response": "tentativelyAccepted"},
        "attendees": [
            {
                "type": "required",
                "status": {"response": "none"},
                "emailAddress": {"address": "lee@acme.test"},
            }
        ],
        "originalStartTimeZone": "GMT Standard Time",
    }
    base.update(over)
    return base


def test_times_in_the_preferred_zone_become_utc_and_windows_zone_names_map_to_iana():
    event = parse_event(raw(), calendar_id="c", owner="lee@acme.test", series_uid="uid@x")  # type: ignore[arg-type]
    assert event.start == datetime(2025, 3, 4, 15, 0, tzinfo=UTC)
    assert event.time_zone == "Europe/London" and event.ical_uid == "uid@x"
    assert event.organizer == "dana@acme.test" and not event.description_is_html


def test_own_response_comes_from_response_status_and_organizer_is_listed():
    event = parse_event(raw(), calendar_id="c", owner="lee@acme.test")  # type: ignore[arg-type]
    by_email = {a.email: a for a in event.attendees}
    assert (
        by_email["lee@acme.test"].response is Response.TENTATIVE
        and by_email["lee@acme.test"].is_self
    )
    assert by_email["dana@acme.test"].is_organizer


def test_all_day_event_is_midnight_utc_of_its_day():
    event = parse_event(
        raw(
            isAllDay=True,
            start={"dateTime": "2025-03-05T00:00:00.0000000", "timeZone": "Tokyo Standard Time"},  # type: ignore[arg-type]
            end={"dateTime": "2025-03-06T00:00:00.0000000", "timeZone": "Tokyo Standard Time"},
        ),
        calendar_id="c",
    )
    assert event.all_day and event.start == datetime(2025, 3, 5, tzinfo=UTC)


def test_removed_entry_becomes_a_tombstone_and_cancelled_copy_is_cancelled():
    gone = parse_event({"id": "E9", "@removed": {"reason": "deleted"}}, calendar_id="c")  # type: ignore[arg-type]
    assert gone.status is EventStatus.CANCELLED and gone.start is None
    assert parse_event(raw(isCancelled=True), calendar_id="c").status is EventStatus.CANCELLED  # type: ignore[arg-type]


def test_item_without_start_is_skipped_with_its_id():
    skipped = parse_item(raw(start=None), calendar_id="c")  # type: ignore[arg-type]
    assert isinstance(skipped, SkippedItem) and skipped.event_id == "E1"


def test_plain_text_becomes_escaped_html():
    assert text_to_html("a<b>\nc") == "<html><body>a&lt;b&gt;<br>\nc</body></html>"
