"""Fixtures for the Microsoft 365 side: one HTTPS Graph sandbox per session, reset per test.

Wire into conftest.py with ``from conftest_microsoft import *  # noqa: F401,F403`` (or
import the fixtures in a test module).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.microsoft import GraphConnector
from connectors.microsoft.auth import MsalTokenProvider
from connectors.microsoft.client import RetryPolicy
from connectors.retry import MAX_SLEEP_PER_CALL
from sandbox import team
from sandbox.microsoft import GraphSandbox

CLIENT_ID = "rapport-tests"


class SleepRecorder:
    """An injectable sleep that records what it was asked to wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def graph_sleeps() -> SleepRecorder:
    """What the connectors made by `graph_connector_for` slept."""
    return SleepRecorder()


@pytest.fixture
def graph_token_provider_for(graph_sandbox: GraphSandbox) -> Callable[[str], MsalTokenProvider]:
    """Real MSAL against the sandbox authority, the person's grant imported."""

    def make(email: str) -> MsalTokenProvider:
        provider = MsalTokenProvider(
            client_id=CLIENT_ID, authority=graph_sandbox.token_url, ca_file=graph_sandbox.ca_file
        )
        provider.import_refresh_token(team.person(email).refresh_token)
        return provider

    return make


@pytest.fixture
def graph_connector_for(
    graph_sandbox: GraphSandbox,
    graph_token_provider_for: Callable[[str], MsalTokenProvider],
    graph_sleeps: SleepRecorder,
) -> Iterator[Callable[..., GraphConnector]]:
    """`graph_connector_for(email, page_size=, attempts=, budget=)`: a connector for a seeded
    person (`budget`: seconds one call may sleep, the production default unless given)."""
    made: list[GraphConnector] = []

    def make(email: str, *, page_size: int = 100, attempts: int = 4,
             budget: float = MAX_SLEEP_PER_CALL) -> GraphConnector:
        connector = GraphConnector(
            token_provider=graph_token_provider_for(email),
            api_url=graph_sandbox.base_url,
            verify=graph_sandbox.ca_file,
            owner_email=email,
            page_size=page_size,
            retry=RetryPolicy(attempts=attempts, budget=budget, sleep=graph_sleeps),
        )
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


def sync_window(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The window a full sync reads: four weeks back, 120 days ahead (the settings' defaults)."""
    now = now or datetime.now(UTC)
    return now - timedelta(days=28), now + timedelta(days=120)
