"""The Google connector syncs over real HTTP (google-api-python-client) against the sandbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import CalendarEvent, ChangePage, CursorExpired, EventStatus
from connectors.google import GoogleConnector
from sandbox.google import GoogleSandbox

MAYA = "maya@acme.test"
SAM = "sam@acme.test"
KIM = "kim@acme.test"

Factory = Callable[..., GoogleConnector]


def window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(days=28), now + timedelta(days=120)


def sync(conn: GoogleConnector, calendar: str, cursor: str | None = None) -> list[ChangePage]:
    start, end = window()
    return list(conn.list_changes(calendar, cursor, window_start=start, window_end=end))


def events_of(pages: list[ChangePage]) -> list[CalendarEvent]:
    return [e for p in pages for e in p.events]


def next_start(sandbox: GoogleSandbox, key: str) -> datetime:
    now = datetime.now(UTC)
    return next(
        s for s in sandbox.occurrence_starts(key, until=now + timedelta(days=60)) if s > now
    )


def test_full_sync_returns_seeded_occurrences_with_series_ids_and_original_starts(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    pages = sync(google_connector_for(MAYA), MAYA)
    start, end = window()
    series_id = google_sandbox.event_id("maya-sam")
    got = {e.original_start: e for e in events_of(pages) if e.series_id == series_id}
    expected = [s for s in google_sandbox.occurrence_starts("maya-sam", until=end) if s >= start]

    assert pages[-1].full_sync and pages[-1].cursor
    assert expected and set(expected) <= set(got)
    occurrence = got[expected[0]]
    assert occurrence.start == expected[0] and occurrence.start.tzinfo is not None
    assert occurrence.end == expected[0] + timedelta(minutes=30)
    assert occurrence.ical_uid == "maya-sam@rapport-sandbox"
    assert occurrence.organizer == MAYA and occurrence.time_zone == "America/New_York"
    assert {a.email for a in occurrence.attendees} == {MAYA, SAM}
    assert next(a for a in occurrence.attendees if a.email == MAYA).is_self


def test_full_sync_marks_rooms_as_resources_and_reads_all_day_events(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    events = events_of(sync(google_connector_for(MAYA), MAYA))
    with_room = next(e for e in events if e.series_id == google_sandbox.event_id("maya-alex"))
    offsite = next(e for e in events if e.id == google_sandbox.event_id("offsite"))

    room = next(a for a in with_room.attendees if a.email.startswith("boardroom@"))
    assert room.is_resource and not any(a.is_resource for a in with_room.attendees if a is not room)
    assert offsite.all_day and offsite.series_id is None
    assert offsite.end is not None and offsite.start is not None
    assert offsite.end - offsite.start == timedelta(days=1)


def test_cross_provider_invitation_carries_the_shared_ical_uid(
    google_connector_for: Factory,
) -> None:
    events = events_of(sync(google_connector_for(KIM), KIM))
    invites = [e for e in events if e.ical_uid == "dana-kim@rapport-sandbox"]

    assert invites and all(e.organizer == "dana@acme.test" and e.is_occurrence for e in invites)


def test_sync_pages_and_puts_the_cursor_only_on_the_last_page(
    google_connector_for: Factory,
) -> None:
    paged = sync(google_connector_for(MAYA, page_size=20), MAYA)
    whole = sync(google_connector_for(MAYA), MAYA)

    assert len(paged) > 2
    assert all(p.cursor is None for p in paged[:-1]) and paged[-1].cursor
    ids = [e.id for e in events_of(paged)]
    assert len(ids) == len(set(ids)) == len(events_of(whole))


def test_incremental_sync_after_a_cancelled_occurrence_returns_it_cancelled(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    maya, sam = google_connector_for(MAYA), google_connector_for(SAM)
    cursors = {MAYA: sync(maya, MAYA)[-1].cursor, SAM: sync(sam, SAM)[-1].cursor}
    original = next_start(google_sandbox, "maya-sam")

    google_sandbox.cancel_occurrence("maya-sam", original)

    for conn, calendar in ((maya, MAYA), (sam, SAM)):
        pages = sync(conn, calendar, cursors[calendar])
        (event,) = events_of(pages)
        assert event.status is EventStatus.CANCELLED
        assert event.series_id == google_sandbox.event_id("maya-sam")
        assert event.original_start == original
        assert not pages[-1].full_sync and pages[-1].cursor


def test_incremental_sync_returns_a_moved_occurrence_with_its_original_start(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    conn = google_connector_for(MAYA)
    cursor = sync(conn, MAYA)[-1].cursor
    original = next_start(google_sandbox, "maya-sam")
    new_start = original + timedelta(days=1, hours=2)

    google_sandbox.move_occurrence("maya-sam", original, new_start)

    (event,) = events_of(sync(conn, MAYA, cursor))
    assert event.status is EventStatus.CONFIRMED
    assert (event.original_start, event.start) == (original, new_start)
    assert event.end == new_start + timedelta(minutes=30)


def test_incremental_sync_returns_a_declined_occurrence_with_the_new_response(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    conn = google_connector_for(MAYA)
    cursor = sync(conn, MAYA)[-1].cursor
    original = next_start(google_sandbox, "maya-sam")

    google_sandbox.decline_occurrence("maya-sam", original, SAM)

    (event,) = events_of(sync(conn, MAYA, cursor))
    assert next(a for a in event.attendees if a.email == SAM).response.value == "declined"


def test_incremental_sync_returns_the_occurrences_of_a_new_series(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    conn = google_connector_for(SAM)
    cursor = sync(conn, SAM)[-1].cursor
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)

    key = google_sandbox.create_series(
        organizer=MAYA,
        attendees=[SAM],
        title="Maya / Sam 1:1 (new)",
        first_start=first,
        time_zone="America/New_York",
    )

    events = events_of(sync(conn, SAM, cursor))
    assert events and {e.series_id for e in events} == {google_sandbox.event_id(key)}
    assert min(e.original_start for e in events if e.original_start) == first
    assert all(e.status is EventStatus.CONFIRMED and e.title.endswith("(new)") for e in events)


def test_incremental_sync_after_a_deleted_series_returns_every_occurrence_cancelled(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    conn = google_connector_for(MAYA)
    cursor = sync(conn, MAYA)[-1].cursor

    google_sandbox.delete_series("maya-sam")

    events = events_of(sync(conn, MAYA, cursor))
    upcoming = next_start(google_sandbox, "maya-sam")
    assert len(events) > 10
    assert all(e.status is EventStatus.CANCELLED for e in events)
    assert upcoming in {e.original_start for e in events}


def test_incremental_sync_after_the_series_ends_cancels_only_later_occurrences(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    conn = google_connector_for(MAYA)
    cursor = sync(conn, MAYA)[-1].cursor
    until = next_start(google_sandbox, "maya-sam")

    google_sandbox.end_series("maya-sam", until)

    events = events_of(sync(conn, MAYA, cursor))
    cancelled = {e.original_start for e in events if e.status is EventStatus.CANCELLED}
    kept = {e.original_start for e in events if e.status is EventStatus.CONFIRMED}
    assert cancelled and all(s > until for s in cancelled if s)
    assert until in kept


def test_sync_starts_over_when_the_cursor_expired(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    conn = google_connector_for(MAYA)
    cursor = sync(conn, MAYA)[-1].cursor
    google_sandbox.expire_cursors()

    with pytest.raises(CursorExpired):
        sync(conn, MAYA, cursor)
    pages = sync(conn, MAYA)

    assert pages[-1].full_sync and pages[-1].cursor and events_of(pages)
    assert events_of(sync(conn, MAYA, pages[-1].cursor)) == []


def test_unchanged_calendar_costs_exactly_one_list_request(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    conn = google_connector_for(MAYA)
    cursor = sync(conn, MAYA)[-1].cursor
    google_sandbox.clear_requests()

    pages = sync(conn, MAYA, cursor)

    requests = google_sandbox.requests()
    assert len(requests) == 1
    assert requests[0].method == "GET" and requests[0].path.endswith(f"/calendars/{MAYA}/events")
    assert events_of(pages) == [] and pages[-1].cursor


def test_list_calendars_returns_the_primary_calendar(google_connector_for: Factory) -> None:
    (calendar,) = google_connector_for(SAM).list_calendars()

    assert calendar.id == SAM and calendar.is_primary and calendar.owner_email == SAM
    assert calendar.time_zone == "America/New_York"
