"""Graph writes, throttling, free/busy and subscriptions against the Graph sandbox."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from connectors.errors import PreconditionFailed, RateLimited
from sandbox.team import DOMAIN

DANA, LEE = f"dana@{DOMAIN}", f"lee@{DOMAIN}"


def upcoming(sandbox) -> datetime:  # noqa: ANN001
    now = datetime.now(UTC)
    return next(
        s for s in sandbox.occurrence_starts("dana-lee", until=now + timedelta(days=60)) if s > now
    )


def test_patch_with_current_etag_writes_an_html_body_and_bumps_the_etag(
    graph_sandbox, graph_connector_for
):
    dana = graph_connector_for(DANA)
    when = upcoming(graph_sandbox)
    event = dana.get_event("primary", graph_sandbox.event_id(DANA, "dana-lee", when))
    updated = dana.patch_description(
        "primary", event.id, description="Agenda <b>\n1. Growth", is_html=False, etag=event.etag
    )
    stored = graph_sandbox.description_of(DANA, "dana-lee", when)
    assert "Agenda &lt;b&gt;<br>" in stored and "1. Growth" in stored
    assert updated.description == stored and updated.description_is_html
    assert updated.etag != event.etag and updated.ical_uid == "dana-lee@rapport-sandbox"


def test_patch_with_stale_etag_raises_precondition_failed_and_keeps_the_human_text(
    graph_sandbox, graph_connector_for
):
    dana = graph_connector_for(DANA)
    when = upcoming(graph_sandbox)
    event = dana.get_event("primary", graph_sandbox.event_id(DANA, "dana-lee", when))
    graph_sandbox.human_edit_description(
        DANA, "dana-lee", when, "Lee: let's talk about the offsite"
    )
    with pytest.raises(PreconditionFailed) as caught:
        dana.patch_description(
            "primary", event.id, description="<p>ours</p>", is_html=True, etag=event.etag
        )
    assert "ErrorIrresolvableConflict" in str(caught.value)
    kept = graph_sandbox.description_of(DANA, "dana-lee", when)
    assert "let&#x27;s talk about the offsite" in kept and kept.startswith("<html>")


def test_throttled_request_is_retried_after_the_retry_after_seconds(
    graph_sandbox, graph_connector_for, graph_sleeps
):
    dana = graph_connector_for(DANA, budget=15.0)  # two 7 s waits: more than the default cap
    dana.list_calendars()  # warm up: tokens fetched
    graph_sandbox.clear_requests()
    graph_sandbox.inject_throttle(2, retry_after=7)
    [calendar] = dana.list_calendars()
    assert calendar.is_primary and graph_sleeps.waits == [7.0, 7.0]
    # calendars (twice throttled, then answered), then the mailbox's time zone
    assert [r.status for r in graph_sandbox.requests()] == [429, 429, 200, 200]


def test_persistent_throttling_raises_rate_limited_with_retry_after(
    graph_sandbox, graph_connector_for, graph_sleeps
):
    dana = graph_connector_for(DANA, attempts=3)
    graph_sandbox.clear_requests()
    graph_sandbox.inject_throttle(10, retry_after=2)
    with pytest.raises(RateLimited) as caught:
        dana.list_calendars()
    assert caught.value.retry_after == 2.0 and "TooManyRequests" in str(caught.value)
    assert graph_sleeps.waits == [2.0, 2.0]
    assert [r.status for r in graph_sandbox.requests()] == [429, 429, 429]


def test_free_busy_reports_busy_intervals_and_names_people_graph_cannot_see(
    graph_sandbox, graph_connector_for
):
    when = upcoming(graph_sandbox)
    answer = graph_connector_for(DANA).free_busy(
        [LEE, f"Maya@{DOMAIN}"], when - timedelta(hours=1), when + timedelta(hours=2)
    )
    assert list(answer.busy) == [LEE]
    assert answer.unreadable == {f"maya@{DOMAIN}"}
    assert any(
        b.start == when and b.end == when + timedelta(minutes=30) for b in answer.busy[LEE]
    )


class _Receiver(BaseHTTPRequestHandler):
    notifications: list[dict[str, object]] = []

    def do_POST(self) -> None:  # noqa: N802
        token = parse_qs(urlparse(self.path).query).get("validationToken")
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        reply = token[0].encode() if token else b""
        if not token:
            self.notifications.append(json.loads(body))
        self.send_response(200 if token else 202)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


def test_subscription_passes_validation_and_notifications_carry_client_state(
    graph_sandbox, graph_connector_for
):
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.notifications = []
    try:
        dana = graph_connector_for(DANA)
        address = f"http://127.0.0.1:{server.server_port}/hooks/graph"
        sub = dana.subscribe("primary", address=address, token="s3cret-state", ttl_seconds=3600)
        assert sub.expires_at > datetime.now(UTC) + timedelta(minutes=50)
        assert graph_sandbox.notify(DANA) == 1
        [note] = _Receiver.notifications
        assert note["value"][0]["clientState"] == "s3cret-state"  # type: ignore[index]
        dana.unsubscribe(sub)
        assert graph_sandbox.notify(DANA) == 0
    finally:
        server.shutdown()
