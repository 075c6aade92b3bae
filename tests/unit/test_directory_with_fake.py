"""The directory sync over the in-memory directory: real SQLAlchemy on the production schema.

The provider shapes: Google's Directory names a manager by address only
(``relations[type=manager].value``), Graph by id and mail (``$expand=manager``); each test
that depends on it runs over both.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import DirectoryPerson
from connectors.errors import Transient
from sandbox.memory import MemoryDirectory
from service.accounts.crypto import Vault
from service.accounts.models import Account, AccountStatus, DirectoryGrant
from service.accounts.service import read_credentials, save_grant
from service.directory.sync import DirectorySyncResult, sync_directory
from service.people.models import Person
from service.settings import Settings

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DOMAIN = "corp.test"


def _entry(user: str, manager: str | None, provider: str, **extra: object) -> DirectoryPerson:
    email = f"{user}@{DOMAIN}"
    boss = f"{manager}@{DOMAIN}" if manager else None
    return DirectoryPerson(id=f"id-{user}", email=email, name=user.capitalize(),
                           manager_id=f"id-{manager}" if manager and provider != "google"
                           else None,
                           manager_email=boss, **extra)  # type: ignore[arg-type]


def _company(provider: str) -> MemoryDirectory:
    """Three levels: ceo > jordan > (lee, ana, bo); ceo > kit; five people a page of two."""
    people = [_entry("lee", "jordan", provider), _entry("ana", "jordan", provider),
              _entry("jordan", "ceo", provider), _entry("bo", "jordan", provider),
              _entry("kit", "ceo", provider), _entry("ceo", None, provider)]
    return MemoryDirectory(people, provider=provider, page_size=2)


@pytest.fixture(params=["google", "microsoft"])
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def grant_id(factory: sessionmaker[Session], settings: Settings, provider: str) -> int:
    with factory.begin() as session:
        return save_grant(session, vault=Vault.from_settings(settings), provider=provider,
                          name=DOMAIN, scope={"domain": DOMAIN},
                          credentials={"key": "secret"}).id


def _run(factory: sessionmaker[Session], settings: Settings, grant_id: int,
         directory: MemoryDirectory, now: datetime = NOW) -> DirectorySyncResult:
    return sync_directory(factory, grant_id=grant_id, connector=directory,
                          vault=Vault.from_settings(settings), now=now)


def _people(factory: sessionmaker[Session]) -> dict[str, Person]:
    with factory() as session:
        return {p.email.split("@")[0]: p for p in session.scalars(select(Person))}


def _managers(factory: sessionmaker[Session]) -> dict[str, str | None]:
    people = _people(factory)
    by_id = {p.id: name for name, p in people.items()}
    return {name: by_id.get(p.manager_id) if p.manager_id else None
            for name, p in people.items()}


def test_a_first_pass_stores_people_managers_and_one_grant_account_each(
        factory: sessionmaker[Session], settings: Settings, grant_id: int,
        provider: str) -> None:
    directory = _company(provider)
    result = _run(factory, settings, grant_id, directory)
    assert result.complete and result.pages == 3
    assert (result.seen, result.added, result.left, result.managers_changed) == (6, 6, 0, 0)
    assert result.accounts_added == 6 and not result.unknown_managers
    # managers resolve even when listed on a later page than their reports (lee, page 1)
    assert _managers(factory) == {"lee": "jordan", "ana": "jordan", "bo": "jordan",
                                  "jordan": "ceo", "kit": "ceo", "ceo": None}
    with factory() as session:
        accounts = session.scalars(select(Account).order_by(Account.email)).all()
        assert {a.provider for a in accounts} == {provider}
        assert {a.grant_id for a in accounts} == {grant_id}
        lee = next(a for a in accounts if a.email == f"lee@{DOMAIN}")
        assert b"lee" not in lee.credentials_encrypted  # encrypted at rest
        assert read_credentials(lee, vault=Vault.from_settings(settings)) == {
            "subject": f"lee@{DOMAIN}", "user_id": "id-lee"}
        grant = session.get(DirectoryGrant, grant_id)
        assert grant is not None and grant.last_directory_sync_at == NOW
        assert grant.directory_page_token is None


def test_a_second_pass_over_the_same_directory_changes_nothing(
        factory: sessionmaker[Session], settings: Settings, grant_id: int,
        provider: str) -> None:
    directory = _company(provider)
    _run(factory, settings, grant_id, directory)
    again = _run(factory, settings, grant_id, directory, now=NOW.replace(hour=15))
    assert (again.seen, again.added, again.changed, again.left, again.managers_changed,
            again.accounts_added) == (6, 0, 0, 0, 0, 0)


def test_a_page_that_fails_half_way_resumes_there_and_removes_no_one_by_mistake(
        factory: sessionmaker[Session], settings: Settings, grant_id: int,
        provider: str) -> None:
    directory = _company(provider)
    _run(factory, settings, grant_id, directory)
    directory.remove("id-kit")  # kit leaves; the next pass fails on its second page
    directory.fail_page(1)
    directory.requested.clear()
    with pytest.raises(Transient):
        _run(factory, settings, grant_id, directory, now=NOW.replace(hour=10))
    assert all(p.left_at is None for p in _people(factory).values())  # pass not complete
    with factory() as session:
        grant = session.get(DirectoryGrant, grant_id)
        assert grant is not None and grant.directory_page_token == "dir:2"
        assert grant.last_error and "Transient" in grant.last_error
    resumed = _run(factory, settings, grant_id, directory, now=NOW.replace(hour=11))
    assert directory.requested == [None, "dir:2", "dir:2", "dir:4"]  # resumed at the failure
    assert resumed.complete and resumed.left == 1
    people = _people(factory)
    assert people["kit"].left_at is not None
    assert sorted(n for n, p in people.items() if p.left_at is None) == [
        "ana", "bo", "ceo", "jordan", "lee"]
    with factory() as session:
        kit = session.scalars(select(Account).where(Account.email == f"kit@{DOMAIN}")).one()
        assert kit.status == AccountStatus.DISABLED
        grant = session.get(DirectoryGrant, grant_id)
        assert grant is not None and grant.last_error is None


def test_a_manager_outside_the_scope_is_reported_and_linked_only_when_known(
        factory: sessionmaker[Session], settings: Settings, grant_id: int,
        provider: str) -> None:
    people = [_entry("lee", "outsider", provider), _entry("ana", "known", provider)]
    with factory.begin() as session:  # "known" appears in a calendar, not in the directory
        session.add(Person(email=f"known@{DOMAIN}"))
    result = _run(factory, settings, grant_id, MemoryDirectory(people, provider=provider))
    assert result.complete
    assert result.unknown_managers == {f"outsider@{DOMAIN}"}
    assert "1 managers outside" in result.summary()
    managers = _managers(factory)
    assert managers["lee"] is None and managers["ana"] == "known"


def test_a_suspended_person_has_their_accounts_disabled_and_comes_back_when_restored(
        factory: sessionmaker[Session], settings: Settings, grant_id: int,
        provider: str) -> None:
    directory = _company(provider)
    _run(factory, settings, grant_id, directory)
    directory.suspend("id-bo")
    result = _run(factory, settings, grant_id, directory, now=NOW.replace(hour=12))
    assert result.suspended == 1
    with factory() as session:
        bo = session.scalars(select(Account).where(Account.email == f"bo@{DOMAIN}")).one()
        assert (bo.status, bo.status_reason) == (AccountStatus.DISABLED,
                                                 "suspended in the company directory")
    directory.suspend("id-bo", False)
    _run(factory, settings, grant_id, directory, now=NOW.replace(hour=13))
    with factory() as session:
        bo = session.scalars(select(Account).where(Account.email == f"bo@{DOMAIN}")).one()
        assert bo.status == AccountStatus.ACTIVE
        assert json.loads(Vault.from_settings(settings).decrypt(bo.credentials_encrypted))[
            "subject"] == f"bo@{DOMAIN}"
