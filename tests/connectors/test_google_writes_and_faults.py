"""Writes, push channels, free/busy and failure handling of the Google connector."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.base import (
    AuthRevoked,
    Forbidden,
    PreconditionFailed,
    ProviderCall,
    RateLimited,
)
from connectors.google import GoogleConnector
from sandbox.google import GoogleSandbox
from sandbox.google.recurrence import instance_id

MAYA = "maya@acme.test"
SAM = "sam@acme.test"
Factory = Callable[..., GoogleConnector]


def upcoming(sandbox: GoogleSandbox, key: str) -> datetime:
    now = datetime.now(UTC)
    return next(
        s for s in sandbox.occurrence_starts(key, until=now + timedelta(days=60)) if s > now
    )


def full_sync(conn: GoogleConnector, calendar: str) -> Any:
    now = datetime.now(UTC)
    return list(
        conn.list_changes(
            calendar,
            None,
            window_start=now - timedelta(days=7),
            window_end=now + timedelta(days=30),
        )
    )


def test_patch_with_a_stale_etag_fails_and_keeps_the_human_text(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    conn = google_connector_for(MAYA)
    original = upcoming(google_sandbox, "maya-sam")
    occurrence_id = instance_id(google_sandbox.event_id("maya-sam"), original)
    stale = conn.get_event(MAYA, occurrence_id)
    google_sandbox.human_edit_description(MAYA, "maya-sam", original, "Talk about\nthe offsite")

    with pytest.raises(PreconditionFailed):
        conn.patch_description(
            MAYA, occurrence_id, description="agenda", is_html=False, etag=stale.etag
        )

    assert google_sandbox.description_of(MAYA, "maya-sam", original) == "Talk about<br>the offsite"


def test_patch_with_the_current_etag_writes_without_notifying_attendees(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    conn = google_connector_for(MAYA)
    original = upcoming(google_sandbox, "maya-sam")
    occurrence_id = instance_id(google_sandbox.event_id("maya-sam"), original)
    fresh = conn.get_event(MAYA, occurrence_id)
    assert fresh.description_is_html is False

    written = conn.patch_description(
        MAYA, occurrence_id, description="Agenda: growth", is_html=False, etag=fresh.etag
    )

    assert written.description == "Agenda: growth" and written.etag != fresh.etag
    assert google_sandbox.description_of(SAM, "maya-sam", original) == "Agenda: growth"
    (patch,) = [r for r in google_sandbox.requests() if r.method == "PATCH"]
    assert patch.query.get("sendUpdates") == "none"
    later = upcoming(google_sandbox, "maya-sam") + timedelta(weeks=1)
    assert google_sandbox.description_of(MAYA, "maya-sam", later).startswith("Standing 1:1")


def test_an_attendee_may_not_patch_the_organizers_event(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    conn = google_connector_for(SAM)
    occurrence_id = instance_id(
        google_sandbox.event_id("maya-sam"), upcoming(google_sandbox, "maya-sam")
    )

    with pytest.raises(Forbidden):
        conn.patch_description(SAM, occurrence_id, description="x", is_html=False, etag=None)


def test_throttled_requests_are_retried_after_the_retry_after_delay(
    google_sandbox: GoogleSandbox, google_connector_for: Factory, google_sleep: Any
) -> None:
    google_sandbox.inject_throttle(2, retry_after=3)

    pages = full_sync(google_connector_for(MAYA, max_sleep=6.0), MAYA)  # 3 s + 3 s allowed

    assert pages[-1].cursor
    assert google_sleep.calls == [3.0, 3.0]
    assert [r.status for r in google_sandbox.requests() if r.path.endswith("/events")][:3] == [
        429,
        429,
        200,
    ]


def test_throttling_that_outlasts_the_attempts_raises_rate_limited(
    google_sandbox: GoogleSandbox, google_connector_for: Factory, google_sleep: Any
) -> None:
    google_sandbox.inject_throttle(10, retry_after=1)

    with pytest.raises(RateLimited) as caught:
        full_sync(google_connector_for(MAYA, max_attempts=3), MAYA)

    assert caught.value.retry_after == 1.0
    assert google_sleep.calls == [1.0, 1.0]
    assert len([r for r in google_sandbox.requests() if r.status == 429]) == 3


def test_a_long_retry_after_is_left_to_the_worker_instead_of_slept(
    google_sandbox: GoogleSandbox, google_connector_for: Factory, google_sleep: Any
) -> None:
    google_sandbox.inject_throttle(1, retry_after=120)

    with pytest.raises(RateLimited) as caught:
        full_sync(google_connector_for(MAYA), MAYA)

    assert caught.value.retry_after == 120.0 and google_sleep.calls == []


def test_broken_items_are_skipped_with_their_ids_while_the_rest_syncs(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    broken = {
        google_sandbox.add_malformed_event(MAYA, kind)
        for kind in ("malformed", "bad_timezone", "huge_description")
    }

    pages = full_sync(google_connector_for(MAYA), MAYA)

    skipped = {s.event_id: s.reason for p in pages for s in p.skipped}
    assert set(skipped) == broken
    assert any("time zone" in reason for reason in skipped.values())
    events = [e for p in pages for e in p.events]
    assert any(e.series_id == google_sandbox.event_id("maya-sam") for e in events)
    assert pages[-1].cursor


def test_a_revoked_grant_raises_auth_revoked(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    already_authorized = google_connector_for(MAYA)
    full_sync(already_authorized, MAYA)
    google_sandbox.revoke(MAYA)

    with pytest.raises(AuthRevoked):
        full_sync(already_authorized, MAYA)
    with pytest.raises(AuthRevoked):
        google_connector_for(MAYA).list_calendars()


def test_every_call_is_reported_to_the_observer(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    calls: list[ProviderCall] = []
    google_sandbox.inject_throttle(1, retry_after=0)

    google_connector_for(MAYA, observer=calls.append).list_calendars()

    assert [(c.provider, c.operation, c.status) for c in calls] == [
        ("google", "calendarList.list", 429),
        ("google", "calendarList.list", 200),
    ]
    assert all(c.duration_ms >= 0 for c in calls)


def test_free_busy_reports_occurrences_leaves_out_declined_ones_and_names_the_unreadable(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    original = upcoming(google_sandbox, "maya-sam")
    google_sandbox.decline_occurrence("maya-sam", original + timedelta(weeks=1), SAM)
    span = (original - timedelta(minutes=1), original + timedelta(weeks=1, minutes=40))

    answer = google_connector_for(MAYA).free_busy([SAM, "nobody@elsewhere.test"], *span)

    assert set(answer.busy) == {SAM}
    assert answer.unreadable == {"nobody@elsewhere.test"}
    starts = {b.start for b in answer.busy[SAM]}
    assert original in starts and original + timedelta(weeks=1) not in starts


def test_subscribe_registers_a_channel_that_notifies_and_unsubscribe_stops_it(
    google_sandbox: GoogleSandbox, google_connector_for: Factory
) -> None:
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from threading import Thread

    received: list[dict[str, str]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            received.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    Thread(target=server.serve_forever, daemon=True).start()
    address = f"http://127.0.0.1:{server.server_address[1]}/hook"
    conn = google_connector_for(MAYA)
    try:
        sub = conn.subscribe(MAYA, address=address, token="s3cret", ttl_seconds=3600)
        assert google_sandbox.notify(MAYA) == [200]
        conn.unsubscribe(sub)
        assert google_sandbox.notify(MAYA) == []
    finally:
        server.shutdown()

    assert sub.resource_id and sub.expires_at > datetime.now(UTC) + timedelta(minutes=50)
    (headers,) = received
    assert headers["x-goog-channel-id"] == sub.id
    assert headers["x-goog-channel-token"] == "s3cret"
    assert headers["x-goog-resource-id"] == sub.resource_id
    assert (headers["x-goog-resource-state"], headers["x-goog-message-number"]) == ("exists", "1")
