"""The SQL statements an engine sends while a block runs: one listener for every test and
benchmark that shows a pass costs the same few statements at any size (or which ones).

    with statements(factory) as seen:            # an Engine or a session factory
        ...
    len(seen), seen[0].sql, seen[0].parameters

SQLAlchemy's `before_cursor_execute` event fires once per statement sent to the DBAPI
cursor (an executemany counts once), BEGIN and PRAGMA included; `startswith` keeps only the
statements whose SQL starts with it (e.g. "SAVEPOINT").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker


class Statement(NamedTuple):
    sql: str
    parameters: Any


@contextmanager
def statements(bind: Engine | sessionmaker[Session], *,
               startswith: str | tuple[str, ...] = "") -> Iterator[list[Statement]]:
    """Every statement (with its parameters) sent on the engine meanwhile, in order."""
    engine: Engine = bind if isinstance(bind, Engine) else bind.kw["bind"]
    seen: list[Statement] = []

    def record(_conn: Any, _cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        if sql.startswith(startswith):
            seen.append(Statement(sql, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
