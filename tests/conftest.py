"""Fixtures every test folder shares: the provider sandboxes (one per session, reset per
test) and a database (SQLite in a temporary folder; PostgreSQL for integration tests)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.google import GoogleSandbox
from sandbox.microsoft import GraphSandbox
from service.db import make_engine, migrate


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated like production, once per session: each test gets a copy."""
    path = tmp_path_factory.mktemp("schema") / "rapport.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def google_sandbox_server() -> Iterator[GoogleSandbox]:
    """One Google Calendar sandbox server for the whole session."""
    sandbox = GoogleSandbox().start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def google_sandbox(google_sandbox_server: GoogleSandbox) -> GoogleSandbox:
    """The Google sandbox, back to the seeded team for this test."""
    google_sandbox_server.reset()
    return google_sandbox_server


@pytest.fixture(scope="session")
def graph_sandbox_server() -> Iterator[GraphSandbox]:
    """One Microsoft Graph sandbox server (HTTPS, test CA) for the whole session."""
    sandbox = GraphSandbox().start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def graph_sandbox(graph_sandbox_server: GraphSandbox) -> GraphSandbox:
    """The Graph sandbox, back to the seeded team for this test."""
    graph_sandbox_server.reset()
    return graph_sandbox_server


def required_service_url(variable: str) -> str:
    """An integration service URL: skipped locally when unset, a failure under CI."""
    url = os.environ.get(variable)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{variable} must be set when CI is set")
        pytest.skip(f"{variable} not set")
    return url
