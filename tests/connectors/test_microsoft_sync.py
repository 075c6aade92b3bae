"""Graph calendarView delta sync: real connector over HTTPS against the Graph sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from conftest_microsoft import sync_window

from connectors.base import CalendarEvent, ChangePage, EventStatus, Response
from connectors.errors import CursorExpired
from sandbox.team import DOMAIN

DANA, LEE, PRIYA = f"dana@{DOMAIN}", f"lee@{DOMAIN}", f"priya@{DOMAIN}"


def full_sync(connector, window=None) -> list[ChangePage]:  # noqa: ANN001
    start, end = window or sync_window()
    return list(connector.list_changes("primary", None, window_start=start, window_end=end))


def incremental(connector, cursor: str) -> list[ChangePage]:  # noqa: ANN001
    start, end = sync_window()
    return list(connector.list_changes("primary", cursor, window_start=start, window_end=end))


def events(pages: list[ChangePage]) -> list[CalendarEvent]:
    return [e for p in pages for e in p.events]


def next_occurrence(sandbox, key: str) -> datetime:  # noqa: ANN001
    now = datetime.now(UTC)
    return next(
        s for s in sandbox.occurrence_starts(key, until=now + timedelta(days=60)) if s > now
    )


def test_full_sync_returns_seeded_occurrences_with_series_ids_and_series_uid(
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
    assert len({e.series_id for e in mine}) == 1 and mine[0].series_id is not None
    assert all(e.start == e.original_start and e.start.tzinfo is not None for e in mine)
    first = mine[0]
    assert first.organizer == DANA and first.title == "Dana/Lee 1:1"
    assert {(a.email, a.is_organizer, a.is_self) for a in first.attendees} == {
        (DANA, True, True),
        (LEE, False, False),
    }
    assert first.description_is_html and "Bring your questions!" in first.description
    assert first.time_zone == "Europe/London" and first.etag and first.etag.startswith('W/"')
    assert pages[-1].cursor and pages[-1].full_sync


def test_attendee_copies_have_their_own_ids_but_share_the_series_uid(graph_connector_for):
    dana = [
        e
        for e in events(full_sync(graph_connector_for(DANA)))
        if e.ical_uid == "dana-lee@rapport-sandbox"
    ]
    lee = [
        e
        for e in events(full_sync(graph_connector_for(LEE)))
        if e.ical_uid == "dana-lee@rapport-sandbox"
    ]
    assert [e.original_start for e in dana] == [e.original_start for e in lee]
    assert not {e.id for e in dana} & {e.id for e in lee}
    assert all(any(a.email == LEE and a.is_self for a in e.attendees) for e in lee)


def test_cross_provider_series_arrives_as_invitation_from_external_organizer(graph_connector_for):
    mine = [
        e
        for e in events(full_sync(graph_connector_for(PRIYA)))
        if e.ical_uid == "maya-priya@rapport-sandbox"
    ]
    assert mine, "the Google-organized 1:1 must be in Priya's calendar"
    assert {e.organizer for e in mine} == {f"maya@{DOMAIN}"}
    local = [e.original_start.astimezone(ZoneInfo("America/New_York")) for e in mine]
    assert {
        (b.replace(tzinfo=None) - a.replace(tzinfo=None))
        for a, b in zip(local, local[1:], strict=False)
    } == {timedelta(weeks=2)}
    assert {t.time() for t in local} == {time(8, 30)}  # wall-clock time kept across DST


def test_room_attendee_is_marked_as_resource_and_all_day_event_is_floating(graph_connector_for):
    evs = events(full_sync(graph_connector_for(DANA)))
    review = next(e for e in evs if e.ical_uid == "design-review@rapport-sandbox")
    rooms = [a.email for a in review.attendees if a.is_resource]
    assert rooms == [f"thames@resource.{DOMAIN}"]


def test_full_sync_pages_by_next_link_and_gives_cursor_only_on_last_page(
    graph_sandbox, graph_connector_for
):
    connector = graph_connector_for(DANA, page_size=5)
    graph_sandbox.clear_requests()
    pages = full_sync(connector)
    assert len(pages) > 3
    assert [p.cursor is not None for p in pages] == [False] * (len(pages) - 1) + [True]
    delta_calls = [r for r in graph_sandbox.requests() if r.path.endswith("/calendarView/delta")]
    assert len(delta_calls) == len(pages)
    ids = [e.id for e in events(pages)]
    assert len(ids) == len(set(ids))


def test_unchanged_delta_round_costs_exactly_one_request(graph_sandbox, graph_connector_for):
    connector = graph_connector_for(DANA)
    cursor = full_sync(connector)[-1].cursor
    graph_sandbox.clear_requests()
    pages = incremental(connector, cursor)
    assert [p.events for p in pages] == [[]] and pages[0].cursor and not pages[0].full_sync
    assert len(graph_sandbox.requests()) == 1


def test_cancelled_occurrence_is_removed_for_organizer_and_cancelled_for_attendee(
    graph_sandbox, graph_connector_for
):
    dana, lee = graph_connector_for(DANA), graph_connector_for(LEE)
    dana_cursor, lee_cursor = full_sync(dana)[-1].cursor, full_sync(lee)[-1].cursor
    when = next_occurrence(graph_sandbox, "dana-lee")
    dana_id = graph_sandbox.event_id(DANA, "dana-lee", when)
    graph_sandbox.cancel_occurrence("dana-lee", when)

    [organizer_side] = events(incremental(dana, dana_cursor))
    assert organizer_side.id == dana_id and organizer_side.status is EventStatus.CANCELLED
    assert organizer_side.start is None  # a tombstone: only the id
    [attendee_side] = events(incremental(lee, lee_cursor))
    assert attendee_side.status is EventStatus.CANCELLED and attendee_side.original_start == when
    assert attendee_side.ical_uid == "dana-lee@rapport-sandbox"


def test_moved_occurrence_arrives_with_new_start_and_its_original_start(
    graph_sandbox, graph_connector_for
):
    dana = graph_connector_for(DANA)
    cursor = full_sync(dana)[-1].cursor
    when = next_occurrence(graph_sandbox, "dana-lee")
    graph_sandbox.move_occurrence("dana-lee", when, when + timedelta(hours=26))
    [moved] = events(incremental(dana, cursor))
    assert moved.original_start == when and moved.start == when + timedelta(hours=26)
    assert moved.status is EventStatus.CONFIRMED and moved.series_id


def test_declined_occurrence_shows_the_attendee_response(graph_sandbox, graph_connector_for):
    dana = graph_connector_for(DANA)
    cursor = full_sync(dana)[-1].cursor
    when = next_occurrence(graph_sandbox, "dana-lee")
    graph_sandbox.decline_occurrence("dana-lee", when, LEE)
    [changed] = events(incremental(dana, cursor))
    assert {a.email: a.response for a in changed.attendees}[LEE] is Response.DECLINED


def test_new_series_appears_in_the_next_round(graph_sandbox, graph_connector_for):
    lee = graph_connector_for(LEE)
    cursor = full_sync(lee)[-1].cursor
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    key = graph_sandbox.create_series(
        organizer=DANA,
        attendees=[LEE],
        title="Dana / Lee (new)",
        first_start=first,
        time_zone="Europe/London",
    )
    new = events(incremental(lee, cursor))
    assert new and {e.ical_uid for e in new} == {f"{key}@rapport-sandbox"}
    assert min(e.original_start for e in new) == first


def test_deleted_series_removes_every_occurrence_for_the_organizer(
    graph_sandbox, graph_connector_for
):
    dana = graph_connector_for(DANA)
    pages = full_sync(dana)
    before = {e.id for e in events(pages) if e.ical_uid == "dana-lee@rapport-sandbox"}
    graph_sandbox.delete_series("dana-lee")
    after = events(incremental(dana, pages[-1].cursor))
    assert {e.id for e in after} == before
    assert all(e.status is EventStatus.CANCELLED for e in after)


def test_ended_series_drops_later_occurrences(graph_sandbox, graph_connector_for):
    dana = graph_connector_for(DANA)
    cursor = full_sync(dana)[-1].cursor
    when = next_occurrence(graph_sandbox, "dana-lee")
    graph_sandbox.end_series("dana-lee", when)
    gone = events(incremental(dana, cursor))
    assert gone and all(e.status is EventStatus.CANCELLED for e in gone)
    assert graph_sandbox.occurrence_starts("dana-lee", until=when + timedelta(days=60))[-1] == when


def test_expired_delta_link_raises_cursor_expired_and_a_full_resync_works(
    graph_sandbox, graph_connector_for
):
    dana = graph_connector_for(DANA)
    first = full_sync(dana)
    graph_sandbox.expire_cursors()
    with pytest.raises(CursorExpired) as caught:
        incremental(dana, first[-1].cursor)
    assert "syncStateNotFound" in str(caught.value) and caught.value.__cause__ is not None
    again = full_sync(dana)
    assert {e.id for e in events(again)} == {e.id for e in events(first)} and again[-1].cursor


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


@pytest.mark.parametrize("kind", ["malformed", "bad_timezone", "huge_description"])
def test_broken_item_is_skipped_while_the_rest_still_syncs(
    graph_sandbox, graph_connector_for, kind
):
    broken = graph_sandbox.add_malformed_event(DANA, kind)
    pages = full_sync(graph_connector_for(DANA))
    skipped = [s for p in pages for s in p.skipped]
    assert [s.event_id for s in skipped] == [broken] and skipped[0].reason
    assert broken not in {e.id for e in events(pages)}
    assert any(e.ical_uid == "dana-lee@rapport-sandbox" for e in events(pages))
