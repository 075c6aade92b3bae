"""MSAL against the sandbox's fake Entra authority; revoked grants become AuthRevoked."""

from __future__ import annotations

import pytest
from connector_cases import CLIENT_ID

from connectors.errors import AuthRevoked
from connectors.microsoft.auth import MsalTokenProvider, is_microsoft_authority
from sandbox.team import DOMAIN

DANA = f"dana@{DOMAIN}"


def test_msal_imports_a_refresh_token_and_gets_an_access_token_from_the_authority(graph_sandbox):
    provider = MsalTokenProvider(
        client_id=CLIENT_ID, authority=graph_sandbox.token_url, ca_file=graph_sandbox.ca_file
    )
    assert provider.import_refresh_token(f"sandbox-refresh-{DANA}") == DANA
    token = provider()
    assert token and provider() == token  # second call served from the cache
    token_calls = [r for r in graph_sandbox.requests() if r.path.endswith("/oauth2/v2.0/token")]
    assert len(token_calls) == 1


def test_token_cache_survives_serialization(graph_sandbox, graph_token_provider_for):
    state = graph_token_provider_for(DANA).serialize()
    again = MsalTokenProvider(
        client_id=CLIENT_ID,
        authority=graph_sandbox.token_url,
        ca_file=graph_sandbox.ca_file,
        cache_state=state,
    )
    assert again.access_token(force_refresh=True).startswith("sandbox-at-")


def test_device_code_flow_signs_a_person_in(graph_sandbox):
    provider = MsalTokenProvider(
        client_id=CLIENT_ID, authority=graph_sandbox.token_url, ca_file=graph_sandbox.ca_file
    )
    flow = provider.device_flow_start()
    assert flow["user_code"] in flow["message"]
    graph_sandbox.approve_device_code(flow["user_code"], DANA)
    assert provider.device_flow_finish(flow) == DANA and provider()


def test_revoked_grant_raises_auth_revoked_for_graph_calls_and_refresh(
    graph_sandbox, graph_token_provider_for, graph_connector_for
):
    connector = graph_connector_for(DANA)
    provider = graph_token_provider_for(DANA)
    connector.list_calendars()
    graph_sandbox.revoke(DANA)
    with pytest.raises(AuthRevoked, match="InvalidAuthenticationToken"):
        connector.list_calendars()
    with pytest.raises(AuthRevoked, match="invalid_grant"):
        provider.access_token(force_refresh=True)


def test_unknown_refresh_token_is_refused_with_a_clear_error(graph_sandbox):
    provider = MsalTokenProvider(
        client_id=CLIENT_ID, authority=graph_sandbox.token_url, ca_file=graph_sandbox.ca_file
    )
    with pytest.raises(AuthRevoked, match="sign in again"):
        provider.import_refresh_token("not-a-grant")


def test_only_microsoft_hosts_keep_authority_validation():
    assert is_microsoft_authority("https://login.microsoftonline.com/organizations")
    assert not is_microsoft_authority("https://127.0.0.1:8443/rapport-sandbox")


def _open_connections(provider: MsalTokenProvider) -> int:
    return sum(len(adapter.poolmanager.pools) for adapter in provider._session.adapters.values())


def test_msal_keeps_no_authority_connection_open_between_token_requests(graph_sandbox):
    """A process keeps thousands of these providers and each asks the authority about once
    an hour: an idle TLS connection apiece held ~280 KB (docs/benchmarks.md)."""
    provider = MsalTokenProvider(
        client_id=CLIENT_ID, authority=graph_sandbox.token_url, ca_file=graph_sandbox.ca_file
    )
    assert _open_connections(provider) == 0  # the authority's metadata was read at build time
    provider.import_refresh_token(f"sandbox-refresh-{DANA}")
    assert _open_connections(provider) == 0
    assert provider.access_token(force_refresh=True).startswith("sandbox-at-")  # reopened
    assert _open_connections(provider) == 0
