"""Fixtures for connector tests: real connectors over HTTP to the provider sandboxes, the
in-memory connector, and `connector_case`, which runs the contract suite over all three."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from http.server import HTTPServer
from threading import Thread
from typing import Any

import pytest
from connector_cases import (
    CASE_NAMES,
    CLIENT_ID,
    ConnectorCase,
    Receiver,
    RecordingSleep,
    Webhook,
    google_case,
    graph_case,
    memory_case,
)

from connectors.base import CallObserver
from connectors.google import GoogleConnector, google_credentials
from connectors.microsoft import GraphConnector
from connectors.microsoft.app_auth import AppTokenProvider, tenant_authority
from connectors.microsoft.auth import MsalTokenProvider
from connectors.microsoft.client import RetryPolicy
from connectors.retry import MAX_SLEEP_PER_CALL
from sandbox.google import GoogleSandbox
from sandbox.memory import MemoryWorld
from sandbox.microsoft import GraphSandbox
from sandbox.microsoft.company import company_users
from sandbox.microsoft.model import object_id
from sandbox.team import person

# -- Google -------------------------------------------------------------------------------


@pytest.fixture
def google_sleep() -> RecordingSleep:
    """The sleep handed to Google connectors built by `google_connector_for`."""
    return RecordingSleep()


@pytest.fixture
def google_connector_for(
    google_sandbox: GoogleSandbox, google_sleep: RecordingSleep
) -> Callable[..., GoogleConnector]:
    """Factory: a `GoogleConnector` for a seeded person, over HTTP to the sandbox."""

    def make(email: str, **kwargs: Any) -> GoogleConnector:
        credentials = google_credentials(
            person(email).refresh_token, "sandbox-client", "sandbox-secret",
            google_sandbox.token_url,
        )
        kwargs.setdefault("sleep", google_sleep)
        return GoogleConnector(credentials, api_url=google_sandbox.base_url, **kwargs)

    return make


# -- Microsoft ----------------------------------------------------------------------------


@pytest.fixture
def graph_sleeps() -> RecordingSleep:
    """What the connectors made by `graph_connector_for` slept."""
    return RecordingSleep()


@pytest.fixture
def graph_token_provider_for(graph_sandbox: GraphSandbox) -> Callable[[str], MsalTokenProvider]:
    """Real MSAL against the sandbox authority, the person's grant imported."""

    def make(email: str) -> MsalTokenProvider:
        provider = MsalTokenProvider(
            client_id=CLIENT_ID, authority=graph_sandbox.token_url, ca_file=graph_sandbox.ca_file
        )
        provider.import_refresh_token(person(email).refresh_token)
        return provider

    return make


@pytest.fixture
def graph_connector_for(
    graph_sandbox: GraphSandbox,
    graph_token_provider_for: Callable[[str], MsalTokenProvider],
    graph_sleeps: RecordingSleep,
) -> Iterator[Callable[..., GraphConnector]]:
    """`graph_connector_for(email, page_size=, attempts=, observer=, budget=)`: a connector for
    a seeded person (`budget`: seconds one call may sleep, the production cap unless given)."""
    yield from _graph_connectors(
        graph_sandbox, graph_sleeps,
        lambda email: {"token_provider": graph_token_provider_for(email)})


@pytest.fixture
def graph_app_connector_for(
    graph_sandbox: GraphSandbox, graph_sleeps: RecordingSleep,
) -> Iterator[Callable[..., GraphConnector]]:
    """Like `graph_connector_for`, app-only: the seeded team's tenant with an app registered
    (client secret, admin consent), each person's calendar at ``/users/{id}``, one token."""
    graph_sandbox.seed_company(company_users(40))
    app = graph_sandbox.register_app()
    assert app.secret is not None
    tokens = AppTokenProvider(client_id=app.client_id,
                              authority=tenant_authority(graph_sandbox.token_url, app.tenant),
                              credential=app.secret, ca_file=graph_sandbox.ca_file)
    yield from _graph_connectors(
        graph_sandbox, graph_sleeps,
        lambda email: {"token_provider": tokens, "user": object_id(email)})


def _graph_connectors(sandbox: GraphSandbox, sleeps: RecordingSleep,
                      access: Callable[[str], dict[str, Any]]
                      ) -> Iterator[Callable[..., GraphConnector]]:
    """`make(email, page_size=, attempts=, observer=, budget=)` over the sandbox, with the
    person's `access` (token provider, and user path when app-only); closes what it made."""
    made: list[GraphConnector] = []

    def make(email: str, *, page_size: int = 100, attempts: int = 4,
             observer: CallObserver | None = None,
             budget: float = MAX_SLEEP_PER_CALL) -> GraphConnector:
        connector = GraphConnector(
            api_url=sandbox.base_url, verify=sandbox.ca_file, owner_email=email,
            page_size=page_size, observer=observer,
            retry=RetryPolicy(attempts=attempts, budget=budget, sleep=sleeps), **access(email))
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


# -- the contract suite's cases -----------------------------------------------------------

@pytest.fixture(params=CASE_NAMES)
def connector_case(request: pytest.FixtureRequest) -> ConnectorCase:
    """Each contract test runs over the Google and Graph connectors (real clients, HTTP to
    the sandboxes) and the in-memory connector; sandboxes are only started when needed."""
    if request.param == "google":
        return google_case(request.getfixturevalue("google_sandbox"),
                            request.getfixturevalue("google_connector_for"),
                            request.getfixturevalue("google_sleep"))
    if request.param in ("microsoft", "microsoft-app"):
        make = "graph_connector_for" if request.param == "microsoft" else \
            "graph_app_connector_for"
        return graph_case(request.getfixturevalue("graph_sandbox"),
                          request.getfixturevalue(make),
                          request.getfixturevalue("graph_sleeps"), name=request.param)
    return memory_case(MemoryWorld())


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A webhook receiver on a free local port, for subscription tests."""
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Receiver", (Receiver,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    Thread(target=server.serve_forever, daemon=True).start()
    yield Webhook(f"http://127.0.0.1:{server.server_port}/hooks/calendar", received)
    server.shutdown()
    server.server_close()
