"""Read-only sessions: on SQLite they never wait for the write lock and cannot write; on
PostgreSQL they cannot write either and keep the connection's prepared statements."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import InternalError, OperationalError

from service.db import make_engine, migrate, read_session, session_factory
from service.people.models import Person
from tests.postgres import postgres_database


@pytest.fixture
def factory(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'rapport.db'}")
    migrate(engine)
    with session_factory(engine).begin() as session:
        session.add(Person(email="ada@example.test", display_name="Ada"))
    yield session_factory(engine)
    engine.dispose()


def test_reader_proceeds_while_another_connection_holds_the_write_lock(factory) -> None:
    """A writer holds the lock (its transaction stays open until the test says so); a reader
    in another thread finishes its query meanwhile. With `BEGIN IMMEDIATE` for the reader it
    would wait for the writer, which waits for the reader's result: the join below would
    only end on the 30 s busy timeout with an error."""
    release = threading.Event()
    locked = threading.Event()
    seen: list[object] = []

    def writer() -> None:
        with factory.begin() as session:
            session.add(Person(email="bo@example.test", display_name="Bo"))
            session.flush()
            locked.set()
            release.wait()

    def reader() -> None:
        try:
            with read_session(factory) as session:
                seen.append(session.scalars(
                    text("SELECT email FROM people ORDER BY email")).all())
        except Exception as err:  # noqa: BLE001 - reported to the test thread
            seen.append(err)

    holder = threading.Thread(target=writer)
    holder.start()
    assert locked.wait(10)
    thread = threading.Thread(target=reader)
    thread.start()
    thread.join()
    release.set()
    holder.join()
    # The reader saw the last committed state: Ada, not the writer's uncommitted Bo.
    assert seen == [["ada@example.test"]]
    with factory() as session:
        assert len(session.scalars(text("SELECT id FROM people")).all()) == 2


def test_write_through_a_read_session_fails(factory) -> None:
    with read_session(factory) as session:
        session.add(Person(email="cy@example.test", display_name="Cy"))
        with pytest.raises(OperationalError, match="readonly"):
            session.flush()


def test_a_writer_on_the_same_pooled_connection_can_write_again(factory) -> None:
    """query_only is a connection setting: the next ordinary session must be able to write."""
    for _ in range(3):
        with read_session(factory) as session:
            session.scalars(text("SELECT 1")).all()
        with factory.begin() as session:
            session.add(Person(email=f"d{_}@example.test", display_name="D"))
    with factory() as session:
        assert len(session.scalars(text("SELECT id FROM people")).all()) == 4


@pytest.fixture
def pg_engine():
    """A migrated PostgreSQL database with one connection in its pool, so each session
    below gets the same psycopg connection back."""
    with postgres_database("read") as url:
        engine = create_engine(url, pool_size=1, max_overflow=0)
        migrate(engine)
        with session_factory(engine).begin() as session:
            session.add(Person(email="ada@example.test", display_name="Ada"))
        yield engine
        engine.dispose()


@pytest.mark.integration
def test_a_reader_keeps_the_connections_prepared_statements_on_postgresql(pg_engine) -> None:
    """psycopg prepares a statement on its 5th execution on a connection and forgets them all
    at a ROLLBACK; a read session ends with COMMIT, so what it prepared is still there for
    the next session (on the old code, which ended readers with a ROLLBACK: none)."""
    factory = session_factory(pg_engine)
    with read_session(factory) as session:
        for _ in range(6):
            session.scalars(select(Person.email).where(Person.id > 0)).all()
    with factory() as session:
        prepared = session.scalar(text("SELECT count(*) FROM pg_prepared_statements"))
    assert prepared and prepared >= 1


@pytest.mark.integration
def test_write_through_a_read_session_fails_on_postgresql(pg_engine) -> None:
    """Its transactions begin READ ONLY, so the COMMIT that ends it can never keep a write."""
    factory = session_factory(pg_engine)
    with pytest.raises(InternalError, match="read-only transaction"):
        with read_session(factory) as session:
            session.add(Person(email="cy@example.test", display_name="Cy"))
    with factory.begin() as session:  # the pooled connection writes again afterwards
        session.add(Person(email="bo@example.test", display_name="Bo"))
    with factory() as session:
        assert sorted(session.scalars(select(Person.email))) == [
            "ada@example.test", "bo@example.test"]
