"""Fixtures for connector tests: the provider sandboxes and connectors built on them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connectors.google import GoogleConnector, google_credentials
from sandbox.google import GoogleSandbox
from sandbox.team import person

# ======================================================================================
# Google
# ======================================================================================


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
# Microsoft
# ======================================================================================

from conftest_microsoft import (  # noqa: E402,F401
    SleepRecorder,
    graph_connector_for,
    graph_sleeps,
    graph_token_provider_for,
)
