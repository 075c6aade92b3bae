"""Two workers settle overlapping series in opposite orders at once, on PostgreSQL, over
real connections: both finish, no DeadlockDetected (issue 11, item 3)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event, select, text

from service.db import session_factory
from service.pairs.models import Series
from service.sync.calendar_sync import settle_series

from .conftest import LOCK_WAIT_LIMIT, NOW, run_threads, seed_pair


class _Overlap:
    """Holds each worker after its first row lock until the other holds one too, or waits
    on one: the interleaving that deadlocked (A locks 1, B locks 3, A wants 3, B wants 1)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.locked = {name: threading.Event() for name in ("a", "b")}
        self.me = threading.local()

    def after_execute(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        name = getattr(self.me, "name", None)
        if name is None or self.locked[name].is_set():
            return
        if not (statement.startswith("UPDATE series") or "FOR UPDATE" in statement):
            return
        self.locked[name].set()
        other = self.locked["b" if name == "a" else "a"]
        deadline = time.monotonic() + LOCK_WAIT_LIMIT
        with self.engine.connect() as probe:
            while time.monotonic() < deadline and not other.is_set():
                waiting = probe.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'")).scalar_one()
                probe.commit()
                if waiting:
                    return
                time.sleep(0.02)

    def worker(self, name: str, ids: list[int]) -> Callable[[], None]:
        def run() -> None:
            self.me.name = name
            with session_factory(self.engine)() as session:
                settle_series(session, ids, NOW)
                session.commit()
        return run


def test_settles_of_overlapping_series_in_opposite_orders_do_not_deadlock(
        pg_engine: Engine) -> None:
    seeded = seed_pair(session_factory(pg_engine), now=NOW, series=3)
    ids = seeded.series_ids
    overlap = _Overlap(pg_engine)
    event.listen(pg_engine, "after_cursor_execute", overlap.after_execute)

    errors = run_threads(overlap.worker("a", ids), overlap.worker("b", list(reversed(ids))))

    assert errors == []
    assert all(e.is_set() for e in overlap.locked.values())
    with session_factory(pg_engine)() as session:
        cadences = session.scalars(select(Series.cadence_days).order_by(Series.id)).all()
    assert cadences == [7, 7, 7]
