"""What both connectors promise the sync loop about windows and pages (one suite, two providers)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import CalendarConnector, CalendarEvent, ChangePage, starts_before
from connectors.errors import ConnectorError
from connectors.paging import RawPage, change_pages

OWNERS = {"google": "maya@acme.test", "microsoft": "dana@acme.test"}
SERIES = {"google": "maya-sam", "microsoft": "dana-lee"}  # weekly 1:1s the owners organise
SANDBOXES = {"google": "google_sandbox", "microsoft": "graph_sandbox"}


@pytest.fixture(params=sorted(OWNERS))
def connector(request: pytest.FixtureRequest) -> CalendarConnector:
    """A connector over each provider's sandbox, for a seeded person."""
    email = OWNERS[request.param]
    if request.param == "google":
        make: Callable[..., CalendarConnector] = request.getfixturevalue("google_connector_for")
        return make(email)
    make = request.getfixturevalue("graph_connector_for")
    return make(email)


def _calendar(connector: CalendarConnector) -> str:
    return OWNERS["google"] if connector.provider == "google" else "primary"


def test_a_full_round_lists_nothing_that_starts_after_the_window(
        connector: CalendarConnector) -> None:
    now = datetime.now(UTC)
    start, end = now - timedelta(days=7), now + timedelta(days=21)

    pages = list(connector.list_changes(_calendar(connector), None, window_start=start,
                                        window_end=end))
    events = [e for p in pages for e in p.events]

    assert pages[-1].cursor and any(e.is_occurrence for e in events)
    late = [e for e in events if not starts_before(e, end)]
    assert late == []


def test_an_incremental_round_lists_nothing_past_the_window_it_follows(
        connector: CalendarConnector, request: pytest.FixtureRequest) -> None:
    sandbox = request.getfixturevalue(SANDBOXES[connector.provider])
    key = SERIES[connector.provider]
    now = datetime.now(UTC)
    start, end = now - timedelta(days=7), now + timedelta(days=21)
    calendar = _calendar(connector)
    cursor = list(connector.list_changes(calendar, None, window_start=start,
                                         window_end=end))[-1].cursor
    assert cursor
    starts = sandbox.occurrence_starts(key, until=end + timedelta(days=60))
    inside = next(s for s in starts if now < s < end)
    beyond = next(s for s in starts if s > end + timedelta(days=7))
    sandbox.cancel_occurrence(key, inside)
    sandbox.cancel_occurrence(key, beyond)

    pages = list(connector.list_changes(calendar, cursor, window_start=start, window_end=end))
    events = [e for p in pages for e in p.events]

    assert pages[-1].cursor and not pages[-1].full_sync
    assert events  # the cancellation inside (Graph: a tombstone with only its id)
    assert [e for e in events if not starts_before(e, end)] == []


def _event(event_id: str) -> CalendarEvent:
    return CalendarEvent(id=event_id, calendar_id="c")


def test_the_cursor_rides_on_the_last_page_only() -> None:
    answers = {None: RawPage([_event("a")], [], "p2", None),
               "p2": RawPage([_event("b")], [], None, "cursor-2")}

    pages = list(change_pages(answers.__getitem__, provider="test", full_sync=True))

    assert [(p.cursor, [e.id for e in p.events]) for p in pages] == [
        (None, ["a"]), ("cursor-2", ["b"])]
    assert all(p.full_sync for p in pages)


def test_a_last_page_without_a_cursor_is_an_error_not_a_silent_full_sync_forever() -> None:
    seen: list[ChangePage] = []

    with pytest.raises(ConnectorError, match="carries no cursor"):
        seen.extend(change_pages(lambda token: RawPage([_event("a")], [], None, None),
                                 provider="test", full_sync=False))

    assert seen == []


def test_a_tombstone_without_times_belongs_to_every_window() -> None:
    end = datetime(2026, 3, 1, tzinfo=UTC)
    moved_in = CalendarEvent(id="m", calendar_id="c", original_start=end + timedelta(days=1),
                             start=end - timedelta(hours=1))

    assert starts_before(_event("gone"), end)
    assert starts_before(moved_in, end)  # it now takes place inside the window
    assert not starts_before(CalendarEvent(id="x", calendar_id="c", start=end), end)
