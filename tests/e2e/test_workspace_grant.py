"""A Google Workspace company grant end to end: connected through the service, stored
encrypted, its directory read through `AccountConnectors.directory_for`, and people reached
through it synced (and their agendas written) as themselves by the real workers."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from connectors.errors import DelegationRefused
from connectors.google.auth import DIRECTORY_USERS_SCOPE
from sandbox.google.company import ADMIN_EMAIL
from service.accounts.crypto import Vault
from service.accounts.models import Account, AccountStatus, DirectoryGrant
from service.accounts.service import read_grant_credentials, save_account
from service.agenda.block import START_MARKER
from service.calendars.connectors import AccountConnectors
from service.calendars.service import save_calendars
from service.calendars.workspace import (
    connect_google_workspace,
    grant_scope,
    workspace_scopes,
)
from service.pairs.service import list_series

from .conftest import Harness


def _key(harness: Harness, *, authorised: tuple[str, ...] | None = None) -> dict[str, Any]:
    key = harness.google.mint_service_account_key()
    harness.google.authorise_delegation(key["client_id"],
                                        list(authorised or workspace_scopes(group=False)))
    return key


def _directory_settings(harness: Harness) -> None:
    harness.runtime.settings.google_directory_url = harness.google.base_url.removesuffix(
        "calendar/v3/")


def _connect(harness: Harness, key: dict[str, Any], **narrowing: str | None) -> int:
    scope = grant_scope(admin=ADMIN_EMAIL, domain=narrowing.get("domain"),
                        org_unit=narrowing.get("org_unit"), group=narrowing.get("group"))
    with harness.runtime.factory.begin() as session:
        result = connect_google_workspace(session, settings=harness.settings,
                                          vault=Vault.from_settings(harness.settings),
                                          key=key, scope=scope)
        return result.grant.id


def _reach(harness: Harness, grant_id: int, email: str) -> int:
    """What the directory sync does for each person of a grant: an account that acts as
    them through the grant, and their primary calendar."""
    vault = Vault.from_settings(harness.settings)
    with harness.runtime.factory.begin() as session:
        account = save_account(session, vault=vault, provider="google", email=email,
                               credentials={"subject": email, "user_id": email})
        account.grant_id = grant_id
        account_id = account.id
    connectors = harness.runtime.connectors
    assert isinstance(connectors, AccountConnectors)
    calendars = connectors.for_account(account_id).list_calendars()
    with harness.runtime.factory.begin() as session:
        stored = session.get(Account, account_id)
        assert stored is not None
        save_calendars(session, account=stored, calendars=calendars)
    return account_id


def test_the_company_grant_is_checked_then_stored_encrypted_with_its_scope(
        harness: Harness) -> None:
    _directory_settings(harness)
    key = _key(harness)

    grant_id = _connect(harness, key, org_unit="/IT")

    with harness.session() as session:
        grant = session.get(DirectoryGrant, grant_id)
        assert grant is not None
        assert (grant.provider, grant.name) == ("google", "acme.test")
        assert grant.scope == {"admin": ADMIN_EMAIL, "org_unit": "/IT"}
        assert key["private_key"].encode() not in grant.credentials_encrypted
        assert read_grant_credentials(grant, vault=Vault.from_settings(harness.settings)) == key
    checks = [r for r in harness.google.requests() if r.path.startswith("/admin/")]
    assert [(r.user, r.query.get("maxResults")) for r in checks] == [(ADMIN_EMAIL, "1")]


def test_scopes_not_authorised_refuse_the_grant_and_store_nothing(harness: Harness) -> None:
    _directory_settings(harness)
    directory_only = tuple(s for s in workspace_scopes(group=False) if "admin.directory" in s)
    key = _key(harness, authorised=directory_only)  # the calendar scopes were left out

    with pytest.raises(DelegationRefused):
        _connect(harness, key)

    with harness.session() as session:
        assert session.scalar(select(func.count()).select_from(DirectoryGrant)) == 0


def test_the_grant_s_directory_is_read_through_the_account_connectors(
        harness: Harness) -> None:
    _directory_settings(harness)
    grant_id = _connect(harness, _key(harness))
    connectors = harness.runtime.connectors
    assert isinstance(connectors, AccountConnectors)

    page = connectors.directory_for(grant_id).list_people()

    managers = {p.email: p.manager_email for p in page.people}
    assert managers["sam@acme.test"] == "maya@acme.test"
    assert page.next_page_token is None
    assert ADMIN_EMAIL in managers


def test_people_reached_through_the_grant_are_synced_and_written_as_themselves(
        harness: Harness) -> None:
    _directory_settings(harness)
    grant_id = _connect(harness, _key(harness))
    harness.google.clear_requests()
    for email in ("maya@acme.test", "sam@acme.test"):
        _reach(harness, grant_id, email)

    harness.sync()

    with harness.session() as session:
        found = {(r.manager, r.report) for r in list_series(session, now=harness.clock())}
    assert ("maya@acme.test", "sam@acme.test") in found
    starts = [s for s in harness.google.occurrence_starts("maya-sam",
                                                          until=harness.horizon_end())
              if s > harness.clock()]
    text = harness.google.description_of("maya@acme.test", "maya-sam", starts[0])
    assert START_MARKER in text.replace("&nbsp;", " ")
    served = harness.google.requests()
    lists = {r.user for r in served if r.path.endswith("/events") and r.method == "GET"}
    assert lists == {"maya@acme.test", "sam@acme.test"}  # each calendar read as its owner
    grants = [r for r in served if r.path == "/token"]
    assert grants and all(r.status == 200 for r in grants)
    # one token per person for the process: reaching them and syncing share the connector
    assert sorted(r.user for r in grants) == ["maya@acme.test", "sam@acme.test"]
    assert {r.user for r in served if r.method == "PATCH"} == {"maya@acme.test"}


def test_a_person_the_admin_no_longer_delegates_is_flagged_for_the_admin_not_for_sign_in(
        harness: Harness) -> None:
    _directory_settings(harness)
    key = _key(harness)
    grant_id = _connect(harness, key)
    maya = _reach(harness, grant_id, "maya@acme.test")
    harness.google.authorise_delegation(key["client_id"], [DIRECTORY_USERS_SCOPE])
    # the token issued before stays good until it expires (and every process shares it,
    # `access_tokens`); once it has, the next one is refused
    harness.google.expire_access_tokens()
    harness.runtime.connectors = AccountConnectors(harness.settings, harness.runtime.factory)

    harness.sync()

    with harness.session() as session:
        account = session.get(Account, maya)
        assert account is not None
        assert account.status == AccountStatus.NEEDS_RECONSENT
        assert account.status_reason is not None
        assert "rapport connect google-workspace" in account.status_reason
        assert "unauthorized_client" in account.status_reason
