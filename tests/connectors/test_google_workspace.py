"""A Google Workspace company grant through the real google-auth service-account credentials
and google-api-python-client's ``admin directory_v1``, over HTTP to the sandbox: the
JWT-bearer grant, the Directory API and calendars read as each person."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.errors import AuthRevoked, DelegationRefused, Forbidden, Transient
from connectors.google.auth import (
    CALENDAR_SCOPES,
    DIRECTORY_MEMBERS_SCOPE,
    DIRECTORY_USERS_SCOPE,
    delegated_credentials,
)
from connectors.google.directory import GoogleDirectory
from connectors.google.provider import GoogleConnector
from connectors.retry import RetryPolicy
from sandbox.google import GoogleSandbox
from sandbox.google.company import ADMIN_EMAIL, build_company
from sandbox.google.workspace import GOOGLE_TOKEN_AUDIENCE, JWT_BEARER, sign_assertion

ALL_SCOPES = [*CALENDAR_SCOPES, DIRECTORY_USERS_SCOPE, DIRECTORY_MEMBERS_SCOPE]


def _root(sandbox: GoogleSandbox) -> str:
    """What RAPPORT_GOOGLE_DIRECTORY_URL is set to for the sandbox."""
    return sandbox.base_url.removesuffix("calendar/v3/")


@pytest.fixture
def key(google_sandbox: GoogleSandbox) -> dict[str, Any]:
    """A service account key the admin authorised for every scope Rapport asks for."""
    key = google_sandbox.mint_service_account_key()
    google_sandbox.authorise_delegation(key["client_id"], ALL_SCOPES)
    return key


def _directory(sandbox: GoogleSandbox, key: dict[str, Any], *, admin: str = ADMIN_EMAIL,
               **kwargs: Any) -> GoogleDirectory:
    scopes = [DIRECTORY_USERS_SCOPE] + ([DIRECTORY_MEMBERS_SCOPE] if "group" in kwargs else [])
    return GoogleDirectory(delegated_credentials(key, admin, scopes), api_url=_root(sandbox),
                           retry=RetryPolicy(attempts=1), **kwargs)


def _everyone(directory: GoogleDirectory) -> tuple[list[str], int]:
    emails: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = directory.list_people(token)
        pages += 1
        emails += [p.email for p in page.people]
        token = page.next_page_token
        if token is None:
            return emails, pages


def test_the_company_grant_lists_the_whole_directory_page_by_page(
        google_sandbox: GoogleSandbox, key: dict[str, Any]) -> None:
    for n in range(55):
        google_sandbox.add_directory_user(f"person{n:02d}@acme.test", f"Person {n}",
                                          manager="maya@acme.test")
    directory = _directory(google_sandbox, key, page_size=20)

    emails, pages = _everyone(directory)

    assert pages == 3  # 60 people at 20 a page
    assert sorted(emails) == sorted(google_sandbox.runtime.workspace.users)
    listed = [r for r in google_sandbox.requests() if r.path.endswith("/directory/v1/users")]
    assert [r.query.get("customer") for r in listed] == ["my_customer"] * 3
    assert sum("pageToken" in r.query for r in listed) == 2
    assert {r.user for r in listed} == {ADMIN_EMAIL}  # acting as the admin


def test_a_person_carries_name_suspension_and_manager_from_the_directory(
        google_sandbox: GoogleSandbox, key: dict[str, Any]) -> None:
    google_sandbox.suspend_user("alex@acme.test")

    people = {p.email: p for p in _directory(google_sandbox, key).list_people().people}

    assert people["sam@acme.test"].name == "Sam Rivera"
    assert people["sam@acme.test"].manager_email == "maya@acme.test"
    assert people["maya@acme.test"].manager_email is None
    assert people["alex@acme.test"].suspended and not people["sam@acme.test"].suspended
    assert people["sam@acme.test"].id.isdigit()


def test_an_org_unit_narrows_the_directory_to_it_and_the_units_below(
        google_sandbox: GoogleSandbox, key: dict[str, Any]) -> None:
    google_sandbox.add_directory_user("ana@acme.test", "Ana Sales", org_unit="/Sales EU")
    google_sandbox.add_directory_user("bo@acme.test", "Bo Sales", org_unit="/Sales EU/Nordics")
    google_sandbox.add_directory_user("cy@acme.test", "Cy Other", org_unit="/Sales EUX")

    emails, _ = _everyone(_directory(google_sandbox, key, org_unit="/Sales EU"))

    assert sorted(emails) == ["ana@acme.test", "bo@acme.test"]
    [listed] = [r for r in google_sandbox.requests() if r.path.endswith("/users")]
    assert listed.query["query"] == "orgUnitPath='/Sales EU'"


def test_a_group_grant_lists_the_group_members_with_their_details(
        google_sandbox: GoogleSandbox, key: dict[str, Any]) -> None:
    google_sandbox.add_group("pilot@acme.test", ["maya@acme.test", "sam@acme.test"])

    people = _directory(google_sandbox, key, group="pilot@acme.test").list_people().people

    assert {(p.email, p.manager_email) for p in people} == {
        ("maya@acme.test", None), ("sam@acme.test", "maya@acme.test")}


def test_a_directory_page_failing_half_way_is_a_connector_error_and_resumes_from_its_token(
        google_sandbox: GoogleSandbox, key: dict[str, Any]) -> None:
    directory = _directory(google_sandbox, key, page_size=2)
    first = directory.list_people()
    assert first.next_page_token is not None
    google_sandbox.fail_directory_page(1, status=503)

    with pytest.raises(Transient):
        directory.list_people(first.next_page_token)

    google_sandbox.fail_directory_page(1, status=None)
    second = directory.list_people(first.next_page_token)
    assert second.people and {p.email for p in second.people}.isdisjoint(
        {p.email for p in first.people})


def test_scopes_the_admin_did_not_authorise_are_refused_as_unauthorized_client(
        google_sandbox: GoogleSandbox) -> None:
    key = google_sandbox.mint_service_account_key()
    google_sandbox.authorise_delegation(key["client_id"], list(CALENDAR_SCOPES))

    with pytest.raises(DelegationRefused):
        _directory(google_sandbox, key).list_people()


def test_a_subject_who_is_not_an_admin_gets_the_directory_403(
        google_sandbox: GoogleSandbox, key: dict[str, Any]) -> None:
    with pytest.raises(Forbidden):
        _directory(google_sandbox, key, admin="sam@acme.test").list_people()


@pytest.mark.parametrize("subject", ["nobody@acme.test", "suspended"])
def test_a_subject_unknown_or_suspended_is_refused_as_invalid_grant(
        google_sandbox: GoogleSandbox, key: dict[str, Any], subject: str) -> None:
    if subject == "suspended":
        google_sandbox.suspend_user("sam@acme.test")
        subject = "sam@acme.test"
    connector = GoogleConnector(delegated_credentials(key, subject, CALENDAR_SCOPES),
                                api_url=google_sandbox.base_url, max_attempts=1)

    with pytest.raises(AuthRevoked) as raised:
        connector.list_calendars()
    assert not isinstance(raised.value, DelegationRefused)


def test_each_person_s_calendar_is_read_as_that_person(
        google_sandbox: GoogleSandbox, key: dict[str, Any]) -> None:
    for email in ("maya@acme.test", "sam@acme.test"):
        connector = GoogleConnector(delegated_credentials(key, email, CALENDAR_SCOPES),
                                    api_url=google_sandbox.base_url)
        [calendar] = connector.list_calendars()
        assert calendar.owner_email == email
    grants = [r for r in google_sandbox.requests() if r.path == "/token"]
    assert [r.user for r in grants] == ["maya@acme.test", "sam@acme.test"]


def test_a_directory_only_token_cannot_read_calendars(
        google_sandbox: GoogleSandbox, key: dict[str, Any]) -> None:
    connector = GoogleConnector(
        delegated_credentials(key, "maya@acme.test", [DIRECTORY_USERS_SCOPE]),
        api_url=google_sandbox.base_url, max_attempts=1)

    with pytest.raises(Forbidden):
        connector.list_calendars()


def _token(sandbox: GoogleSandbox, assertion: str) -> httpx.Response:
    return httpx.post(sandbox.token_url, data={"grant_type": JWT_BEARER, "assertion": assertion})


def _claims(key: dict[str, Any], **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": key["client_email"], "sub": "maya@acme.test",
              "scope": " ".join(CALENDAR_SCOPES), "aud": GOOGLE_TOKEN_AUDIENCE,
              "iat": now, "exp": now + 3600}
    claims.update(changes)
    return claims


def _other_private_key() -> str:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption()).decode()


def test_an_assertion_signed_with_another_key_is_refused(
        google_sandbox: GoogleSandbox, key: dict[str, Any]) -> None:
    forged = sign_assertion(_claims(key), _other_private_key())

    answer = _token(google_sandbox, forged)

    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_grant",
                             "error_description": "Invalid JWT Signature."}
    # and through google-auth, a key file with the right address but a foreign key
    impostor = dict(key, private_key=_other_private_key())
    connector = GoogleConnector(delegated_credentials(impostor, "maya@acme.test",
                                                      CALENDAR_SCOPES),
                                api_url=google_sandbox.base_url, max_attempts=1)
    with pytest.raises(AuthRevoked):
        connector.list_calendars()
    assert all(r.status != 200 for r in google_sandbox.requests() if r.path == "/token")


def test_the_genuine_assertion_is_accepted_and_acts_as_its_subject(
        google_sandbox: GoogleSandbox, key: dict[str, Any]) -> None:
    answer = _token(google_sandbox, sign_assertion(_claims(key), key["private_key"]))

    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    listed = httpx.get(f"{google_sandbox.base_url}users/me/calendarList",
                       headers={"Authorization": f"Bearer {token}"})
    assert listed.json()["items"][0]["id"] == "maya@acme.test"


@pytest.mark.parametrize(("iat", "exp", "aud"), [
    (0, 7200, GOOGLE_TOKEN_AUDIENCE),  # lives longer than an hour
    (-3000, -10, GOOGLE_TOKEN_AUDIENCE),  # already expired
    (0, 3600, "https://elsewhere.example/token"),  # meant for another token endpoint
])
def test_an_assertion_outside_its_time_or_audience_is_refused(
        google_sandbox: GoogleSandbox, key: dict[str, Any], iat: int, exp: int,
        aud: str) -> None:
    now = int(time.time())
    claims = _claims(key, iat=now + iat, exp=now + exp, aud=aud)

    answer = _token(google_sandbox, sign_assertion(claims, key["private_key"]))

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


def test_a_generated_company_is_three_levels_deep_and_lists_at_google_s_page_size() -> None:
    company = build_company(620)
    by_email = {e.email: e for e in company.directory}

    def depth(email: str) -> int:
        manager = by_email[email].manager
        return 0 if manager is None else 1 + depth(manager)

    assert len(company.directory) == 621  # and the IT admin
    assert max(depth(e.email) for e in company.directory) == 3
    assert [e.email for e in company.directory if e.suspended] == [company.suspended]
    report, new_manager = company.manager_change
    assert by_email[report].manager not in (None, new_manager)
    organisers = {s.organizer for s in company.population.series}
    assert set(company.self_organised) <= organisers
    pairs = {frozenset((s.organizer, *s.attendees)) for s in company.population.series}
    assert company.uncovered and all(frozenset((r, by_email[r].manager)) not in pairs
                                     for r in company.uncovered)  # no 1:1 with their manager
    with GoogleSandbox(population=company.population, directory=company.directory) as sandbox:
        key = sandbox.mint_service_account_key()
        sandbox.authorise_delegation(key["client_id"], [DIRECTORY_USERS_SCOPE])
        directory = GoogleDirectory(
            delegated_credentials(key, company.admin, [DIRECTORY_USERS_SCOPE]),
            api_url=_root(sandbox))

        emails, pages = _everyone(directory)

        assert pages == 2  # 621 people at the documented maximum of 500 a page
        assert sorted(emails) == sorted(by_email)
        sandbox.authorise_delegation(key["client_id"], [DIRECTORY_USERS_SCOPE, *CALENDAR_SCOPES])
        connector = GoogleConnector(delegated_credentials(key, report, CALENDAR_SCOPES),
                                    api_url=sandbox.base_url)
        [calendar] = connector.list_calendars()
        assert calendar.owner_email == report  # every person of the company has a calendar
