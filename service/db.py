"""Engine, sessions and migrations: the database is the source of truth.

Migrations (Alembic) run automatically on start, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Boolean,
    DateTime,
    Engine,
    Enum,
    Float,
    Insert,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    cast,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
)
from sqlalchemy import Row as ResultRow
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction, sessionmaker
from sqlalchemy.types import TypeDecorator, TypeEngine

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


Row = TypeVar("Row", bound=Base)
Item = TypeVar("Item")
IN_CHUNK = 500  # values per IN (...): well under SQLite's bound-parameter limit


def chunks(values: Sequence[Item], size: int = IN_CHUNK) -> Iterator[Sequence[Item]]:
    """`values` in pieces small enough for one IN (...) on SQLite and PostgreSQL."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


# Column types whose values go to PostgreSQL as one array parameter per column: each has a
# plain PostgreSQL array type, and SQLAlchemy's ARRAY applies the element type's own bind
# processing (a TypeDecorator's `process_bind_param` included) to every element. These are all
# the types of the tables bulk-inserted today (tests/service/test_bulk_insert.py). Any other
# type (JSON, ARRAY, Enum, Numeric, LargeBinary, ..., and the NullType of a foreign key whose
# table was never imported) keeps the multi-row VALUES path.
_ARRAY_SAFE: tuple[type[TypeEngine[Any]], ...] = (Integer, String, Float, Boolean, DateTime)


def _array_element(type_: TypeEngine[Any]) -> TypeEngine[Any] | None:
    """The element type of the array a column's values are sent in, or None when they cannot
    be. A length is dropped: an explicit cast to varchar(n) truncates silently, while the
    INSERT's own assignment to the column still refuses a value too long, as before
    (https://www.postgresql.org/docs/15/datatype-character.html)."""
    impl: TypeEngine[Any] = type_.impl_instance if isinstance(type_, TypeDecorator) else type_
    if not isinstance(impl, _ARRAY_SAFE) or isinstance(impl, Enum):
        return None
    length = getattr(impl, "length", None)  # String's
    if length is None:
        return type_
    if impl is not type_:  # a decorator over a sized string: not worth a copy
        return None
    return String(collation=getattr(impl, "collation", None))


def _array_name(key: str) -> str:
    return f"unnest__{key}"


@lru_cache(maxsize=256)
def _unnest_insert(target: Table | type[Base], keys: tuple[str, ...],
                   returning: tuple[Any, ...]) -> Insert | None:
    """`INSERT INTO t (k1, k2, ...) SELECT ... FROM unnest(CAST(:k1 AS type1[]), ...)
    RETURNING ...`, or None when a column's type cannot be sent as an array.

    The text depends on the columns only, never on the row count, so SQLAlchemy compiles it
    once, psycopg caches its conversion (it does only for short queries) and PostgreSQL can
    keep it prepared. Multi-argument `unnest` in FROM zips the arrays into rows
    (https://www.postgresql.org/docs/15/functions-array.html,
    https://www.postgresql.org/docs/15/queries-table-expressions.html#QUERIES-TABLEFUNCTIONS).
    Columns not given get their Python-side defaults from `from_select`; a callable default
    (`utcnow`) is called once per statement, not per row
    (https://docs.sqlalchemy.org/en/20/core/dml.html#sqlalchemy.sql.expression.Insert.from_select).
    """
    columns = target.c if isinstance(target, Table) else inspect(target).columns
    arrays = []
    for key in keys:
        element = _array_element(columns[key].type)
        if element is None:
            return None
        array = postgresql.ARRAY(element)
        arrays.append(cast(bindparam(_array_name(key), type_=array), array))
    rows = func.unnest(*arrays).table_valued(*keys).render_derived()
    return insert(target).from_select([columns[key] for key in keys],
                                      select(*[rows.c[key] for key in keys])
                                      ).returning(*returning)


def bulk_insert(session: Session, target: Table | type[Base], rows: Sequence[Mapping[str, Any]],
                *returning: Any) -> list[ResultRow[*tuple[Any, ...]]]:
    """Insert `rows` (column key -> value; None is NULL) into a table or a model's table and
    return `returning` for each, in no promised order: callers match them by a natural key.

    On PostgreSQL, one `_unnest_insert` per set of keys the rows have (rows with other keys
    get their own statement, their missing columns the column defaults). On SQLite, a
    multi-row INSERT ... RETURNING ("insertmanyvalues"), grouped the same way. A model target
    returns its objects in the session, as the ORM's own bulk INSERT does."""
    groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    postgres = session.get_bind().dialect.name == "postgresql"
    # one parameter dict and a model target: the ORM would take it for a one-row bulk INSERT
    options = {} if isinstance(target, Table) else {"dml_strategy": "orm"}
    made: list[ResultRow[*tuple[Any, ...]]] = []
    for keys, group in groups.items():
        statement = _unnest_insert(target, keys, returning) if postgres else None
        if statement is None:
            made.extend(session.execute(insert(target).returning(*returning), group))
        else:
            arrays = {_array_name(key): [row[key] for row in group] for key in keys}
            made.extend(session.execute(statement, arrays, execution_options=options))
    return made


_INSERTED = "rapport.inserted_returning"  # session.info: [(transaction, objects)] not committed


def insert_returning(session: Session, model: type[Row], rows: list[dict[str, Any]]) -> list[Row]:
    """New rows as ORM objects from one bulk INSERT per set of keys (`bulk_insert`): the unit
    of work sends one INSERT per object on SQLite (it needs the rows back in order, which a
    multi-row RETURNING does not promise). The objects come back in no promised order either:
    callers match them by a natural key.

    As in the ORM's own bulk INSERT, None for a column that has a default means "not given"
    (the default applies) ("ORM Bulk INSERT Statements", `render_nulls`:
    https://docs.sqlalchemy.org/en/20/orm/queryguide/dml.html#orm-bulk-insert-statements).

    The ORM forgets on rollback only the objects it flushed itself; these are expunged by
    `_forget_rolled_back_inserts` when their transaction (or savepoint) rolls back."""
    if not rows:
        return []
    columns = inspect(model).columns
    defaulted = {key for key in {key for row in rows for key in row}
                 if columns[key].default is not None or columns[key].server_default is not None}
    given = [{key: value for key, value in row.items() if value is not None or key not in defaulted}
             for row in rows] if defaulted else rows
    made = [row[0] for row in bulk_insert(session, model, given, model)]
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_INSERTED, []).append((transaction, made))
    return made


def _inside(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back_inserts(session: Session, previous: SessionTransaction) -> None:
    """Expunge what `insert_returning` inserted in the transaction just rolled back (or in a
    savepoint inside it), so no cache or identity map keeps rows that no longer exist."""
    kept = []
    for transaction, made in session.info.get(_INSERTED, ()):
        if not _inside(transaction, previous):
            kept.append((transaction, made))
            continue
        for row in made:
            if row in session:
                session.expunge(row)
    session.info[_INSERTED] = kept


@event.listens_for(Session, "after_commit")
def _committed_inserts_stay(session: Session) -> None:
    """The outermost commit keeps them all (a released savepoint also fires `after_commit`,
    inside the transaction that may still roll back)."""
    if not session.in_transaction():
        session.info.pop(_INSERTED, None)
