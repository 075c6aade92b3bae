"""Bulk INSERT ... RETURNING: a batch of new rows in one statement per set of keys, with the
ids (or ORM objects) back. A sync inserts nearly every event of a first sync this way; an ORM
object and a unit-of-work flush per row cost more than the rest of the sync together."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import (
    Boolean,
    DateTime,
    Enum,
    Float,
    Insert,
    Integer,
    String,
    Table,
    bindparam,
    cast,
    event,
    func,
    insert,
    inspect,
    select,
)
from sqlalchemy import Row as ResultRow
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.types import TypeDecorator, TypeEngine

from service.db import Base

Row = TypeVar("Row", bound=Base)

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
