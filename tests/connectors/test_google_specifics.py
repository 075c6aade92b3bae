"""What only Google does, over real HTTP (google-api-python-client) to the Google sandbox.

The shared contract runs in test_contract.py; here are the shapes Google documents for its
own payloads: instance tombstones that keep their series id and original start, instances
re-listed when a series is cut short (no ``timeMax``, so the sync token stays valid),
descriptions shared by every copy and written without ``sendUpdates``, attendees that may
not edit the organizer's event, push channel headers, and Retry-After left to the worker.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from connector_cases import RecordingSleep, Webhook, sync_window

from connectors.base import CalendarEvent, ChangePage, EventStatus, ProviderCall
from connectors.errors import Forbidden, PreconditionFailed, RateLimited
from connectors.google import GoogleConnector
from sandbox.google import GoogleSandbox
from sandbox.google.recurrence import instance_id

MAYA = "maya@acme.test"
SAM = "sam@acme.test"
Factory = Callable[..., GoogleConnector]


def sync(conn: GoogleConnector, calendar: str, cursor: str | None = None) -> list[ChangePage]:
    start, end = sync_window()
    return list(conn.list_changes(calendar, cursor, window_start=start, window_end=end))


def events_of(pages: list[ChangePage]) -> list[CalendarEvent]:
    return [e for p in pages for e in p.events]


def next_start(sandbox: GoogleSandbox, key: str) -> datetime:
    now = datetime.now(UTC)
    return next(
        s for s in sandbox.occurrence_starts(key, until=now + timedelta(days=60)) if s > now
    )


def test_the_calendar_id_is_the_owners_email(google_connector_for: Factory) -> None:
    (calendar,) = google_connector_for(SAM).list_calendars()

    assert calendar.id == SAM


def test_instance_tombstones_keep_their_series_id_and_original_start(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    maya, sam = google_connector_for(MAYA), google_connector_for(SAM)
    cursors = {MAYA: sync(maya, MAYA)[-1].cursor, SAM: sync(sam, SAM)[-1].cursor}
    original = next_start(google_sandbox, "maya-sam")
    google_sandbox.cancel_occurrence("maya-sam", original)

    for conn, calendar in ((maya, MAYA), (sam, SAM)):
        pages = sync(conn, calendar, cursors[calendar])
        (event,) = events_of(pages)
        assert event.series_id == google_sandbox.event_id("maya-sam")
        assert event.original_start == original
        cursors[calendar] = pages[-1].cursor

    upcoming = next_start(google_sandbox, "maya-sam")
    google_sandbox.delete_series("maya-sam")
    deleted = events_of(sync(maya, MAYA, cursors[MAYA]))
    assert upcoming in {e.original_start for e in deleted}


def test_a_series_cut_short_relists_the_occurrences_it_keeps(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    conn = google_connector_for(MAYA)
    cursor = sync(conn, MAYA)[-1].cursor
    until = next_start(google_sandbox, "maya-sam")

    google_sandbox.end_series("maya-sam", until)

    events = events_of(sync(conn, MAYA, cursor))
    kept = {e.original_start for e in events if e.status is EventStatus.CONFIRMED}
    assert until in kept


def test_a_patch_is_plain_text_shared_by_every_copy_and_sent_without_notifying(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    conn = google_connector_for(MAYA)
    original = next_start(google_sandbox, "maya-sam")
    occurrence_id = instance_id(google_sandbox.event_id("maya-sam"), original)
    fresh = conn.get_event(MAYA, occurrence_id)
    assert fresh.description_is_html is False

    written = conn.patch_description(
        MAYA, occurrence_id, description="Agenda: growth", is_html=False, etag=fresh.etag
    )

    assert written.description == "Agenda: growth"
    assert google_sandbox.description_of(SAM, "maya-sam", original) == "Agenda: growth"
    (patch,) = [r for r in google_sandbox.requests() if r.method == "PATCH"]
    assert patch.query.get("sendUpdates") == "none"
    later = original + timedelta(weeks=1)
    assert google_sandbox.description_of(MAYA, "maya-sam", later).startswith("Standing 1:1")


def test_a_human_edit_is_stored_as_simple_html(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    conn = google_connector_for(MAYA)
    original = next_start(google_sandbox, "maya-sam")
    occurrence_id = instance_id(google_sandbox.event_id("maya-sam"), original)
    stale = conn.get_event(MAYA, occurrence_id)
    google_sandbox.human_edit_description(MAYA, "maya-sam", original, "Talk about\nthe offsite")

    with pytest.raises(PreconditionFailed):
        conn.patch_description(
            MAYA, occurrence_id, description="agenda", is_html=False, etag=stale.etag
        )

    assert google_sandbox.description_of(MAYA, "maya-sam", original) == "Talk about<br>the offsite"


def test_an_attendee_may_not_patch_the_organizers_event(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    conn = google_connector_for(SAM)
    occurrence_id = instance_id(
        google_sandbox.event_id("maya-sam"), next_start(google_sandbox, "maya-sam")
    )

    with pytest.raises(Forbidden):
        conn.patch_description(SAM, occurrence_id, description="x", is_html=False, etag=None)


def test_a_long_retry_after_is_left_to_the_worker_instead_of_slept(
    google_sandbox: GoogleSandbox, google_connector_for: Factory, google_sleep: RecordingSleep
) -> None:
    google_sandbox.inject_throttle(1, retry_after=120)

    with pytest.raises(RateLimited) as caught:
        sync(google_connector_for(MAYA), MAYA)

    assert caught.value.retry_after == 120.0 and google_sleep.calls == []


def test_every_call_is_reported_with_its_google_operation(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    calls: list[ProviderCall] = []
    google_sandbox.inject_throttle(1, retry_after=0)

    google_connector_for(MAYA, observer=calls.append).list_calendars()

    assert [(c.provider, c.operation, c.status) for c in calls] == [
        ("google", "calendarList.list", 429),
        ("google", "calendarList.list", 200),
    ]


def test_push_notifications_carry_the_documented_channel_headers(
    google_sandbox: GoogleSandbox, google_connector_for: Factory, webhook: Webhook
) -> None:
    conn = google_connector_for(MAYA)
    sub = conn.subscribe(MAYA, address=webhook.address, token="s3cret", ttl_seconds=3600)
    assert google_sandbox.notify(MAYA) == [202]  # the status our webhook answered
    conn.unsubscribe(sub)

    assert sub.resource_id
    ((headers, _),) = webhook.received
    assert headers["x-goog-channel-id"] == sub.id
    assert headers["x-goog-channel-token"] == "s3cret"
    assert headers["x-goog-resource-id"] == sub.resource_id
    assert (headers["x-goog-resource-state"], headers["x-goog-message-number"]) == ("exists", "1")
