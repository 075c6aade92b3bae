"""One connector, one token per account per process, shared by every worker thread; a Graph
calendar's series masters are listed once (one request, not one per series), by any process,
ever. Counted at the sandboxes, real clients."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import func, select

from connectors.base import CalendarConnector
from sandbox.admin import RecordedRequest, SandboxAdmin
from sandbox.team import people_on
from service.accounts.crypto import Vault
from service.accounts.models import Account
from service.accounts.service import read_credentials, store_credentials
from service.calendars.connectors import AccountConnectors
from service.calendars.models import Calendar, GraphSeriesUid
from service.pairs.models import Series
from workers import actors
from workers.inprocess import run_until_idle

from .conftest import CASES, Harness
from .helpers import calls

T = TypeVar("T")
THREADS = 6


def _token_requests(sandbox: SandboxAdmin) -> list[RecordedRequest]:
    """OAuth token endpoint requests (Google's /token, Entra's /oauth2/v2.0/token)."""
    return [r for r in sandbox.requests() if r.method == "POST" and r.path.endswith("/token")]


def _metadata_reads(sandbox: SandboxAdmin) -> list[RecordedRequest]:
    """Reads of the authority's OpenID configuration (MSAL reads it when an app is built)."""
    return [r for r in sandbox.requests() if r.path.endswith("/openid-configuration")]


def _master_reads(sandbox: SandboxAdmin) -> list[RecordedRequest]:
    """GET events/{series master}?$select=iCalUId: the Graph connector reading one series uid."""
    return [r for r in calls(sandbox).api if r.method == "GET" and "/events/" in r.path
            and r.query.get("$select") == "iCalUId"]


def _master_lists(sandbox: SandboxAdmin) -> list[RecordedRequest]:
    """GET .../events?$filter=type eq 'seriesMaster': a calendar's series masters listed."""
    return [r for r in calls(sandbox).api if r.method == "GET" and r.path.endswith("/events")
            and r.query.get("$filter") == "type eq 'seriesMaster'"]


def _at_once(work: Callable[[], T], threads: int = THREADS) -> list[T]:
    """Run `work` in `threads` threads released together; every result, or the first error."""
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * threads
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work()
        except BaseException as err:  # noqa: BLE001 - re-raised below, in the test's thread
            errors.append(err)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    if errors:
        raise errors[0]
    return results


def _primary(harness: Harness, account_id: int) -> str:
    with harness.session() as session:
        return session.scalars(select(Calendar.provider_calendar_id)
                               .where(Calendar.account_id == account_id)).first() or "primary"


def _window_ids(harness: Harness, connector: CalendarConnector, calendar: str) -> list[str]:
    """Every event id of a full round over the sync window, and the first one read back."""
    now = harness.clock()
    ids = sorted(e.id for page in connector.list_changes(
        calendar, None, window_start=now - timedelta(days=30),
        window_end=now + timedelta(days=60)) for e in page.events)
    assert ids, "the seeded calendar has events in the window"
    assert connector.get_event(calendar, ids[0]).id == ids[0]
    return ids


def test_two_runs_of_four_threads_cost_one_token_per_google_account_and_one_metadata_read_per_graph_account(  # noqa: E501
        harness: Harness) -> None:
    harness.connect_team()
    for sandbox in (harness.sandbox("google"), harness.sandbox("microsoft")):
        sandbox.clear_requests()

    for _ in range(2):  # `rapport sync --once` twice: fresh worker threads each run
        actors.sync_all_accounts()
        run_until_idle(harness.broker, threads=4, timeout=120)

    google = [p.email for p in people_on("google")]
    assert Counter(r.user for r in _token_requests(harness.sandbox("google"))) == Counter(
        {email: 1 for email in google})
    assert len(_metadata_reads(harness.sandbox("microsoft"))) == len(people_on("microsoft"))
    assert calls(harness.sandbox("microsoft")).lists and calls(harness.sandbox("google")).lists
    with harness.session() as session:
        assert session.scalar(select(func.count()).select_from(Calendar)
                              .where(Calendar.cursor.is_(None))) == 0


def test_a_first_sync_lists_the_series_masters_once_per_calendar_and_a_new_process_none(
        harness: Harness) -> None:
    account_id = harness.connect(CASES["microsoft"].manager)
    graph = harness.sandbox("microsoft")
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=20)
    for hour in (1, 2, 3, 4, 5):  # several series beyond the seeded ones
        graph.create_series(organizer=CASES["microsoft"].manager,
                            attendees=[CASES["microsoft"].report], title=f"Weekly {hour}",
                            first_start=start + timedelta(hours=hour))
    graph.clear_requests()
    harness.sync()

    with harness.session() as session:
        calendars = session.scalar(select(func.count()).select_from(Calendar)
                                   .where(Calendar.account_id == account_id))
        kept = session.scalar(select(func.count()).select_from(GraphSeriesUid)
                              .where(GraphSeriesUid.account_id == account_id))
        series = sorted(session.scalars(select(Series.series_key)).all())
    assert [r.status for r in _master_lists(graph)] == [200] * calendars == [200]
    assert _master_reads(graph) == [], "no series master is read on its own"
    assert kept == 3 + 5, "the seeded series and the new ones, kept for the next process"

    # another process (a new connector factory, nothing in memory), and a full resync
    harness.runtime.connectors = AccountConnectors(harness.settings, harness.runtime.factory)
    with harness.runtime.factory.begin() as session:
        for calendar in session.scalars(select(Calendar)
                                        .where(Calendar.account_id == account_id)):
            calendar.cursor = None
    graph.clear_requests()
    harness.sync()

    assert calls(graph).lists, "the full round read every page again"
    assert _master_lists(graph) == [] and _master_reads(graph) == []
    with harness.session() as session:
        assert sorted(session.scalars(select(Series.series_key)).all()) == series


def test_one_google_connector_serves_threads_at_once_on_one_token(harness: Harness) -> None:
    account_id = harness.connect(CASES["google"].manager)
    connectors = AccountConnectors(harness.settings, harness.runtime.factory)
    calendar = _primary(harness, account_id)
    harness.sandbox("google").clear_requests()

    def sync_twice() -> tuple[CalendarConnector, list[str]]:
        connector = connectors.for_account(account_id)
        ids = _window_ids(harness, connector, calendar)
        assert _window_ids(harness, connector, calendar) == ids
        return connector, ids

    results = _at_once(sync_twice)

    assert len({id(connector) for connector, _ in results}) == 1
    assert all(ids == results[0][1] for _, ids in results)
    assert [r.user for r in _token_requests(harness.sandbox("google"))] == [CASES["google"].manager]
    assert all(r.status == 200 for r in calls(harness.sandbox("google")).api)


def expire_stored_msal_token(harness: Harness, account_id: int) -> None:
    """The stored MSAL cache's access token has expired (MSAL then refreshes it)."""
    vault = Vault.from_settings(harness.settings)
    with harness.runtime.factory.begin() as session:
        account = session.get(Account, account_id)
        assert account is not None
        credentials = read_credentials(account, vault=vault)
        cache = json.loads(credentials["cache"])
        for token in cache["AccessToken"].values():
            token["expires_on"] = token["extended_expires_on"] = str(int(time.time()) - 60)
        credentials["cache"] = json.dumps(cache)
        store_credentials(account, vault=vault, credentials=credentials)


def test_threads_sharing_a_graph_connector_refresh_an_expired_token_once_and_save_the_cache(
        harness: Harness) -> None:
    account_id = harness.connect(CASES["microsoft"].manager)
    vault = Vault.from_settings(harness.settings)
    expire_stored_msal_token(harness, account_id)
    connectors = AccountConnectors(harness.settings, harness.runtime.factory)
    calendar = _primary(harness, account_id)
    harness.sandbox("microsoft").clear_requests()

    def sync_twice() -> tuple[CalendarConnector, list[str]]:
        connector = connectors.for_account(account_id)
        ids = _window_ids(harness, connector, calendar)
        assert _window_ids(harness, connector, calendar) == ids
        return connector, ids

    results = _at_once(sync_twice)

    assert len({id(connector) for connector, _ in results}) == 1
    assert all(ids == results[0][1] for _, ids in results)
    assert len(_token_requests(harness.sandbox("microsoft"))) == 1
    assert len(_metadata_reads(harness.sandbox("microsoft"))) == 1
    with harness.session() as session:
        account = session.get(Account, account_id)
        assert account is not None
        saved = json.loads(read_credentials(account, vault=vault)["cache"])
    assert all(int(t["expires_on"]) > time.time() for t in saved["AccessToken"].values())


def reconnect_with_another_secret(harness: Harness, account_id: int) -> None:
    """The account is connected again with another grant (a new client secret)."""
    vault = Vault.from_settings(harness.settings)
    with harness.runtime.factory.begin() as session:
        account = session.get(Account, account_id)
        assert account is not None
        credentials = read_credentials(account, vault=vault)
        credentials["client_secret"] = "another-secret"
        store_credentials(account, vault=vault, credentials=credentials)


def test_connectors_stay_bounded_and_a_reconnected_account_gets_a_fresh_one(
        harness: Harness) -> None:
    maya, sam = (harness.connect(CASES["google"].manager),
                 harness.connect(CASES["google"].report))
    connectors = AccountConnectors(harness.settings, harness.runtime.factory, capacity=1)
    first = connectors.for_account(maya)
    assert connectors.for_account(maya) is first
    connectors.for_account(sam)  # maya's is dropped: one account's worth at most
    again = connectors.for_account(maya)
    assert again is not first

    reconnect_with_another_secret(harness, maya)
    assert connectors.for_account(maya) is not again
