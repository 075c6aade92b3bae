"""A Microsoft 365 tenant grant through the real MSAL ConfidentialClientApplication and
Rapport's Graph connectors over HTTPS to the sandbox: app-only tokens (secret and
certificate), the directory, calendars as each person, and the refusals Entra and Graph give."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from connectors.errors import AuthRevoked, Forbidden, NotFound
from connectors.microsoft.app_auth import AppTokenProvider, client_credential, tenant_authority
from connectors.microsoft.connector import GraphConnector
from connectors.microsoft.directory import GraphDirectory
from sandbox.microsoft import GraphSandbox
from sandbox.microsoft.company import DANA, DISABLED, company_users
from sandbox.microsoft.model import object_id
from sandbox.microsoft.tenants import (
    COMPANY_TENANT_ID,
    MAILBOX_SETTINGS,
    USERS,
    certificate_pem,
    new_certificate,
)
from sandbox.team import DOMAIN

LEE = f"lee@{DOMAIN}"


def _origin(sandbox: GraphSandbox) -> str:
    return sandbox.token_url.rsplit("/", 1)[0]


def _tokens(sandbox: GraphSandbox, client_id: str, credential: str | dict[str, str],
            tenant: str = COMPANY_TENANT_ID) -> AppTokenProvider:
    return AppTokenProvider(client_id=client_id,
                            authority=tenant_authority(sandbox.token_url, tenant),
                            credential=credential, ca_file=sandbox.ca_file)


def _claims(token: str) -> dict[str, object]:
    body = token.split(".")[1]
    claims: dict[str, object] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return claims


def _token_calls(sandbox: GraphSandbox) -> int:
    return sum(1 for r in sandbox.requests() if r.path.endswith("/oauth2/v2.0/token"))


@pytest.fixture
def company(graph_sandbox: GraphSandbox) -> GraphSandbox:
    graph_sandbox.seed_company(company_users(60))
    return graph_sandbox


def test_the_tenant_replaces_the_last_segment_of_the_configured_authority() -> None:
    assert tenant_authority("https://login.microsoftonline.com/organizations", "contoso.com") \
        == "https://login.microsoftonline.com/contoso.com"
    assert tenant_authority("https://127.0.0.1:8443/rapport-sandbox/", "t-1") \
        == "https://127.0.0.1:8443/t-1"
    assert tenant_authority("https://login.microsoftonline.us", "t-1") \
        == "https://login.microsoftonline.us/t-1"


def test_a_client_secret_gets_one_app_only_token_that_msal_then_serves_from_its_cache(
        company: GraphSandbox) -> None:
    app = company.register_app()
    assert app.secret is not None
    tokens = _tokens(company, app.client_id, app.secret)
    token = tokens()
    assert tokens() == token and _token_calls(company) == 1
    claims = _claims(token)
    assert claims["idtyp"] == "app" and claims["appid"] == app.client_id
    assert set(claims["roles"]) == {"Calendars.ReadWrite", USERS, MAILBOX_SETTINGS}  # type: ignore[arg-type]
    assert "upn" not in claims and "scp" not in claims  # no user in an app-only token


def test_a_certificate_signs_the_client_assertion_the_sandbox_verifies(
        company: GraphSandbox) -> None:
    app = company.register_app(secret=False, certificate=True)
    assert app.certificate_pem is not None
    stored = {"private_key": app.certificate_pem, "certificate": app.certificate_pem}
    assert _claims(_tokens(company, app.client_id, client_credential(stored))())["roles"]


def test_an_assertion_signed_by_another_key_is_refused_as_entra_does(
        company: GraphSandbox) -> None:
    app = company.register_app(secret=False, certificate=True)
    assert app.certificate_pem is not None
    registered_cert = app.certificate_pem[app.certificate_pem.index("-----BEGIN CERTIFICATE"):]
    other_key, other_cert = new_certificate("intruder")
    other_pem = certificate_pem(other_key, other_cert)
    other_private = other_pem[:other_pem.index("-----BEGIN CERTIFICATE")]
    # the registered certificate's thumbprint in the header, another key's signature
    tokens = _tokens(company, app.client_id,
                     {"private_key": other_private, "public_certificate": registered_cert})
    with pytest.raises(AuthRevoked, match="AADSTS700027"):
        tokens()


def test_a_wrong_secret_is_refused_with_entras_invalid_client(company: GraphSandbox) -> None:
    app = company.register_app()
    with pytest.raises(AuthRevoked, match=r"invalid_client.*AADSTS7000215.*not its ID"):
        _tokens(company, app.client_id, "not-the-secret")()


def test_a_tenant_that_does_not_exist_is_named_in_one_line(company: GraphSandbox) -> None:
    app = company.register_app()
    assert app.secret is not None
    with pytest.raises(NotFound) as caught:
        _tokens(company, app.client_id, app.secret, tenant="no-such-tenant.example")()
    message = str(caught.value)
    assert "no-such-tenant.example" in message and "AADSTS90002" in message
    assert "\n" not in message


def test_the_directory_pages_through_users_with_their_manager_zone_and_enabled_flag(
        company: GraphSandbox) -> None:
    app = company.register_app()
    assert app.secret is not None
    directory = GraphDirectory(token_provider=_tokens(company, app.client_id, app.secret),
                               api_url=company.base_url, verify=company.ca_file, page_size=25)
    people, token, pages = [], None, 0
    while True:
        page = directory.list_people(token)
        people += page.people
        pages += 1
        token = page.next_page_token
        if token is None:
            break
    assert pages == 3 and len(people) == 60
    by_email = {p.email: p for p in people}
    lee, dana = by_email[LEE], by_email[DANA]
    assert lee.id == object_id(LEE)
    assert (lee.manager_id, lee.manager_email) == (dana.id, DANA)
    assert lee.time_zone == "Europe/London" and lee.name == "Lee Morgan"
    assert by_email[DISABLED].suspended and by_email[DISABLED].time_zone is None
    assert not lee.suspended
    chief = people[0]
    assert chief.manager_id is None and chief.manager_email is None
    lists = [r for r in company.requests() if r.path == "/v1.0/users"]
    assert lists[0].query["$expand"] == "manager($select=id,mail)"
    assert "accountEnabled" in lists[0].query["$select"]
    # zones 20 to a batch: pages of 25, 25 (one disabled) and 10 people cost 2 + 2 + 1 batches
    api = [r.path for r in company.requests() if r.path.startswith("/v1.0/")]
    assert sorted(api) == ["/v1.0/$batch"] * 5 + ["/v1.0/users"] * 3


def test_a_zone_read_throttled_inside_a_batch_is_read_again_alone(company: GraphSandbox
                                                                  ) -> None:
    app = company.register_app()
    assert app.secret is not None
    directory = GraphDirectory(token_provider=_tokens(company, app.client_id, app.secret),
                               api_url=company.base_url, verify=company.ca_file, page_size=10)
    company.throttle_batched(2)
    people = directory.list_people().people
    assert all(p.time_zone for p in people)
    alone = [r for r in company.requests() if r.path.endswith("/mailboxSettings")]
    assert len(alone) == 2


def test_graph_caps_expanded_directory_pages_at_one_hundred(graph_sandbox: GraphSandbox
                                                             ) -> None:
    graph_sandbox.seed_company(company_users(150))
    app = graph_sandbox.register_app(permissions=(USERS,))
    assert app.secret is not None
    directory = GraphDirectory(token_provider=_tokens(graph_sandbox, app.client_id, app.secret),
                               api_url=graph_sandbox.base_url, verify=graph_sandbox.ca_file,
                               page_size=500)
    first = directory.list_people()
    assert len(first.people) == 100 and first.next_page_token is not None
    # without MailboxSettings.Read the zones are unknown, and the directory still reads
    assert {p.time_zone for p in first.people} == {None}
    assert len(directory.list_people(first.next_page_token).people) == 50


def test_a_directory_read_without_user_read_all_is_forbidden(company: GraphSandbox) -> None:
    app = company.register_app(permissions=("Calendars.ReadWrite",))
    assert app.secret is not None
    directory = GraphDirectory(token_provider=_tokens(company, app.client_id, app.secret),
                               api_url=company.base_url, verify=company.ca_file)
    with pytest.raises(Forbidden, match="Authorization_RequestDenied"):
        directory.check_access()


def _calendar_of(company: GraphSandbox, tokens: AppTokenProvider, email: str) -> GraphConnector:
    return GraphConnector(token_provider=tokens, api_url=company.base_url,
                          verify=company.ca_file, user=object_id(email), owner_email=email)


def test_a_persons_calendar_is_read_and_written_app_only_at_their_user_path(
        company: GraphSandbox) -> None:
    app = company.register_app()
    assert app.secret is not None
    tokens = _tokens(company, app.client_id, app.secret)
    dana = _calendar_of(company, tokens, DANA)
    calendars = dana.list_calendars()
    assert calendars[0].is_primary and calendars[0].time_zone == "Europe/London"
    now = datetime.now(UTC)
    pages = list(dana.list_changes(calendars[0].id, None, window_start=now,
                                   window_end=now + timedelta(days=21)))
    one_on_one = next(e for p in pages for e in p.events if e.title == "Dana/Lee 1:1")
    written = dana.patch_description(calendars[0].id, one_on_one.id, description="Agenda",
                                     is_html=False, etag=one_on_one.etag)
    assert "Agenda" in written.description
    busy = dana.free_busy([LEE], now, now + timedelta(days=7))
    assert LEE in busy.busy
    api = [r for r in company.requests() if r.path.startswith("/v1.0/")]
    assert api and all(r.path.startswith(f"/v1.0/users/{object_id(DANA)}") for r in api)
    assert {r.user for r in api} == {DANA} and {r.status for r in api} == {200}
    assert _token_calls(company) == 1


def test_a_mailbox_outside_the_access_policy_is_forbidden_and_others_are_not(
        company: GraphSandbox) -> None:
    app = company.register_app()
    assert app.secret is not None
    company.restrict_app(app.client_id, [LEE])
    tokens = _tokens(company, app.client_id, app.secret)
    assert _calendar_of(company, tokens, LEE).list_calendars()
    with pytest.raises(Forbidden, match="AccessPolicy"):
        _calendar_of(company, tokens, DANA).list_calendars()


def test_an_app_without_calendar_permission_gets_access_denied(company: GraphSandbox) -> None:
    app = company.register_app(permissions=(USERS, MAILBOX_SETTINGS))
    assert app.secret is not None
    dana = _calendar_of(company, _tokens(company, app.client_id, app.secret), DANA)
    with pytest.raises(Forbidden, match="ErrorAccessDenied"):
        dana.get_event("primary", "any")


def test_a_revoked_app_grant_raises_auth_revoked_for_graph_calls_and_new_tokens(
        company: GraphSandbox) -> None:
    app = company.register_app()
    assert app.secret is not None
    dana = _calendar_of(company, _tokens(company, app.client_id, app.secret), DANA)
    dana.list_calendars()
    company.revoke_app(app.client_id)
    with pytest.raises(AuthRevoked, match="InvalidAuthenticationToken"):
        dana.list_calendars()
    with pytest.raises(AuthRevoked, match="AADSTS7000215"):
        _tokens(company, app.client_id, app.secret)()
