"""Rapport started in one process on the seeded team of both sandboxes, first sync done:
the common start of the benchmarks that measure a long-running service's steady state
(bench_faults, bench_push). Not collected by pytest."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import SecretStr

from application.context import Started, start
from sandbox.google import GoogleSandbox
from sandbox.microsoft import GraphSandbox
from sandbox.team import Person
from service.accounts.crypto import Vault
from service.calendars.onboarding import connect_with_refresh_token
from service.settings import Settings
from workers import actors
from workers.inprocess import run_until_idle

Sandboxes = dict[str, GoogleSandbox | GraphSandbox]


def start_on(folder: Path, sandboxes: Sandboxes, *, poll_every: int) -> tuple[Started, Vault]:
    """Settings pointing at both sandboxes (SQLite and the .eml outbox in `folder`)."""
    google, graph = sandboxes["google"], sandboxes["microsoft"]
    settings = Settings(
        data_dir=folder, secret_key=SecretStr(Fernet.generate_key().decode()),
        google_api_url=google.base_url, google_token_url=google.token_url,
        graph_api_url=graph.base_url, microsoft_authority=graph.token_url,
        ca_bundle=Path(graph.ca_file), poll_interval_seconds=poll_every)
    return start(settings), Vault.from_settings(settings)


def connect_and_sync(started: Started, vault: Vault, people: Iterable[Person]) -> None:
    """Connect `people` through the import path, sync them all, then run one reconcile
    (agenda writes; push channels too when the runtime's settings have a public URL)."""
    runtime, broker = started.runtime, started.broker
    for who in people:
        with runtime.factory.begin() as session:
            connect_with_refresh_token(session, settings=runtime.settings, vault=vault,
                                       provider=who.provider, client_id="bench",
                                       client_secret="bench", refresh_token=who.refresh_token)
    actors.sync_all_accounts()
    run_until_idle(broker, threads=2, timeout=300)
    actors.reconcile.send()
    run_until_idle(broker, threads=2, timeout=300)
