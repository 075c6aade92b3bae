"""End-to-end harness: real database, real actors on a real broker, real provider clients
over HTTP to the sandboxes. Nothing of ours is faked.

By default SQLite and dramatiq's StubBroker; with RAPPORT_TEST_DATABASE_URL (PostgreSQL) and
RAPPORT_TEST_BROKER_URL (Redis) the same tests run on the production parts (see .ci/run).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import dramatiq
import pytest
import uvicorn
from cryptography.fernet import Fernet
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from application.context import start
from application.web.app import create_app
from application.web.webhooks import webhook_router
from sandbox.admin import SandboxAdmin
from sandbox.google import GoogleSandbox
from sandbox.microsoft import GraphSandbox
from sandbox.team import PEOPLE, person
from service.accounts.crypto import Vault
from service.calendars.models import ProviderCallLog
from service.calendars.onboarding import connect_with_refresh_token
from service.db import Base
from service.settings import Settings
from workers import actors
from workers.inprocess import run_until_idle
from workers.pending import forget_pending
from workers.runtime import Runtime

CLIENT_ID = "rapport-tests"


@dataclass
class Clock:
    """The time actors see; tests move it."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Harness:
    """Rapport running in-process against both sandboxes."""

    runtime: Runtime
    broker: dramatiq.Broker
    google: GoogleSandbox
    graph: GraphSandbox
    clock: Clock

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    def sandbox(self, provider: str) -> SandboxAdmin:
        """The sandbox that hosts `provider`."""
        return cast(SandboxAdmin, self.google if provider == "google" else self.graph)

    def horizon_end(self) -> datetime:
        """The end of the agenda horizon as of now."""
        return self.clock() + timedelta(days=self.settings.agenda_horizon_days)

    def session(self) -> Session:
        """A session on the test database (close it: SQLite writers wait on open ones)."""
        return self.runtime.factory()

    def connect(self, email: str) -> int:
        """Connect a seeded person through the same import paths operators use."""
        who = person(email)
        vault = Vault.from_settings(self.settings)
        with self.runtime.factory.begin() as session:
            account = connect_with_refresh_token(
                session, settings=self.settings, vault=vault, provider=who.provider,
                client_id=CLIENT_ID, client_secret="test-secret",
                refresh_token=who.refresh_token)
            return account.id

    def connect_team(self) -> list[int]:
        """Connect every seeded (non-room) person."""
        return [self.connect(p.email) for p in PEOPLE if not p.is_room]

    def sync(self) -> None:
        """Send a sync for every active account and run all resulting work to completion."""
        actors.sync_all_accounts()
        self.run()

    def run(self) -> None:
        """Let the worker drain every queue."""
        run_until_idle(self.broker, threads=2, timeout=120)

    def provider_calls(self, *, operation: str | None = None) -> int:
        """Provider calls recorded so far (optionally of one operation)."""
        with self.session() as session:
            query = select(func.count()).select_from(ProviderCallLog)
            if operation:
                query = query.where(ProviderCallLog.operation == operation)
            return session.scalar(query) or 0


_SCHEMA_READY: set[str] = set()


def _fresh_postgres(url: str) -> None:
    """The schema is rebuilt once per session (migrations run on it); between tests every
    table is emptied, which is much cheaper than migrating again."""
    engine = create_engine(url)
    with engine.begin() as conn:
        if url not in _SCHEMA_READY:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
            _SCHEMA_READY.add(url)
        else:
            tables = [t for t in Base.metadata.sorted_tables]
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables)
                              + " RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def harness(tmp_path: Path, google_sandbox: GoogleSandbox,
            graph_sandbox: GraphSandbox) -> Iterator[Harness]:
    """Rapport with a fresh database and broker, pointed at freshly reset sandboxes."""
    database_url = os.environ.get("RAPPORT_TEST_DATABASE_URL")
    if database_url:
        _fresh_postgres(database_url)
    broker_url = os.environ.get("RAPPORT_TEST_BROKER_URL")
    settings = Settings(
        data_dir=tmp_path, database_url=database_url, broker_url=broker_url,
        secret_key=SecretStr(Fernet.generate_key().decode()),
        google_api_url=google_sandbox.base_url, google_token_url=google_sandbox.token_url,
        graph_api_url=graph_sandbox.base_url, microsoft_authority=graph_sandbox.token_url,
        ca_bundle=Path(graph_sandbox.ca_file),
    )
    clock = Clock()
    started = start(settings, clock=clock)
    if broker_url:
        started.broker.flush_all()
        forget_pending(started.broker)  # the marks of the copies just purged
    yield Harness(started.runtime, started.broker, google_sandbox, graph_sandbox, clock)
    if broker_url:
        started.broker.flush_all()
        started.broker.close()
    started.runtime.engine.dispose()


@dataclass(frozen=True)
class ProviderCase:
    """A 1:1 hosted entirely at one provider: what the parity suite runs over."""

    provider: str
    series_key: str
    manager: str
    report: str


CASES = {
    "google": ProviderCase("google", "maya-sam", "maya@acme.test", "sam@acme.test"),
    "microsoft": ProviderCase("microsoft", "dana-lee", "dana@acme.test", "lee@acme.test"),
}


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> ProviderCase:
    """Each behaviour test runs once per provider."""
    return CASES[request.param]


# the default public base of the links: the agenda page's test client is served from it
ORIGIN = "http://127.0.0.1:8000"


@pytest.fixture
def client(harness: Harness) -> Iterator[TestClient]:
    """The web app (agenda pages and the rest) in process, its writes sent to the broker."""
    app = create_app(harness.settings, harness.runtime.factory, clock=harness.clock,
                     enqueue_write=actors.write_agenda.send)
    with TestClient(app, base_url=ORIGIN, follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def public_url(harness: Harness) -> Iterator[str]:
    """Our webhook endpoints served on a free local port, as they would be in production."""
    app = FastAPI()
    app.include_router(webhook_router(factory=harness.runtime.factory,
                                      vault=Vault.from_settings(harness.settings),
                                      enqueue_sync=actors.sync_calendar.send,
                                      enqueue_renew=actors.renew_channel.send))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    harness.runtime.settings = harness.settings.model_copy(update={"public_url": url})
    yield url
    server.should_exit = True
    thread.join(timeout=5)
