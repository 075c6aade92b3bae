"""Databases for the concurrency faults: a fresh SQLite file, and a throwaway PostgreSQL
database (on the server of RAPPORT_TEST_DATABASE_URL or RAPPORT_TEST_POSTGRES_URL; skipped
without one, a failure under CI). Both migrated like production; real connections, no mocks.

The process-level suite (`stack`) also needs Redis (RAPPORT_TEST_BROKER_URL), skipped the
same way without it.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from application.context import start
from sandbox.google import GoogleSandbox
from sandbox.microsoft import GraphSandbox
from sandbox.team import person
from service.accounts.crypto import Vault
from service.calendars.onboarding import connect_with_refresh_token
from service.db import make_engine, migrate
from service.pairs.models import Occurrence, OccurrenceStatus, Pair, Series
from service.people.models import Person
from service.settings import Settings
from workers.pending import forget_pending

from .fleet import Fleet, free_port
from .stack import ACCOUNTS, Inbox, Stack, expect_digests, wait_for_recovery

LOCK_WAIT_LIMIT = 20.0  # seconds a test waits for the other connection to block on a lock


def _server_url() -> str:
    url = (os.environ.get("RAPPORT_TEST_DATABASE_URL")
           or os.environ.get("RAPPORT_TEST_POSTGRES_URL"))
    if not url:
        if os.environ.get("CI"):
            pytest.fail("RAPPORT_TEST_DATABASE_URL or RAPPORT_TEST_POSTGRES_URL must be set "
                        "under CI")
        pytest.skip("set RAPPORT_TEST_DATABASE_URL to run against PostgreSQL")
    return url


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """A migrated engine on a database of its own, dropped afterwards."""
    server = make_url(_server_url())
    name = f"rapport_faults_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(server.set(database=name).render_as_string(hide_password=False))
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite file, as the embedded default runs."""
    engine = make_engine(f"sqlite:///{tmp_path / 'rapport.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


@dataclass(frozen=True)
class Seeded:
    """One pair with weekly series, each with occurrences ahead."""

    pair_id: int
    series_ids: list[int]
    first_occurrence_ids: list[int]


def seed_pair(factory: sessionmaker[Session], *, now: datetime, series: int = 1,
              weeks: int = 4) -> Seeded:
    """A manager, a report, their pair and `series` weekly 1:1 series starting tomorrow."""
    with factory.begin() as session:
        manager = Person(email="maya@acme.test", display_name="Maya")
        report = Person(email="sam@acme.test", display_name="Sam")
        session.add_all([manager, report])
        session.flush()
        pair = Pair(manager_id=manager.id, report_id=report.id)
        session.add(pair)
        session.flush()
        series_ids, first = [], []
        for n in range(series):
            row = Series(series_key=f"series-{n}", title="Maya / Sam", pair_id=pair.id,
                         organizer_email=manager.email, other_email=report.email,
                         human_count=2, confidence=1.0)
            session.add(row)
            session.flush()
            start = (now + timedelta(days=1)).replace(microsecond=0)
            occurrences = [Occurrence(series_id=row.id, original_start=start + timedelta(weeks=w),
                                      scheduled_start=start + timedelta(weeks=w),
                                      scheduled_end=start + timedelta(weeks=w, minutes=30),
                                      status=OccurrenceStatus.CONFIRMED)
                           for w in range(weeks)]
            session.add_all(occurrences)
            session.flush()
            series_ids.append(row.id)
            first.append(occurrences[0].id)
        return Seeded(pair.id, series_ids, first)


def wait_until_blocked(engine: Engine, *, others: int = 1) -> bool:
    """Whether `others` connections to the database are waiting on a row lock, polled until
    they are or LOCK_WAIT_LIMIT passes (what proves two transactions really overlapped)."""
    deadline = time.monotonic() + LOCK_WAIT_LIMIT
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")).scalar_one()
            conn.commit()
            if waiting >= others:
                return True
            time.sleep(0.02)
    return False


def run_threads(*targets: object) -> list[BaseException]:
    """Run callables in threads at once; the exceptions they raised."""
    errors: list[BaseException] = []
    lock = threading.Lock()

    def guarded(fn: object) -> None:
        try:
            fn()  # type: ignore[operator]
        except BaseException as err:  # noqa: BLE001 - the test asserts on them
            with lock:
                errors.append(err)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)



# -- the process-level suite: a deployment of its own per test module ---------------------


def _integration_urls() -> tuple[str, str]:
    """(database server, broker) for the process-level suite. Without either it is skipped:
    the normal SQLite pass, CI's included, has neither; with only one of them under CI the
    integration pass is misconfigured, which fails."""
    database = os.environ.get("RAPPORT_TEST_DATABASE_URL")
    broker = os.environ.get("RAPPORT_TEST_BROKER_URL")
    if database and broker:
        return database, broker
    if os.environ.get("CI") and (database or broker):
        pytest.fail("the process-level faults need both RAPPORT_TEST_DATABASE_URL and "
                    "RAPPORT_TEST_BROKER_URL")
    pytest.skip("set RAPPORT_TEST_DATABASE_URL (PostgreSQL) and RAPPORT_TEST_BROKER_URL "
                "(Redis) to run the process-level faults")


def process_env(settings: Settings) -> dict[str, str]:
    """The environment `rapport worker` / `scheduler` read `settings` back from."""
    assert settings.secret_key is not None and settings.smtp_url is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    env.update({
        "RAPPORT_DATA_DIR": str(settings.data_dir),
        "RAPPORT_DATABASE_URL": settings.resolved_database_url,
        "RAPPORT_BROKER_URL": settings.broker_url or "",
        "RAPPORT_SECRET_KEY": settings.secret_key.get_secret_value(),
        "RAPPORT_GOOGLE_API_URL": settings.google_api_url,
        "RAPPORT_GOOGLE_TOKEN_URL": settings.google_token_url,
        "RAPPORT_GRAPH_API_URL": settings.graph_api_url,
        "RAPPORT_MICROSOFT_AUTHORITY": settings.microsoft_authority,
        "RAPPORT_CA_BUNDLE": str(settings.ca_bundle),
        "RAPPORT_SMTP_URL": settings.smtp_url.get_secret_value(),
        "RAPPORT_POLL_INTERVAL_SECONDS": str(settings.poll_interval_seconds),
        "RAPPORT_RECONCILE_INTERVAL_SECONDS": str(settings.reconcile_interval_seconds),
        "RAPPORT_AGENDA_HORIZON_DAYS": str(settings.agenda_horizon_days),
        "RAPPORT_CANCELLATION_GRACE_HOURS": str(settings.cancellation_grace_hours),
        "RAPPORT_QUIET_HOURS": "-".join(t.strftime("%H:%M") for t in settings.quiet_hours),
        "RAPPORT_DIGEST_WEEKDAY": str(settings.digest_weekday),
        "RAPPORT_DIGEST_TIME": settings.digest_time.strftime("%H:%M"),
    })
    return env


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, google_sandbox_server: GoogleSandbox,
          graph_sandbox_server: GraphSandbox) -> Iterator[Stack]:
    """PostgreSQL (a database of its own), Redis, one `rapport scheduler` and one `rapport
    worker` against freshly reset sandboxes, 4 accounts per provider, every first agenda
    written: the starting point of each scenario of the module."""
    database_url, broker_url = _integration_urls()
    server = make_url(database_url)
    name = f"rapport_faults_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    google_sandbox_server.reset()
    graph_sandbox_server.reset()
    data_dir = tmp_path_factory.mktemp("faults")
    smtp_port = free_port()
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    today = datetime.now(ZoneInfo("America/New_York"))  # the managers' westernmost zone
    settings = Settings(
        data_dir=data_dir, database_url=server.set(database=name).render_as_string(
            hide_password=False), broker_url=broker_url,
        secret_key=SecretStr(Fernet.generate_key().decode()),
        google_api_url=google_sandbox_server.base_url,
        google_token_url=google_sandbox_server.token_url,
        graph_api_url=graph_sandbox_server.base_url,
        microsoft_authority=graph_sandbox_server.token_url,
        ca_bundle=Path(graph_sandbox_server.ca_file),
        smtp_url=SecretStr(f"smtp://127.0.0.1:{smtp_port}?starttls=never"),
        poll_interval_seconds=3, reconcile_interval_seconds=2, agenda_horizon_days=14,
        cancellation_grace_hours=0, quiet_hours=(dtime(3, 0), dtime(3, 1)),
        digest_weekday=today.weekday(), digest_time=dtime(0, 0),
    )
    started = start(settings)  # migrates, so the processes never race to do it
    started.broker.flush_all()
    forget_pending(started.broker)  # the marks of the copies just purged
    logs = data_dir / "logs"
    logs.mkdir()
    fleet = Fleet(process_env(settings), logs)
    deployment = Stack(settings, started.runtime, started.broker, google_sandbox_server,
                       graph_sandbox_server, inbox, smtp, fleet)
    try:
        vault = Vault.from_settings(settings)
        with started.runtime.factory.begin() as session:
            for provider, emails in ACCOUNTS.items():
                for address in emails:
                    connect_with_refresh_token(
                        session, settings=settings, vault=vault, provider=provider,
                        client_id="rapport-faults", client_secret="test-secret",
                        refresh_token=person(address).refresh_token)
        fleet.scheduler()
        fleet.worker()
        first = wait_for_recovery(deployment, since=time.monotonic(), label="first sync")
        assert not first.left, fleet.tail()
        expect_digests(deployment)
        # the digest weekday is today in New York at 00:00, so Maya's is always due
        assert "maya@acme.test" in deployment.digests_due
        print(f"[faults] digests due for {sorted(deployment.digests_due)}")
        yield deployment
    finally:
        fleet.stop_all()
        smtp.stop()
        started.broker.flush_all()
        started.broker.close()
        started.runtime.engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
