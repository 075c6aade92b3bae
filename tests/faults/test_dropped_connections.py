"""PostgreSQL connections without a ping per checkout (`service.db.make_engine`): a session
costs no extra round trip, and when the server drops every pooled connection (a restart,
`pg_terminate_backend`) the pool heals after the first statement that meets a dead one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

THREADS = 4  # connections held at once, as `rapport worker --threads 4` does


def _pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every `SELECT 1` the pool sends to test a connection before handing it out."""
    seen: list[Any] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        seen.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return seen


def _fill_pool(engine: Engine) -> None:
    """Open THREADS connections at once and return them to the pool."""
    with ExitStack() as stack:
        for _ in range(THREADS):
            stack.enter_context(engine.connect()).execute(text("SELECT 1"))


@pytest.fixture
def admin(pg_engine: Engine) -> Iterator[Engine]:
    """A connection to the same server outside the pool under test."""
    other = create_engine(pg_engine.url.render_as_string(hide_password=False),
                          poolclass=NullPool, isolation_level="AUTOCOMMIT")
    yield other
    other.dispose()


def test_a_session_costs_no_ping_round_trip(pg_engine: Engine,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _fill_pool(pg_engine)
    pings = _pings(pg_engine, monkeypatch)
    for _ in range(20):
        with pg_engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
    assert pings == []


def test_every_pooled_connection_dropped_costs_one_failure_then_heals(
        pg_engine: Engine, admin: Engine) -> None:
    _fill_pool(pg_engine)
    with admin.connect() as conn:
        ended = conn.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar_one()
    assert ended >= THREADS

    failures = 0
    for _ in range(3 * THREADS):
        try:
            with pg_engine.connect() as conn:
                assert conn.execute(text("SELECT 1")).scalar_one() == 1
        except OperationalError as err:
            assert err.connection_invalidated  # seen as a disconnect, not a bug
            failures += 1
    assert failures <= 1
