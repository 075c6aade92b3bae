"""Series masters listed per calendar, not read one by one: the Graph sandbox's events list
(GET /me/events with ``$filter=type eq 'seriesMaster'``, ``$select``, ``$top`` paging) and the
connector that uses it on a first sync, over real HTTPS (MSAL + httpx) to the sandbox."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from connector_cases import RecordingSleep, sync_window

from connectors.base import CalendarEvent
from connectors.microsoft import GraphConnector
from sandbox.admin import RecordedRequest
from sandbox.microsoft import GraphSandbox
from sandbox.team import DOMAIN

DANA, LEE = f"dana@{DOMAIN}", f"lee@{DOMAIN}"
DANAS_SERIES = {"dana-lee", "dana-kim", "design-review"}  # recurring, in dana's calendar
MASTERS = "type eq 'seriesMaster'"


def _graph(sandbox: GraphSandbox, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=sandbox.base_url,
        verify=ssl.create_default_context(cafile=sandbox.ca_file),
        headers={"Authorization": f"Bearer {token}"},
    )


def _listed(client: httpx.Client, path: str, **params: str) -> list[dict[str, object]]:
    """Every event of a list, its @odata.nextLink pages followed."""
    values: list[dict[str, object]] = []
    answer = client.get(path, params=params).raise_for_status().json()
    values.extend(answer["value"])
    while "@odata.nextLink" in answer:
        answer = client.get(answer["@odata.nextLink"]).raise_for_status().json()
        values.extend(answer["value"])
    return values


def _full_sync(connector: GraphConnector) -> list[CalendarEvent]:
    start, end = sync_window()
    return [
        e
        for page in connector.list_changes("primary", None, window_start=start, window_end=end)
        for e in page.events
    ]


def _master_lists(requests: list[RecordedRequest]) -> list[RecordedRequest]:
    return [r for r in requests if r.method == "GET" and r.path.endswith("/events")]


def _master_reads(requests: list[RecordedRequest]) -> list[RecordedRequest]:
    return [
        r
        for r in requests
        if r.method == "GET" and "/events/" in r.path and r.query.get("$select") == "iCalUId"
    ]


def _series_uids(events: list[CalendarEvent]) -> set[str | None]:
    return {e.ical_uid for e in events if e.series_id}


@pytest.fixture
def dana_token(graph_token_provider_for: Callable[[str], Callable[[], str]]) -> str:
    return graph_token_provider_for(DANA)()


# -- the sandbox's events list ------------------------------------------------------------


def test_the_events_list_filtered_on_type_holds_the_masters_with_only_the_selected_uid(
    graph_sandbox: GraphSandbox, dana_token: str
) -> None:
    with _graph(graph_sandbox, dana_token) as graph:
        first = (
            graph.get("me/events", params={"$filter": MASTERS, "$select": "iCalUId", "$top": "2"})
            .raise_for_status()
            .json()
        )
        masters = _listed(
            graph, "me/events", **{"$filter": MASTERS, "$select": "iCalUId", "$top": "2"}
        )
        everything = _listed(graph, "me/events", **{"$select": "type,seriesMasterId"})
        in_calendar = _listed(
            graph, f"me/calendars/{graph_sandbox.calendar_id(DANA)}/events", **{"$filter": MASTERS}
        )

    assert len(first["value"]) == 2 and "$skip=2" in first["@odata.nextLink"]
    assert all(set(m) == {"@odata.etag", "id", "iCalUId"} for m in masters)
    assert {m["iCalUId"] for m in masters} == {f"{key}@rapport-sandbox" for key in DANAS_SERIES}
    assert len({m["id"] for m in masters}) == len(masters) == 3
    # no filter: single instances and masters, never an occurrence (Graph's list events)
    assert {e["type"] for e in everything} <= {"singleInstance", "seriesMaster"}
    assert {e["id"] for e in everything if e["type"] == "seriesMaster"} == {
        m["id"] for m in masters
    }
    assert [m["id"] for m in in_calendar] == [m["id"] for m in masters]


def test_the_masters_listed_are_the_ones_the_calendar_view_points_at(
    graph_sandbox: GraphSandbox, dana_token: str
) -> None:
    start, end = sync_window()
    with _graph(graph_sandbox, dana_token) as graph:
        view = _listed(
            graph,
            "me/calendarView/delta",
            startDateTime=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            endDateTime=end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        masters = _listed(graph, "me/events", **{"$filter": MASTERS, "$select": "iCalUId"})
    assert {e.get("seriesMasterId") for e in view} - {None} == {m["id"] for m in masters}


def test_a_filter_the_sandbox_cannot_evaluate_is_refused_as_bad_request(
    graph_sandbox: GraphSandbox, dana_token: str
) -> None:
    with _graph(graph_sandbox, dana_token) as graph:
        answer = graph.get("me/events", params={"$filter": "subject eq 'Design review'"})
        occurrences = graph.get("me/events", params={"$filter": "type eq 'occurrence'"})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "BadRequest"
    assert occurrences.status_code == 200 and occurrences.json()["value"] == []


# -- the connector ------------------------------------------------------------------------


def test_a_first_sync_lists_the_calendars_masters_once_and_reads_none_alone(
    graph_sandbox: GraphSandbox, graph_connector_for: Callable[..., GraphConnector]
) -> None:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for hour in (1, 2, 3):  # more series than the seeded ones
        graph_sandbox.create_series(
            organizer=DANA,
            attendees=[LEE],
            title=f"Extra {hour}",
            first_start=now - timedelta(days=30, hours=hour),
        )
    graph_sandbox.clear_requests()

    events = _full_sync(graph_connector_for(DANA, page_size=10))

    requests = graph_sandbox.requests()
    assert len(_master_lists(requests)) == 1
    assert _master_reads(requests) == []
    uids = _series_uids(events)
    assert len(uids) == 6 and None not in uids
    assert {f"{key}@rapport-sandbox" for key in DANAS_SERIES} <= uids


def test_a_throttled_master_list_waits_its_retry_after_and_is_asked_again(
    graph_sandbox: GraphSandbox,
    graph_connector_for: Callable[..., GraphConnector],
    graph_sleeps: RecordingSleep,
) -> None:
    dana = graph_connector_for(DANA)
    graph_sandbox.clear_requests()
    graph_sandbox.fail_event_lists(429, retry_after=2)

    events = _full_sync(dana)

    requests = graph_sandbox.requests()
    assert [r.status for r in _master_lists(requests)] == [429, 200]
    assert graph_sleeps.waits == [2.0]
    assert _master_reads(requests) == []
    assert _series_uids(events) == {f"{key}@rapport-sandbox" for key in DANAS_SERIES}


def test_masters_a_failing_list_page_left_out_are_read_one_by_one(
    graph_sandbox: GraphSandbox, graph_connector_for: Callable[..., GraphConnector]
) -> None:
    dana = graph_connector_for(DANA, page_size=2, attempts=2)
    graph_sandbox.clear_requests()
    graph_sandbox.fail_event_lists(None, 500, 500)  # page 1 answered, page 2 fails twice

    events = _full_sync(dana)

    requests = graph_sandbox.requests()
    assert [r.status for r in _master_lists(requests)] == [200, 500, 500]
    assert len(_master_reads(requests)) == 1  # the third master, not on page 1
    assert _series_uids(events) == {f"{key}@rapport-sandbox" for key in DANAS_SERIES}


def test_a_list_refused_as_bad_request_falls_back_to_reading_each_master(
    graph_sandbox: GraphSandbox, graph_connector_for: Callable[..., GraphConnector]
) -> None:
    dana = graph_connector_for(DANA)
    graph_sandbox.clear_requests()
    graph_sandbox.fail_event_lists(400)

    events = _full_sync(dana)

    requests = graph_sandbox.requests()
    assert [r.status for r in _master_lists(requests)] == [400]
    assert len(_master_reads(requests)) == 3
    assert _series_uids(events) == {f"{key}@rapport-sandbox" for key in DANAS_SERIES}


def test_a_series_created_after_the_list_costs_one_read_of_its_master(
    graph_sandbox: GraphSandbox, graph_connector_for: Callable[..., GraphConnector]
) -> None:
    dana = graph_connector_for(DANA)
    start, end = sync_window()
    pages = list(dana.list_changes("primary", None, window_start=start, window_end=end))
    key = graph_sandbox.create_series(
        organizer=DANA, attendees=[LEE], title="New weekly", first_start=start + timedelta(days=1)
    )
    graph_sandbox.clear_requests()

    changes = [
        e
        for page in dana.list_changes(
            "primary", pages[-1].cursor, window_start=start, window_end=end
        )
        for e in page.events
    ]

    requests = graph_sandbox.requests()
    assert _master_lists(requests) == []  # the calendar was listed once already
    assert len(_master_reads(requests)) == 1
    assert _series_uids(changes) == {f"{key}@rapport-sandbox"}
