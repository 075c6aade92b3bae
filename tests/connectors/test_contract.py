"""The connector contract (connectors/base.py), one suite over every connector.

Each test runs over the real GoogleConnector (google-api-python-client, HTTP to the Google
sandbox), the real GraphConnector (MSAL + httpx, HTTPS to the Graph sandbox) and the
in-memory connector of sandbox/memory.py, which skips only what it says it does not do
(push channels, HTTP retries). What only one provider does, and the shapes of its raw
payloads and errors, is tested in test_google_specifics.py / test_microsoft_specifics.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from connector_cases import ConnectorCase, Webhook, sync_window

from connectors.base import (
    CalendarConnector,
    CalendarEvent,
    ChangePage,
    EventStatus,
    FreeBusy,
    ProviderCall,
    Response,
)
from connectors.errors import (
    AuthRevoked,
    ConnectorError,
    CursorExpired,
    Forbidden,
    MalformedEvent,
    NotFound,
    PreconditionFailed,
    RateLimited,
    Transient,
)
from sandbox.team import SERIES


def full_sync(case: ConnectorCase, connector: CalendarConnector, email: str,
              window: tuple[datetime, datetime] | None = None) -> list[ChangePage]:
    start, end = window or sync_window()
    return list(connector.list_changes(case.calendar_of(email), None, window_start=start,
                                       window_end=end))


def incremental(case: ConnectorCase, connector: CalendarConnector, email: str,
                cursor: str | None) -> list[ChangePage]:
    start, end = sync_window()
    return list(connector.list_changes(case.calendar_of(email), cursor, window_start=start,
                                       window_end=end))


def events(pages: list[ChangePage]) -> list[CalendarEvent]:
    return [e for p in pages for e in p.events]


def uid(key: str) -> str:
    return f"{key}@rapport-sandbox"


def upcoming(case: ConnectorCase, key: str | None = None) -> datetime:
    now = datetime.now(UTC)
    starts = case.admin.occurrence_starts(key or case.series_key, until=now + timedelta(days=60))
    return next(s for s in starts if s > now)


def seeded_description(key: str) -> str:
    """The first line of a seeded series' description (providers may store it as HTML)."""
    return next(s for s in SERIES if s.key == key).description.splitlines()[0]


# -- list calendars -------------------------------------------------------------------------


def test_list_calendars_returns_the_primary_calendar(connector_case: ConnectorCase) -> None:
    case = connector_case
    (calendar,) = case.make(case.report).list_calendars()

    assert calendar.id and calendar.is_primary and calendar.owner_email == case.report
    assert calendar.time_zone == case.zone


# -- list changes: full sync ----------------------------------------------------------------


def test_full_sync_returns_seeded_occurrences_with_series_ids_and_original_starts(
    connector_case: ConnectorCase,
) -> None:
    case = connector_case
    pages = full_sync(case, case.make(case.manager), case.manager)
    mine = [e for e in events(pages) if e.ical_uid == uid(case.series_key)]
    got = {e.original_start: e for e in mine}
    start, end = sync_window()
    expected = [s for s in case.admin.occurrence_starts(case.series_key, until=end) if s >= start]

    assert pages[-1].full_sync and pages[-1].cursor
    assert expected and set(expected) <= set(got)
    assert {e.series_id for e in mine} == {
        case.series_id(case.manager, case.series_key, expected[0])}
    assert all(e.start is not None and e.start == e.original_start and e.start.tzinfo is not None
               for e in mine)
    first = got[expected[0]]
    assert first.start == expected[0] and first.end == expected[0] + timedelta(minutes=30)
    assert first.organizer == case.manager and first.title == case.title
    assert first.time_zone == case.zone and first.etag
    assert {(a.email, a.is_organizer, a.is_self) for a in first.attendees} == {
        (case.manager, True, True),
        (case.report, False, False),
    }
    assert seeded_description(case.series_key) in first.description


def test_attendee_copies_share_the_series_uid_and_original_starts(
    connector_case: ConnectorCase,
) -> None:
    case = connector_case
    key = uid(case.series_key)
    manager = [e for e in events(full_sync(case, case.make(case.manager), case.manager))
               if e.ical_uid == key]
    report = [e for e in events(full_sync(case, case.make(case.report), case.report))
              if e.ical_uid == key]

    assert manager and sorted(e.original_start for e in manager if e.original_start) == sorted(
        e.original_start for e in report if e.original_start)
    assert all(any(a.email == case.report and a.is_self for a in e.attendees) for e in report)


def test_invitation_from_the_other_provider_carries_the_shared_uid_and_wall_clock_time(
    connector_case: ConnectorCase,
) -> None:
    case = connector_case
    attendee, key, organizer, weeks, (hour, minute) = case.invitation
    invites = sorted((e for e in events(full_sync(case, case.make(attendee), attendee))
                      if e.ical_uid == uid(key)),
                     key=lambda e: e.original_start or datetime.min.replace(tzinfo=UTC))

    assert invites, "the invitation must be in the attendee's calendar"
    assert all(e.organizer == organizer and e.is_occurrence for e in invites)
    zone = ZoneInfo(next(s for s in SERIES if s.key == key).time_zone)
    local = [e.original_start.astimezone(zone) for e in invites if e.original_start]
    assert {
        (b.replace(tzinfo=None) - a.replace(tzinfo=None))
        for a, b in zip(local, local[1:], strict=False)
    } == {timedelta(weeks=weeks)}
    assert {t.time() for t in local} == {time(hour, minute)}  # wall-clock time kept across DST


def test_rooms_are_the_only_resources_among_the_attendees(connector_case: ConnectorCase) -> None:
    case = connector_case
    owner, key, room = case.room
    meeting = next(e for e in events(full_sync(case, case.make(owner), owner))
                   if e.ical_uid == uid(key))

    assert [a.email for a in meeting.attendees if a.is_resource] == [room]
    assert len(meeting.attendees) > 1


def test_all_day_events_are_flagged_and_span_whole_days(connector_case: ConnectorCase) -> None:
    case = connector_case
    if case.all_day is None:
        pytest.skip(f"the seeded team has no all-day event at {case.name}")
    owner, key = case.all_day
    offsite = next(e for e in events(full_sync(case, case.make(owner), owner))
                   if e.ical_uid == uid(key))

    assert offsite.all_day and offsite.series_id is None
    assert offsite.end is not None and offsite.start is not None
    assert offsite.end - offsite.start == timedelta(days=1)


def test_full_sync_pages_and_puts_the_cursor_only_on_the_last_page(
    connector_case: ConnectorCase,
) -> None:
    case = connector_case
    connector = case.make(case.manager, page_size=20)
    connector.list_calendars()  # tokens fetched before the requests are counted
    case.admin.clear_requests()
    paged = full_sync(case, connector, case.manager)
    listings = [r for r in case.admin.requests()
                if r.path.endswith(case.listing_path(case.manager))]
    whole = full_sync(case, case.make(case.manager), case.manager)

    assert len(paged) > 2
    assert [p.cursor is not None for p in paged] == [False] * (len(paged) - 1) + [True]
    assert len(listings) == len(paged)
    ids = [e.id for e in events(paged)]
    assert len(ids) == len(set(ids)) == len(events(whole))


@pytest.mark.parametrize("kind", ["malformed", "bad_timezone", "huge_description"])
def test_broken_items_are_skipped_with_their_ids_while_the_rest_syncs(
    connector_case: ConnectorCase, kind: str
) -> None:
    case = connector_case
    broken = case.admin.add_malformed_event(case.manager, kind)

    pages = full_sync(case, case.make(case.manager), case.manager)

    skipped = [s for p in pages for s in p.skipped]
    assert [s.event_id for s in skipped] == [broken] and skipped[0].reason
    if kind == "bad_timezone":
        assert "time zone" in skipped[0].reason
    assert broken not in {e.id for e in events(pages)}
    assert any(e.ical_uid == uid(case.series_key) for e in events(pages))
    assert pages[-1].cursor


# -- list changes: incremental rounds -------------------------------------------------------


def test_an_unchanged_calendar_costs_exactly_one_list_request(
    connector_case: ConnectorCase,
) -> None:
    case = connector_case
    connector = case.make(case.manager)
    cursor = full_sync(case, connector, case.manager)[-1].cursor
    case.admin.clear_requests()

    pages = incremental(case, connector, case.manager, cursor)

    (request,) = case.admin.requests()
    assert request.method == "GET" and request.path.endswith(case.listing_path(case.manager))
    assert [p.events for p in pages] == [[]] and pages[0].cursor and not pages[0].full_sync


def test_a_cancelled_occurrence_arrives_cancelled_for_organizer_and_attendee(
    connector_case: ConnectorCase,
) -> None:
    case = connector_case
    people = {who: case.make(who) for who in (case.manager, case.report)}
    cursors = {who: full_sync(case, c, who)[-1].cursor for who, c in people.items()}
    when = upcoming(case)
    ids = {who: case.event_id(who, case.series_key, when) for who in people}

    case.admin.cancel_occurrence(case.series_key, when)

    for who, connector in people.items():
        pages = incremental(case, connector, who, cursors[who])
        (event,) = events(pages)
        assert event.id == ids[who] and event.status is EventStatus.CANCELLED
        assert not pages[-1].full_sync and pages[-1].cursor
    (attendee_side,) = events(incremental(case, people[case.report], case.report,
                                          cursors[case.report]))
    assert attendee_side.original_start == when


def test_a_moved_occurrence_arrives_with_its_new_start_and_its_original_start(
    connector_case: ConnectorCase,
) -> None:
    case = connector_case
    connector = case.make(case.manager)
    cursor = full_sync(case, connector, case.manager)[-1].cursor
    when = upcoming(case)
    new_start = when + timedelta(days=1, hours=2)

    case.admin.move_occurrence(case.series_key, when, new_start)

    (moved,) = events(incremental(case, connector, case.manager, cursor))
    assert moved.status is EventStatus.CONFIRMED and moved.series_id
    assert (moved.original_start, moved.start) == (when, new_start)
    assert moved.end == new_start + timedelta(minutes=30)


def test_a_declined_occurrence_shows_the_attendee_response(
    connector_case: ConnectorCase,
) -> None:
    case = connector_case
    connector = case.make(case.manager)
    cursor = full_sync(case, connector, case.manager)[-1].cursor
    when = upcoming(case)

    case.admin.decline_occurrence(case.series_key, when, case.report)

    (changed,) = events(incremental(case, connector, case.manager, cursor))
    assert {a.email: a.response for a in changed.attendees}[case.report] is Response.DECLINED


def test_a_new_series_arrives_with_all_its_occurrences(connector_case: ConnectorCase) -> None:
    case = connector_case
    connector = case.make(case.report)
    cursor = full_sync(case, connector, case.report)[-1].cursor
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)

    key = case.admin.create_series(
        organizer=case.manager, attendees=[case.report], title=f"{case.title} (new)",
        first_start=first, time_zone=case.zone,
    )

    new = events(incremental(case, connector, case.report, cursor))
    assert new and {e.ical_uid for e in new} == {uid(key)}
    assert {e.series_id for e in new} == {case.series_id(case.report, key, first)}
    assert min(e.original_start for e in new if e.original_start) == first
    assert all(e.status is EventStatus.CONFIRMED and e.title.endswith("(new)") for e in new)


def test_a_deleted_series_cancels_every_occurrence(connector_case: ConnectorCase) -> None:
    case = connector_case
    connector = case.make(case.manager)
    pages = full_sync(case, connector, case.manager)
    before = {e.id for e in events(pages) if e.ical_uid == uid(case.series_key)}
    next_one = case.event_id(case.manager, case.series_key, upcoming(case))

    case.admin.delete_series(case.series_key)

    after = events(incremental(case, connector, case.manager, pages[-1].cursor))
    assert len(after) > 10 and before <= {e.id for e in after}
    assert next_one in {e.id for e in after}
    assert all(e.status is EventStatus.CANCELLED for e in after)


def test_an_ended_series_cancels_only_the_later_occurrences(
    connector_case: ConnectorCase,
) -> None:
    case = connector_case
    connector = case.make(case.manager)
    cursor = full_sync(case, connector, case.manager)[-1].cursor
    until = upcoming(case)

    case.admin.end_series(case.series_key, until)

    changed = events(incremental(case, connector, case.manager, cursor))
    cancelled = [e for e in changed if e.status is EventStatus.CANCELLED]
    assert cancelled and all(e.original_start > until for e in cancelled if e.original_start)
    assert not [e for e in changed if e.status is EventStatus.CONFIRMED
                and e.original_start and e.original_start > until]
    later = case.admin.occurrence_starts(case.series_key, until=until + timedelta(days=60))
    assert later[-1] == until


def test_an_expired_cursor_raises_cursor_expired_and_a_full_resync_works(
    connector_case: ConnectorCase,
) -> None:
    case = connector_case
    connector = case.make(case.manager)
    first = full_sync(case, connector, case.manager)
    case.admin.expire_cursors()

    with pytest.raises(CursorExpired):
        incremental(case, connector, case.manager, first[-1].cursor)
    again = full_sync(case, connector, case.manager)

    assert again[-1].full_sync and again[-1].cursor and events(again)
    assert {e.id for e in events(again)} == {e.id for e in events(first)}
    assert events(incremental(case, connector, case.manager, again[-1].cursor)) == []


# -- get event, patch description with If-Match ---------------------------------------------


def test_get_event_reads_one_occurrence_with_its_etag(connector_case: ConnectorCase) -> None:
    case = connector_case
    connector = case.make(case.manager)
    when = upcoming(case)

    event = connector.get_event(case.calendar_of(case.manager),
                                case.event_id(case.manager, case.series_key, when))

    assert event.original_start == when and event.start == when and event.etag
    assert event.ical_uid == uid(case.series_key) and event.status is EventStatus.CONFIRMED
    with pytest.raises(NotFound):
        connector.get_event(case.calendar_of(case.manager), "no-such-event")


def test_an_unreadable_event_raises_malformed_event_with_its_id(
    connector_case: ConnectorCase,
) -> None:
    case = connector_case
    connector = case.make(case.manager)
    when = upcoming(case)
    broken = case.admin.inject_malformed_reads(case.manager, case.series_key, when)

    with pytest.raises(MalformedEvent) as caught:
        connector.get_event(case.calendar_of(case.manager), broken)

    assert caught.value.event_id == broken


def test_patch_with_the_current_etag_writes_and_bumps_the_etag(
    connector_case: ConnectorCase,
) -> None:
    case = connector_case
    connector = case.make(case.manager)
    when = upcoming(case)
    calendar = case.calendar_of(case.manager)
    fresh = connector.get_event(calendar, case.event_id(case.manager, case.series_key, when))

    written = connector.patch_description(calendar, fresh.id, description="Agenda: growth",
                                          is_html=False, etag=fresh.etag)

    stored = case.admin.description_of(case.manager, case.series_key, when)
    assert "Agenda: growth" in written.description and written.description == stored
    assert written.etag and written.etag != fresh.etag
    assert written.ical_uid == uid(case.series_key)
    later = case.admin.description_of(case.manager, case.series_key, when + timedelta(weeks=1))
    assert seeded_description(case.series_key) in later


def test_patch_with_a_stale_etag_raises_precondition_failed_and_keeps_the_human_text(
    connector_case: ConnectorCase,
) -> None:
    case = connector_case
    connector = case.make(case.manager)
    when = upcoming(case)
    calendar = case.calendar_of(case.manager)
    stale = connector.get_event(calendar, case.event_id(case.manager, case.series_key, when))
    case.admin.human_edit_description(case.manager, case.series_key, when,
                                      "Talk about\nthe offsite")

    with pytest.raises(PreconditionFailed):
        connector.patch_description(calendar, stale.id, description="ours", is_html=False,
                                    etag=stale.etag)

    kept = case.admin.description_of(case.manager, case.series_key, when)
    assert "Talk about" in kept and "the offsite" in kept and "ours" not in kept


# -- free/busy ------------------------------------------------------------------------------


def test_free_busy_reports_occurrences_leaves_out_declined_ones_and_names_the_unreadable(
    connector_case: ConnectorCase,
) -> None:
    case = connector_case
    when = upcoming(case)
    case.admin.decline_occurrence(case.series_key, when + timedelta(weeks=1), case.report)
    span = (when - timedelta(minutes=1), when + timedelta(weeks=1, minutes=40))

    answer = case.make(case.manager).free_busy([case.report, "Nobody@Elsewhere.test"], *span)

    assert isinstance(answer, FreeBusy)
    assert list(answer.busy) == [case.report]
    assert answer.unreadable == {"nobody@elsewhere.test"}
    intervals = {(b.start, b.end) for b in answer.busy[case.report]}
    assert (when, when + timedelta(minutes=30)) in intervals
    assert when + timedelta(weeks=1) not in {start for start, _ in intervals}


# -- subscribe ------------------------------------------------------------------------------


def test_subscribe_delivers_notifications_with_our_token_and_unsubscribe_stops_them(
    connector_case: ConnectorCase, webhook: Webhook,
) -> None:
    case = connector_case
    case.require("subscribe")
    connector = case.make(case.manager)

    sub = connector.subscribe(case.calendar_of(case.manager), address=webhook.address,
                              token="s3cret-state", ttl_seconds=3600)
    delivered = case.notify(case.manager)
    connector.unsubscribe(sub)

    assert sub.id and sub.expires_at > datetime.now(UTC) + timedelta(minutes=50)
    assert delivered == 1
    ((headers, body),) = webhook.received
    assert "s3cret-state" in headers.values() or b"s3cret-state" in body
    assert case.notify(case.manager) == 0


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthRevoked), (403, Forbidden), (404, NotFound), (500, Transient)],
)
def test_http_failures_become_the_shared_errors(
    connector_case: ConnectorCase, status: int, error: type[ConnectorError]
) -> None:
    case = connector_case
    connector = case.make(case.manager, attempts=2)
    case.admin.fail_listing(case.manager, status=status)

    with pytest.raises(error):
        full_sync(case, connector, case.manager)
    assert connector.list_calendars()  # only the listing was made to fail


def test_a_revoked_grant_raises_auth_revoked(connector_case: ConnectorCase) -> None:
    case = connector_case
    case.require("a grant per person")  # an app grant is revoked for the whole tenant
    already_authorized = case.make(case.manager)
    full_sync(case, already_authorized, case.manager)
    case.admin.revoke(case.manager)

    with pytest.raises(AuthRevoked):
        full_sync(case, already_authorized, case.manager)
    with pytest.raises(AuthRevoked):
        case.make(case.manager).list_calendars()


def test_throttling_raises_rate_limited_with_the_retry_after(
    connector_case: ConnectorCase,
) -> None:
    case = connector_case
    connector = case.make(case.manager, attempts=3)
    connector.list_calendars()
    case.admin.inject_throttle(10, retry_after=2)

    with pytest.raises(RateLimited) as caught:
        connector.list_calendars()

    assert caught.value.retry_after == 2.0


def test_throttling_that_outlasts_the_attempts_sleeps_the_retry_after_between_them(
    connector_case: ConnectorCase,
) -> None:
    case = connector_case
    case.require("retries")
    connector = case.make(case.manager, attempts=3)
    connector.list_calendars()
    case.admin.clear_requests()
    case.admin.inject_throttle(10, retry_after=2)

    with pytest.raises(RateLimited):
        full_sync(case, connector, case.manager)

    assert case.sleeps.calls == [2.0, 2.0]
    assert [r.status for r in case.admin.requests()] == [429, 429, 429]


def test_throttled_requests_are_retried_after_the_retry_after_delay(
    connector_case: ConnectorCase,
) -> None:
    case = connector_case
    case.require("retries")
    connector = case.make(case.manager, sleep_budget=6.0)  # 3 s + 3 s: over the default cap
    connector.list_calendars()
    case.admin.clear_requests()
    case.admin.inject_throttle(2, retry_after=3)

    pages = full_sync(case, connector, case.manager)

    assert pages[-1].cursor and case.sleeps.calls == [3.0, 3.0]
    listings = [r.status for r in case.admin.requests()
                if r.path.endswith(case.listing_path(case.manager))]
    assert listings[:3] == [429, 429, 200]


def test_every_call_is_reported_to_the_observer(connector_case: ConnectorCase) -> None:
    case = connector_case
    case.require("retries")
    calls: list[ProviderCall] = []
    connector = case.make(case.manager, observer=calls.append)
    connector.list_calendars()
    calls.clear()
    case.admin.inject_throttle(1, retry_after=0)

    connector.list_calendars()

    assert [(c.provider, c.status) for c in calls][:2] == [(connector.provider, 429),
                                                           (connector.provider, 200)]
    assert calls[0].operation == calls[1].operation
    assert all(c.duration_ms >= 0 for c in calls)
