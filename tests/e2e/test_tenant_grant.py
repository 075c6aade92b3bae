"""A Microsoft 365 tenant grant end to end: `rapport connect microsoft-tenant` as an operator
runs it, then each person's calendar synced app-only by the real actors through the real
MSAL ConfidentialClientApplication and Rapport's Graph connector, over HTTPS to the sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from sandbox.microsoft.company import DANA, company_users
from sandbox.microsoft.model import object_id
from sandbox.microsoft.tenants import COMPANY_TENANT_ID, AppCredentials
from sandbox.team import DOMAIN
from service.accounts.crypto import Vault
from service.accounts.models import Account, DirectoryGrant
from service.accounts.service import read_grant_credentials, save_account
from service.calendars.microsoft_tenant import connect_microsoft_tenant
from service.calendars.models import Calendar
from service.calendars.service import save_calendars
from service.people.models import Person

from .conftest import CASES, Harness
from .helpers import series_of, written_agendas
from .test_cli import _env, rapport

LEE = f"lee@{DOMAIN}"
PRIYA = f"priya@{DOMAIN}"


@pytest.fixture
def company(harness: Harness) -> AppCredentials:
    """The acme tenant in Entra with an app registered, consented, holding a secret and a
    certificate."""
    harness.graph.seed_company(company_users(60))
    return harness.graph.register_app(certificate=True)


def _grant(harness: Harness, app: AppCredentials) -> int:
    assert app.secret is not None
    with harness.runtime.factory.begin() as session:
        grant = connect_microsoft_tenant(
            session, settings=harness.settings, vault=Vault.from_settings(harness.settings),
            tenant=app.tenant, client_id=app.client_id, credentials={"client_secret": app.secret})
        return grant.id


def _watch(harness: Harness, grant_id: int, email: str) -> int:
    """What the directory sync does for a person of the grant: an account acting as them
    (who, not how: the grant's credentials do the work) and their primary calendar."""
    vault = Vault.from_settings(harness.settings)
    with harness.runtime.factory.begin() as session:
        account = save_account(session, vault=vault, provider="microsoft", email=email,
                               credentials={"subject": email, "user_id": object_id(email)})
        account.grant_id = grant_id
        account_id = account.id
    calendars = harness.runtime.connectors.for_account(account_id).list_calendars()
    with harness.runtime.factory.begin() as session:
        account = session.get(Account, account_id)
        assert account is not None
        save_calendars(session, account=account, calendars=calendars)
    return account_id


def _token_calls(harness: Harness) -> int:
    return sum(1 for r in harness.graph.requests() if r.path.endswith("/oauth2/v2.0/token"))


def test_each_persons_calendar_is_synced_app_only_on_one_token_for_the_grant(
        harness: Harness, company: AppCredentials) -> None:
    grant_id = _grant(harness, company)
    harness.graph.clear_requests()
    for email in (DANA, LEE, PRIYA):
        _watch(harness, grant_id, email)

    harness.sync()
    people = harness.runtime.connectors.directory_for(grant_id).list_people()

    case = CASES["microsoft"]
    series = series_of(harness, manager=case.manager, report=case.report)
    assert series.pair_id is not None and written_agendas(harness) > 0
    assert {p.email for p in people.people} >= {DANA, LEE, PRIYA}
    api = [r for r in harness.graph.requests() if r.path.startswith("/v1.0/")]
    assert not [r for r in api if r.path.startswith("/v1.0/me")]  # never as a signed-in user
    assert {r.user for r in api if "/calendarView/delta" in r.path} == {DANA, LEE, PRIYA}
    assert any(r.method == "PATCH" for r in api)  # the agenda written as the organizer
    assert _token_calls(harness) == 1  # one app token for three calendars and the directory


def test_a_mailbox_the_access_policy_leaves_out_fails_alone_with_a_clear_reason(
        harness: Harness, company: AppCredentials) -> None:
    grant_id = _grant(harness, company)
    dana, lee = _watch(harness, grant_id, DANA), _watch(harness, grant_id, LEE)
    harness.graph.restrict_app(company.client_id, [LEE])  # the admin narrows the app later

    harness.sync()

    with harness.session() as session:
        calendars = {c.account_id: c for c in session.scalars(select(Calendar))}
    assert calendars[lee].last_error is None and calendars[lee].last_sync_at is not None
    reason = calendars[dana].last_error or ""
    assert "out of the app's reach" in reason and "application access policy" in reason
    assert "\n" not in reason
    series_of(harness, manager=DANA, report=LEE)  # Lee's copy of their 1:1 still syncs


def _grants(harness: Harness) -> list[DirectoryGrant]:
    with harness.session() as session:
        rows = list(session.scalars(select(DirectoryGrant)))
        session.expunge_all()
        return rows


def test_connect_microsoft_tenant_with_a_certificate_stores_the_grant_encrypted(
        harness: Harness, company: AppCredentials, tmp_path: Path) -> None:
    assert company.certificate_pem is not None
    pem = tmp_path / "rapport.pem"
    pem.write_text(company.certificate_pem)

    process = rapport("connect", "microsoft-tenant", "--tenant", company.tenant,
                      "--client-id", company.client_id, "--certificate", str(pem),
                      env=_env(harness.settings.data_dir, harness))

    assert process.returncode == 0, process.stderr
    assert f"Connected Microsoft 365 tenant {COMPANY_TENANT_ID}" in process.stdout
    [grant] = _grants(harness)
    assert grant.scope == {"tenant": COMPANY_TENANT_ID, "client_id": company.client_id}
    assert b"PRIVATE KEY" not in grant.credentials_encrypted
    stored = read_grant_credentials(grant, vault=Vault.from_settings(harness.settings))
    assert set(stored) == {"private_key", "certificate", "thumbprint"}
    checked = [r for r in harness.graph.requests() if r.path == "/v1.0/users"]
    # one cheap directory read checks the grant, then the first directory sync reads the
    # tenant's people a page (Graph's $expand cap, 100) at a time
    assert [r.query.get("$top") for r in checked][:1] == ["1"]
    assert set(r.query.get("$top") for r in checked[1:]) == {"100"}
    with harness.session() as session:
        people = session.scalars(select(Person).where(
            Person.directory_grant_id == grant.id)).all()
    assert people, "the first directory sync ran at connect"


@pytest.mark.parametrize(("tenant", "secret", "says", "code"), [
    ("11111111-2222-3333-4444-555555555555", "right", "AADSTS90002", 1),
    (COMPANY_TENANT_ID, "wrong", "AADSTS7000215", 4),
])
def test_an_unknown_tenant_or_a_wrong_secret_is_one_line_and_nothing_is_stored(
        harness: Harness, company: AppCredentials, tmp_path: Path, tenant: str, secret: str,
        says: str, code: int) -> None:
    assert company.secret is not None
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(company.secret if secret == "right" else "not-the-secret\n")

    process = rapport("connect", "microsoft-tenant", "--tenant", tenant, "--client-id",
                      company.client_id, "--client-secret-file", str(secret_file),
                      env=_env(harness.settings.data_dir, harness))

    assert process.returncode == code
    assert "Traceback" not in process.stdout + process.stderr
    [line] = process.stderr.strip().splitlines()
    assert says in line
    assert company.secret not in process.stderr + process.stdout
    with harness.session() as session:
        assert session.scalar(select(func.count()).select_from(DirectoryGrant)) == 0
