"""Fixtures for connector tests: the provider sandboxes and connectors built on them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.google import GoogleConnector, google_credentials
from connectors.sandbox.google import GoogleSandbox
from connectors.sandbox.team import person

# ======================================================================================
# Google
# ======================================================================================


@pytest.fixture(scope="session")
def google_sandbox_server() -> Iterator[GoogleSandbox]:
    """One Google sandbox server for the whole session."""
    sandbox = GoogleSandbox().start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def google_sandbox(google_sandbox_server: GoogleSandbox) -> GoogleSandbox:
    """The Google sandbox, back to the seeded team for this test."""
    google_sandbox_server.reset()
    return google_sandbox_server


class RecordingSleep:
    """A sleep that only remembers how long it was asked to wait."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


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


# ======================================================================================
# Microsoft (fixtures of the Microsoft connector go below)
# ======================================================================================
