"""Pure parsing of Google event JSON into the provider-neutral model."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.base import EventStatus, Response
from connectors.google.parsing import EventParseError, parse_event, parse_items


def test_timed_instance_becomes_utc_with_series_id_and_original_start() -> None:
    event = parse_event(
        {
            "id": "abc_20250304T150000Z",
            "status": "confirmed",
            "recurringEventId": "abc",
            "originalStartTime": {
                "dateTime": "2025-03-04T10:00:00-05:00",
                "timeZone": "America/New_York",
            },
            "start": {"dateTime": "2025-03-05T11:00:00-05:00", "timeZone": "America/New_York"},
            "end": {"dateTime": "2025-03-05T11:30:00-05:00", "timeZone": "America/New_York"},
            "organizer": {"email": "Maya@Acme.Test"},
            "attendees": [
                {"email": "Sam@Acme.Test", "responseStatus": "declined", "self": True},
                {
                    "email": "room@resource.acme.test",
                    "resource": True,
                    "responseStatus": "accepted",
                },
            ],
            "description": "Line<br>next",
            "iCalUID": "series@x",
        },
        "sam@acme.test",
    )

    assert event.start == datetime(2025, 3, 5, 16, 0, tzinfo=UTC)
    assert event.original_start == datetime(2025, 3, 4, 15, 0, tzinfo=UTC)
    assert event.series_id == "abc" and event.ical_uid == "series@x"
    assert event.organizer == "maya@acme.test" and event.description_is_html
    sam, room = event.attendees
    assert (sam.email, sam.response, sam.is_self) == ("sam@acme.test", Response.DECLINED, True)
    assert room.is_resource and not sam.is_resource


def test_all_day_event_is_flagged_and_spans_whole_days() -> None:
    event = parse_event(
        {"id": "x", "start": {"date": "2025-06-02"}, "end": {"date": "2025-06-03"}}, "c"
    )

    assert event.all_day and event.start == datetime(2025, 6, 2, tzinfo=UTC)
    assert event.time_zone is None and event.status is EventStatus.CONFIRMED


def test_tombstone_with_only_id_and_status_is_a_cancelled_event() -> None:
    event = parse_event({"id": "gone", "status": "cancelled"}, "c")

    assert event.status is EventStatus.CANCELLED and event.start is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"id": "a", "end": {"date": "2025-01-02"}}, "missing start"),
        (
            {
                "id": "b",
                "start": {"dateTime": "2025-01-01T10:00:00Z", "timeZone": "Mars/Olympus_Mons"},
                "end": {"dateTime": "2025-01-01T11:00:00Z"},
            },
            "unknown time zone",
        ),
        ({"id": "c", "start": {"dateTime": "soon"}, "end": {"dateTime": "later"}}, "bad timestamp"),
    ],
)
def test_unreadable_events_raise_a_parse_error(raw: dict, reason: str) -> None:
    with pytest.raises(EventParseError, match=reason):
        parse_event(raw, "c")  # type: ignore[arg-type]


def test_a_page_with_broken_items_reports_them_and_keeps_the_rest() -> None:
    good = {"id": "ok", "start": {"date": "2025-06-02"}, "end": {"date": "2025-06-03"}}
    events, skipped = parse_items(
        [good, {"id": "bad", "attendees": "nope", "start": {}}],
        "c",  # type: ignore[list-item]
    )

    assert [e.id for e in events] == ["ok"]
    assert [s.event_id for s in skipped] == ["bad"]
