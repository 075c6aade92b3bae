"""What only Graph does, over real HTTPS (MSAL + httpx) to the Graph sandbox.

The shared contract runs in test_contract.py; here are the shapes Graph documents for its
own payloads: calendarView delta bounded by the window of its first request, ``@removed``
tombstones with only an id, attendee copies with ids of their own, HTML bodies and weak
etags, ``syncStateNotFound`` and ``ErrorIrresolvableConflict`` errors, the mailbox's time
zone read with the calendars, and ``clientState`` in notifications.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from connector_cases import Webhook, sync_window

from connectors.base import CalendarEvent, ChangePage, EventStatus
from connectors.errors import CursorExpired, PreconditionFailed, RateLimited
from sandbox.team import DOMAIN

DANA, LEE = f"dana@{DOMAIN}", f"lee@{DOMAIN}"


def full_sync(connector, window=None) -> list[ChangePage]:  # noqa: ANN001
    start, end = window or sync_window()
    return list(connector.list_changes("primary", None, window_start=start, window_end=end))


def incremental(connector, cursor: str) -> list[ChangePage]:  # noqa: ANN001
    start, end = sync_window()
    return list(connector.list_changes("primary", cursor, window_start=start, window_end=end))


def events(pages: list[ChangePage]) -> list[CalendarEvent]:
    return [e for p in pages for e in p.events]


def next_occurrence(sandbox) -> datetime:  # noqa: ANN001
    now = datetime.now(UTC)
    return next(
        s for s in sandbox.occurrence_starts("dana-lee", until=now + timedelta(days=60)) if s > now
    )


def test_full_sync_lists_exactly_the_window_with_html_bodies_and_weak_etags(
    graph_sandbox, graph_connector_for
):
    pages = full_sync(graph_connector_for(DANA))
    mine = [e for e in events(pages) if e.ical_uid == "dana-lee@rapport-sandbox"]
    start, end = sync_window()
    expected = [
        s
        for s in graph_sandbox.occurrence_starts("dana-lee", until=end)
        if s + timedelta(minutes=30) > start
    ]
    assert sorted(e.original_start for e in mine) == expected
    first = mine[0]
    assert first.description_is_html and "Bring your questions!" in first.description
    assert first.etag and first.etag.startswith('W/"')


def test_attendee_copies_have_ids_of_their_own(graph_connector_for):
    dana, lee = (
        {e.id for e in events(full_sync(graph_connector_for(who)))
         if e.ical_uid == "dana-lee@rapport-sandbox"}
        for who in (DANA, LEE)
    )
    assert dana and lee and not dana & lee


def test_a_cancelled_occurrence_is_removed_for_the_organizer_and_cancelled_for_the_attendee(
    graph_sandbox, graph_connector_for
):
    dana, lee = graph_connector_for(DANA), graph_connector_for(LEE)
    dana_cursor, lee_cursor = full_sync(dana)[-1].cursor, full_sync(lee)[-1].cursor
    graph_sandbox.cancel_occurrence("dana-lee", next_occurrence(graph_sandbox))

    [organizer_side] = events(incremental(dana, dana_cursor))
    assert organizer_side.start is None  # a tombstone (@removed): only the id
    [attendee_side] = events(incremental(lee, lee_cursor))
    assert attendee_side.status is EventStatus.CANCELLED  # isCancelled, still readable
    assert attendee_side.ical_uid == "dana-lee@rapport-sandbox"


def test_an_ended_series_lists_only_the_removed_occurrences(graph_sandbox, graph_connector_for):
    dana = graph_connector_for(DANA)
    cursor = full_sync(dana)[-1].cursor
    graph_sandbox.end_series("dana-lee", next_occurrence(graph_sandbox))
    gone = events(incremental(dana, cursor))
    assert gone and all(e.status is EventStatus.CANCELLED for e in gone)


def test_a_deleted_series_lists_exactly_the_occurrences_of_the_window(
    graph_sandbox, graph_connector_for
):
    dana = graph_connector_for(DANA)
    pages = full_sync(dana)
    before = {e.id for e in events(pages) if e.ical_uid == "dana-lee@rapport-sandbox"}
    graph_sandbox.delete_series("dana-lee")
    after = events(incremental(dana, pages[-1].cursor))
    assert {e.id for e in after} == before


def test_an_expired_delta_link_names_sync_state_not_found_and_keeps_the_cause(
    graph_sandbox, graph_connector_for
):
    dana = graph_connector_for(DANA)
    first = full_sync(dana)
    graph_sandbox.expire_cursors()
    with pytest.raises(CursorExpired) as caught:
        incremental(dana, first[-1].cursor)
    assert "syncStateNotFound" in str(caught.value) and caught.value.__cause__ is not None


def test_incremental_round_keeps_the_window_of_its_first_request(
    graph_sandbox, graph_connector_for
):
    dana = graph_connector_for(DANA)
    now = datetime.now(UTC)
    cursor = full_sync(dana, (now, now + timedelta(days=14)))[-1].cursor
    graph_sandbox.create_series(
        organizer=DANA,
        attendees=[LEE],
        title="Far away",
        rrule=None,
        first_start=now + timedelta(days=40),
    )
    assert events(incremental(dana, cursor)) == []


def test_small_pages_follow_next_links(graph_connector_for):
    pages = full_sync(graph_connector_for(DANA, page_size=5))
    assert len(pages) > 3


def test_a_patch_is_written_as_an_html_body(graph_sandbox, graph_connector_for):
    dana = graph_connector_for(DANA)
    when = next_occurrence(graph_sandbox)
    event = dana.get_event("primary", graph_sandbox.event_id(DANA, "dana-lee", when))
    updated = dana.patch_description(
        "primary", event.id, description="Agenda <b>\n1. Growth", is_html=False, etag=event.etag
    )
    stored = graph_sandbox.description_of(DANA, "dana-lee", when)
    assert "Agenda &lt;b&gt;<br>" in stored and "1. Growth" in stored
    assert updated.description_is_html


def test_a_conflict_names_error_irresolvable_conflict_and_keeps_outlooks_html(
    graph_sandbox, graph_connector_for
):
    dana = graph_connector_for(DANA)
    when = next_occurrence(graph_sandbox)
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


def test_listing_calendars_reads_the_mailbox_time_zone_after_a_throttled_retry(
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


def test_persistent_throttling_names_too_many_requests(graph_sandbox, graph_connector_for):
    dana = graph_connector_for(DANA, attempts=3)
    graph_sandbox.inject_throttle(10, retry_after=2)
    with pytest.raises(RateLimited) as caught:
        dana.list_calendars()
    assert "TooManyRequests" in str(caught.value)


def test_free_busy_cannot_see_a_colleague_hosted_at_google(graph_sandbox, graph_connector_for):
    when = next_occurrence(graph_sandbox)
    answer = graph_connector_for(DANA).free_busy(
        [LEE, f"Maya@{DOMAIN}"], when - timedelta(hours=1), when + timedelta(hours=2)
    )
    assert list(answer.busy) == [LEE]
    assert answer.unreadable == {f"maya@{DOMAIN}"}


def test_notifications_carry_our_token_as_client_state(
    graph_sandbox, graph_connector_for, webhook: Webhook
):
    dana = graph_connector_for(DANA)
    sub = dana.subscribe("primary", address=webhook.address, token="s3cret-state",
                         ttl_seconds=3600)
    assert graph_sandbox.notify(DANA) == 1
    dana.unsubscribe(sub)
    [(_, body)] = webhook.received
    assert json.loads(body)["value"][0]["clientState"] == "s3cret-state"
