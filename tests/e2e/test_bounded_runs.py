"""Every run ends: `sync --once` gives up on a failing provider in bounded time and says so,
a cursor whose endpoint is gone starts a full sync, and a worker without a broker waits
quietly. Real processes, real clients, the sandboxes as the providers."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import cast

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, select

from sandbox.admin import SandboxAdmin
from sandbox.microsoft import GraphSandbox
from sandbox.team import person
from service.calendars.models import Calendar
from service.settings import Settings

from .conftest import CASES, Harness, ProviderCase
from .helpers import agenda_for_next, block_count, calls, connect_pair
from .test_cli import RAPPORT, _env

EXIT_WORK_LEFT = 5  # README, "Commands": finished, some work failed and is left due
BOUND = 120  # seconds: the subprocess timeout is the bound, not an assertion on time


def _sync_once(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RAPPORT, "sync", "--once"], env=env, capture_output=True,
                          text=True, timeout=BOUND, check=False)


def _calendars(harness: Harness) -> dict[str, Calendar]:
    with harness.session() as session:
        return {c.owner_email or c.provider_calendar_id: c
                for c in session.scalars(select(Calendar))}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_sync_once_gives_up_on_a_calendar_whose_provider_keeps_failing_and_says_which(
        harness: Harness, case: ProviderCase) -> None:
    other = next(c for c in CASES.values() if c.provider != case.provider)
    connect_pair(harness, case)
    connect_pair(harness, other)
    sandbox = harness.sandbox(case.provider)
    sandbox.fail_listing(case.manager)  # HTTP 500 on every listing of this one calendar
    env = _env(harness.settings.data_dir, harness)

    failed = _sync_once(env)

    assert failed.returncode == EXIT_WORK_LEFT, failed.stdout + failed.stderr
    named = [line for line in failed.stdout.splitlines() if case.manager in line]
    assert len(named) == 1 and "500" in named[0], failed.stdout
    calendars = _calendars(harness)
    broken = calendars.pop(case.manager)
    assert broken.last_error and "500" in broken.last_error and broken.last_error_at
    assert broken.last_sync_at is None and broken.cursor is None
    assert broken.sync_requested_at is not None  # left due for the worker and reconciler
    assert all(c.cursor and c.last_error is None for c in calendars.values())
    agenda_id, start = agenda_for_next(harness, other)  # the rest was synced and written
    assert block_count(harness.sandbox(other.provider).description_of(
        other.manager, other.series_key, start)) == 1

    sandbox.fail_listing(case.manager, status=None)  # the provider recovers
    healed = _sync_once(env)

    assert healed.returncode == 0, healed.stdout + healed.stderr
    recovered = _calendars(harness)[case.manager]
    assert recovered.cursor and recovered.last_error is None
    assert recovered.last_error_at is None and recovered.last_sync_at is not None


def test_sync_once_ends_and_names_the_calendar_when_the_provider_refuses_connections(
        harness: Harness, case: ProviderCase) -> None:
    harness.connect(case.manager)
    harness.sync()
    env = _env(harness.settings.data_dir, harness)
    port = _closed_port()
    if case.provider == "google":
        env["RAPPORT_GOOGLE_API_URL"] = f"http://127.0.0.1:{port}/calendar/v3/"
    else:
        env["RAPPORT_GRAPH_API_URL"] = f"https://127.0.0.1:{port}/v1.0"

    process = _sync_once(env)

    assert process.returncode == EXIT_WORK_LEFT, process.stdout + process.stderr
    assert any(case.manager in line for line in process.stdout.splitlines()
               if line.lstrip().startswith("calendar")), process.stdout
    assert _calendars(harness)[case.manager].last_error


def _graph_env(tmp_path: Path, box: GraphSandbox, key: str) -> dict[str, str]:
    env = _env(tmp_path)
    env.update({"RAPPORT_SECRET_KEY": key, "RAPPORT_GRAPH_API_URL": box.base_url,
                "RAPPORT_MICROSOFT_AUTHORITY": box.token_url, "RAPPORT_CA_BUNDLE": box.ca_file})
    return env


def _connect_dana(tmp_path: Path, env: dict[str, str]) -> None:
    grant = tmp_path / "dana.json"
    grant.write_text(json.dumps({"client_id": "rapport-tests",
                                 "refresh_token": person("dana@acme.test").refresh_token}),
                     encoding="utf-8")
    done = subprocess.run([*RAPPORT, "connect", "microsoft", "--credentials", str(grant)],
                          env=env, capture_output=True, text=True, timeout=BOUND, check=False)
    assert done.returncode == 0, done.stderr


def test_delta_links_of_a_graph_endpoint_that_moved_start_a_full_sync(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    first = GraphSandbox().start()
    try:
        env = _graph_env(tmp_path, first, key)
        _connect_dana(tmp_path, env)
        synced = _sync_once(env)
        assert synced.returncode == 0, synced.stdout + synced.stderr
    finally:
        first.stop()  # as after `demo --keep`: the old sandbox port is gone
    second = GraphSandbox().start()
    try:
        env = _graph_env(tmp_path, second, key)
        _connect_dana(tmp_path, env)  # the demo reconnects its team on every start
        second.clear_requests()

        again = _sync_once(env)

        assert again.returncode == 0, again.stdout + again.stderr
        lists = calls(cast(SandboxAdmin, second)).lists
        assert lists and all("$deltatoken" not in r.query for r in lists)  # a full round
        assert "ConnectError" not in again.stderr
        engine = create_engine(Settings(data_dir=tmp_path).resolved_database_url)
        with engine.connect() as conn:
            cursors = list(conn.scalars(select(Calendar.cursor)))
        engine.dispose()
        assert cursors and all(c and c.startswith(second.base_url) for c in cursors)
    finally:
        second.stop()


@pytest.mark.parametrize(("command", "url"), [
    ("worker", "redis://127.0.0.1:1/0"),
    ("worker", "amqp://guest:guest@127.0.0.1:1/"),
    ("scheduler", "redis://127.0.0.1:1/0"),
])
def test_a_worker_without_its_broker_says_so_and_waits_quietly(
        tmp_path: Path, command: str, url: str) -> None:
    env = _env(tmp_path)
    env["RAPPORT_BROKER_URL"] = url
    process = subprocess.Popen([*RAPPORT, command], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    time.sleep(6)  # let it try a few times
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=BOUND)

    lines = output.strip().splitlines()
    assert len(lines) < 20, output
    assert "Traceback" not in output and "guest:guest" not in output
    assert sum("cannot be reached" in line for line in lines) >= 2, output
    assert "running" not in output.lower(), output
