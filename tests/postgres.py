"""A throwaway PostgreSQL database for tests that need the real server's behaviour."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, make_url, text

from tests.conftest import required_service_url


@contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """A new database on RAPPORT_TEST_POSTGRES_URL's server, named after that URL's own
    database (so parallel runs that each have their own stay apart), dropped afterwards; the
    test is skipped without the variable (and fails under CI, where it must be set)."""
    server = make_url(required_service_url("RAPPORT_TEST_POSTGRES_URL"))
    name = f"{server.database or 'rapport'}_{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
