"""One access token per account for the whole fleet, not per process: a token one process
obtained is adopted by every other until it expires (Google: `access_tokens`; Graph: the MSAL
cache stored with the credentials). Two `AccountConnectors` over one database stand for two
worker processes; counted at the sandboxes' token endpoints, real google-auth and MSAL
clients over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select

from sandbox.google.company import ADMIN_EMAIL
from service.accounts.crypto import Vault
from service.accounts.models import AccessToken
from service.accounts.service import save_account
from service.calendars.connectors import AccountConnectors
from service.calendars.workspace import connect_google_workspace, grant_scope, workspace_scopes

from .conftest import CASES, Harness
from .test_connectors_per_process import (
    _primary,
    _token_requests,
    _window_ids,
    expire_stored_msal_token,
    reconnect_with_another_secret,
)


def _process(harness: Harness) -> AccountConnectors:
    """A worker process's connectors: nothing in memory, the one database."""
    return AccountConnectors(harness.settings, harness.runtime.factory)


@contextmanager
def _token_statements(harness: Harness) -> Iterator[list[str]]:
    """The SQL statements on the access_tokens table sent while the block runs."""
    engine = harness.runtime.factory.kw["bind"]
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "access_tokens" in statement:
            seen.append(statement.split(None, 1)[0].upper())

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_second_process_adopts_the_first_ones_token_and_the_fleet_refreshes_once_after_expiry(
        harness: Harness) -> None:
    account_id = harness.connect(CASES["google"].manager)
    calendar = _primary(harness, account_id)
    first, second = _process(harness), _process(harness)
    google = harness.google
    google.clear_requests()

    ids = _window_ids(harness, first.for_account(account_id), calendar)
    assert [r.status for r in _token_requests(google)] == [200]
    google.clear_requests()
    with _token_statements(harness) as statements:
        assert _window_ids(harness, second.for_account(account_id), calendar) == ids
        assert _token_requests(google) == [], "the second process asked no token of its own"
        assert statements == ["SELECT"], "read once, when the process has no token of its own"
        assert _window_ids(harness, second.for_account(account_id), calendar) == ids
        assert _window_ids(harness, first.for_account(account_id), calendar) == ids
    assert statements == ["SELECT"], "nothing read while the process's own token is valid"
    assert _token_requests(google) == []

    google.expire_access_tokens()  # an hour later: every token issued so far answers 401
    google.clear_requests()
    third = _process(harness)  # adopts the stored (expired) token, gets a 401, refreshes
    for process in (third, first, second):
        assert _window_ids(harness, process.for_account(account_id), calendar) == ids
    assert [r.status for r in _token_requests(google)] == [200], "one refresh for the fleet"
    refused = [r for r in google.requests() if r.status == 401]
    assert len(refused) == 3, "each process's old token was refused once, then it adopted"


def test_a_reconnected_account_does_not_adopt_the_earlier_grant_s_token(
        harness: Harness) -> None:
    account_id = harness.connect(CASES["google"].manager)
    calendar = _primary(harness, account_id)
    ids = _window_ids(harness, _process(harness).for_account(account_id), calendar)
    reconnect_with_another_secret(harness, account_id)
    harness.google.clear_requests()

    assert _window_ids(harness, _process(harness).for_account(account_id), calendar) == ids

    assert [r.status for r in _token_requests(harness.google)] == [200]


def test_people_reached_through_a_workspace_grant_share_their_delegated_token(
        harness: Harness) -> None:
    harness.runtime.settings.google_directory_url = harness.google.base_url.removesuffix(
        "calendar/v3/")
    key = harness.google.mint_service_account_key()
    harness.google.authorise_delegation(key["client_id"], list(workspace_scopes(group=False)))
    vault = Vault.from_settings(harness.settings)
    with harness.runtime.factory.begin() as session:
        scope = grant_scope(admin=ADMIN_EMAIL, domain=None, org_unit=None, group=None)
        grant = connect_google_workspace(session, settings=harness.settings, vault=vault,
                                         key=key, scope=scope).grant
        account = save_account(session, vault=vault, provider="google", email="maya@acme.test",
                               credentials={"subject": "maya@acme.test",
                                            "user_id": "maya@acme.test"})
        account.grant_id, account_id = grant.id, account.id
    harness.google.clear_requests()

    calendars = [_process(harness).for_account(account_id).list_calendars() for _ in range(2)]

    assert calendars[0] == calendars[1]
    assert [(r.status, r.user) for r in _token_requests(harness.google)] == [
        (200, "maya@acme.test")]
    with harness.session() as session:
        stored = session.scalar(select(AccessToken.token_encrypted)
                                .where(AccessToken.account_id == account_id))
    assert stored is not None and b"ya29." not in stored, "kept encrypted"


def test_a_graph_connector_already_held_takes_the_cache_another_process_refreshed(
        harness: Harness) -> None:
    account_id = harness.connect(CASES["microsoft"].manager)
    expire_stored_msal_token(harness, account_id)
    calendar = _primary(harness, account_id)
    first, second = _process(harness), _process(harness)
    held = second.for_account(account_id)  # built on the expired token, not used yet
    graph = harness.graph
    graph.clear_requests()

    ids = _window_ids(harness, first.for_account(account_id), calendar)  # refreshes, saves
    assert second.for_account(account_id) is held
    assert _window_ids(harness, held, calendar) == ids

    assert [r.status for r in _token_requests(graph)] == [200], "one refresh for both"
