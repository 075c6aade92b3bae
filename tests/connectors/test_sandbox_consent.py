"""The sandboxes' consent screens and authorization_code grants speak the documented shapes:
registered redirect URIs only, single-use codes, PKCE S256 checked, the client proven; the
Microsoft side driven through MSAL, which checks state and the id_token nonce itself."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from connectors.errors import ConnectorError
from connectors.microsoft.auth import MsalTokenProvider
from sandbox.google import GoogleSandbox
from sandbox.microsoft import GraphSandbox

REDIRECT = "http://127.0.0.1:9/connect/callback"
MAYA, DANA = "maya@acme.test", "dana@acme.test"


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _google_code(sandbox: GoogleSandbox, verifier: str, *, decision: str = "allow") -> dict:
    origin = sandbox.token_url.removesuffix("/token")
    answer = httpx.post(f"{origin}/o/oauth2/v2/auth/decide", data={
        "client_id": "web", "redirect_uri": REDIRECT, "scope": "calendar", "state": "s1",
        "code_challenge": _challenge(verifier), "code_challenge_method": "S256",
        "user": MAYA, "decision": decision})
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _redeem(sandbox: GoogleSandbox, code: str, verifier: str, *,
            secret: str = "s3cret") -> httpx.Response:
    return httpx.post(sandbox.token_url, auth=("web", secret), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "code_verifier": verifier})


@pytest.fixture
def google(google_sandbox: GoogleSandbox) -> GoogleSandbox:
    google_sandbox.register_client("web", client_secret="s3cret", redirect_uris=[REDIRECT])
    return google_sandbox


def test_google_consent_screen_only_serves_registered_redirect_uris(google: GoogleSandbox
                                                                     ) -> None:
    ok = httpx.get(google.auth_url, params={"client_id": "web", "redirect_uri": REDIRECT,
                                            "response_type": "code", "scope": "a b",
                                            "state": "s", "login_hint": MAYA})
    assert ok.status_code == 200 and 'id="allow"' in ok.text
    assert f'value="{MAYA}" selected' in ok.text
    bad = httpx.get(google.auth_url, params={"client_id": "web", "response_type": "code",
                                             "redirect_uri": "https://evil.example/cb"})
    assert bad.status_code == 400 and "redirect_uri_mismatch" in bad.text


def test_google_code_grant_checks_pkce_and_is_single_use(google: GoogleSandbox) -> None:
    verifier = secrets.token_urlsafe(48)
    wrong = _redeem(google, _google_code(google, verifier)["code"], verifier + "x")
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")

    answer = _google_code(google, verifier)
    assert answer["state"] == "s1"
    first = _redeem(google, answer["code"], verifier)
    assert first.status_code == 200
    body = first.json()
    assert body["refresh_token"] and body["access_token"] and body["scope"] == "calendar"
    again = _redeem(google, answer["code"], verifier)
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")

    refreshed = httpx.post(google.token_url, data={"grant_type": "refresh_token",
                                                   "refresh_token": body["refresh_token"]})
    assert refreshed.status_code == 200  # the consent left a working grant behind


def test_google_code_grant_proves_the_client(google: GoogleSandbox) -> None:
    verifier = secrets.token_urlsafe(48)
    answer = _redeem(google, _google_code(google, verifier)["code"], verifier, secret="nope")
    assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client")


def test_google_denied_consent_redirects_with_access_denied(google: GoogleSandbox) -> None:
    answer = _google_code(google, "v" * 43, decision="deny")
    assert answer == {"error": "access_denied", "state": "s1"}


def _msal(graph: GraphSandbox) -> MsalTokenProvider:
    return MsalTokenProvider(client_id="public-web", authority=graph.token_url,
                             ca_file=graph.ca_file)


def _entra_answer(graph: GraphSandbox, flow: dict, *, decision: str = "allow") -> dict:
    query = {k: v[0] for k, v in parse_qs(urlsplit(flow["auth_uri"]).query).items()}
    page = httpx.get(flow["auth_uri"], verify=graph.ca_file)
    assert page.status_code == 200 and 'id="deny"' in page.text
    tenant = urlsplit(graph.token_url).path
    answer = httpx.post(f"{graph.token_url.removesuffix(tenant)}{tenant}/oauth2/v2.0/decide",
                        verify=graph.ca_file, data={**query, "user": DANA,
                                                    "decision": decision})
    assert answer.status_code == 302
    return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}


def test_msal_auth_code_flow_against_the_entra_sandbox(graph_sandbox: GraphSandbox) -> None:
    graph_sandbox.register_client("public-web", redirect_uris=[REDIRECT])
    tokens = _msal(graph_sandbox)
    flow = tokens.auth_code_flow_start(redirect_uri=REDIRECT, login_hint=DANA)
    assert "code_challenge_method=S256" in flow["auth_uri"] and "nonce=" in flow["auth_uri"]
    assert tokens.auth_code_flow_finish(flow, _entra_answer(graph_sandbox, flow)) == DANA
    assert tokens().startswith("sandbox-at-")  # MSAL's cache now holds the account


def test_entra_sandbox_refuses_a_wrong_verifier_and_a_declined_consent(
        graph_sandbox: GraphSandbox) -> None:
    graph_sandbox.register_client("public-web", redirect_uris=[REDIRECT])
    tokens = _msal(graph_sandbox)
    flow = tokens.auth_code_flow_start(redirect_uri=REDIRECT)
    answer = _entra_answer(graph_sandbox, flow)
    with pytest.raises(ConnectorError, match="invalid_grant"):
        tokens.auth_code_flow_finish(dict(flow, code_verifier="x" * 43), answer)
    with pytest.raises(ConnectorError, match="invalid_grant"):  # the code was used up
        tokens.auth_code_flow_finish(flow, answer)

    declined = _entra_answer(graph_sandbox, tokens.auth_code_flow_start(redirect_uri=REDIRECT),
                             decision="deny")
    assert declined["error"] == "access_denied" and "AADSTS65004" in declined[
        "error_description"]


def test_entra_sandbox_shows_an_error_page_for_an_unregistered_redirect(
        graph_sandbox: GraphSandbox) -> None:
    graph_sandbox.register_client("public-web", redirect_uris=[REDIRECT])
    flow = _msal(graph_sandbox).auth_code_flow_start(redirect_uri="https://evil.example/cb")
    page = httpx.get(flow["auth_uri"], verify=graph_sandbox.ca_file)
    assert page.status_code == 400 and "AADSTS50011" in page.text
