"""Databases for the concurrency faults: a fresh SQLite file, and a throwaway PostgreSQL
database (on the server of RAPPORT_TEST_DATABASE_URL or RAPPORT_TEST_POSTGRES_URL; skipped
without one, a failure under CI). Both migrated like production; real connections, no mocks.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from service.db import make_engine, migrate
from service.pairs.models import Occurrence, OccurrenceStatus, Pair, Series
from service.people.models import Person

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

