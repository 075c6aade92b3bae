"""Throwaway databases for tests that need the real server's behaviour: PostgreSQL, or the
SQLite file the same tests also run on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from service.db import make_engine, migrate, session_factory
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


@contextmanager
def migrated(kind: str, folder: Path, prefix: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on a fresh database migrated like production: a SQLite file in `folder`
    (`kind` "sqlite") or a throwaway PostgreSQL database (`kind` "postgresql")."""
    with ExitStack() as stack:
        if kind == "sqlite":
            url = f"sqlite:///{folder / 'rapport.db'}"
        else:
            url = stack.enter_context(postgres_database(prefix))
        engine = make_engine(url)
        stack.callback(engine.dispose)
        migrate(engine)
        yield session_factory(engine)
