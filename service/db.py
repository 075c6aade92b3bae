"""Engine, sessions and migrations: the database is the source of truth.

Migrations (Alembic) run automatically on start, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from alembic import command
from alembic.config import Config
from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from service.files import PRIVATE_FILE, create_private_file

log = logging.getLogger(__name__)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every Rapport table."""

    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; SQLite loses tzinfo, so it is put back on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


_SQLITE_SIDE_FILES = ("", "-wal", "-shm", "-journal")


def _private_sqlite_file(path: Path) -> None:
    """Create the SQLite file (and its folder) readable by us alone: it holds names, email
    bodies and encrypted grants. SQLite gives -wal / -shm the database file's own mode."""
    if not path.exists():
        create_private_file(path)


def _tighten_sqlite_files(path: Path) -> None:
    """0600 on the database and whichever side files exist (older installs were 0644)."""
    for suffix in _SQLITE_SIDE_FILES:
        side = Path(f"{path}{suffix}")
        try:
            if side.stat().st_mode & 0o077:
                os.chmod(side, PRIVATE_FILE)
        except FileNotFoundError:
            continue


# PostgreSQL connections per process: 5 stay pooled, up to 10 more open for a burst of
# `rapport worker --threads` (a thread may hold a read session inside a write one).
POOL_SIZE = 5
POOL_OVERFLOW = 10
# No `pool_pre_ping`: that "pessimistic" check costs a round trip (SELECT 1) on every
# checkout, and a sync opens dozens of sessions: 7 % of a worker thread's time in the
# scale-out benchmark (docs/benchmarks.md). The "optimistic" way instead (SQLAlchemy,
# "Dealing with Disconnects"): a statement that meets a dropped connection raises, SQLAlchemy
# then replaces every connection of the pool not checked out (`Pool.recreate`), so after a
# database restart about one message per thread fails and is retried (actors are idempotent)
# on fresh connections.


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout for concurrency,
    and files only our user can read (0600, the folder it creates 0700)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        file = Path(path) if path and path != ":memory:" and not path.startswith("file:") \
            else None
        if file is not None:
            _private_sqlite_file(file)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            if file is not None:
                _tighten_sqlite_files(file)

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            _begin_sqlite(conn, read_only=bool(conn.get_execution_options().get(READ_ONLY)))

        return engine
    return create_engine(url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)


READ_ONLY = "rapport_read_only"
_QUERY_ONLY = "rapport_query_only"


def _begin_sqlite(conn: Any, *, read_only: bool) -> None:
    """Writers take the write lock up front (`BEGIN IMMEDIATE`): they queue on the busy
    timeout instead of failing with "database is locked" when a read transaction would later
    need to upgrade to a write. Readers begin deferred, so in WAL mode they never wait for a
    writer (SQLite "Write-Ahead Logging": readers do not block writers, writers do not block
    readers), and `PRAGMA query_only` makes any write through them fail at once."""
    info = conn.connection.info  # lives with the pooled DBAPI connection
    if bool(info.get(_QUERY_ONLY)) != read_only:
        conn.exec_driver_sql(f"PRAGMA query_only={'ON' if read_only else 'OFF'}")
        info[_QUERY_ONLY] = read_only
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


_read_only_engines: WeakKeyDictionary[Engine, Engine] = WeakKeyDictionary()


class ReadSession(Session):
    """A session that only reads, ended with COMMIT, not ROLLBACK.

    For a transaction that wrote nothing the two are the same to the database, but psycopg
    forgets every statement it prepared on the connection at each ROLLBACK (and sends
    DEALLOCATE ALL): `Connection.rollback` clears its prepared-statement cache, as a rollback
    may have undone the DDL a statement depends on
    (https://www.psycopg.org/psycopg3/docs/advanced/prepare.html). Readers ended that way
    wiped a worker's prepared statements twice per message, so PostgreSQL parsed and planned
    the hot statements again and again. A failed block still rolls back."""

    def __exit__(self, type_: Any, value: Any, traceback: Any) -> None:
        transaction = self.get_transaction()
        try:
            if type_ is None and transaction is not None and transaction.is_active:
                self.commit()
        finally:
            super().__exit__(type_, value, traceback)


def read_session(factory: sessionmaker[Session]) -> Session:
    """A session for work that only reads (use it as a context manager): a write through it
    raises. On SQLite it does not take the write lock, so readers in other threads overlap a
    sync's writes ("attempt to write a readonly database" on a write); on PostgreSQL its
    transactions begin READ ONLY ("cannot execute ... in a read-only transaction"; psycopg's
    `read_only`, no extra statement) and end with COMMIT (`ReadSession`)."""
    bind = factory.kw.get("bind")
    if not isinstance(bind, Engine):
        return factory()
    reader = _read_only_engines.get(bind)
    if reader is None:
        options: dict[str, Any] = {READ_ONLY: True}
        if bind.dialect.name == "postgresql":
            options["postgresql_readonly"] = True
        reader = _read_only_engines.setdefault(bind, bind.execution_options(**options))
    kw = {k: v for k, v in factory.kw.items() if k != "bind"}
    return ReadSession(bind=reader, **kw)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["connection_engine"] = engine
    command.upgrade(cfg, "head")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def dialect_insert(session: Session, table: type[Base]) -> postgresql.Insert | sqlite.Insert:
    """An INSERT on `table` that knows ON CONFLICT (do nothing / do update), for the
    session's database: Rapport runs on SQLite and PostgreSQL only, and both spell it alike."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"Rapport needs SQLite or PostgreSQL, not {dialect}")


Item = TypeVar("Item")
IN_CHUNK = 500  # values per IN (...): well under SQLite's bound-parameter limit


def chunks(values: Sequence[Item], size: int = IN_CHUNK) -> Iterator[Sequence[Item]]:
    """`values` in pieces small enough for one IN (...) on SQLite and PostgreSQL."""
    for start in range(0, len(values), size):
        yield values[start:start + size]
