"""Sync under database faults: a settle that fails (PostgreSQL's DeadlockDetected) is redone
in full by the retry, on both providers (issue 11, item 3)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from .conftest import Harness, ProviderCase
from .helpers import agenda_of, case_series, occurrence_at, upcoming


class _DeadlockOnce:
    """The database answers the first cadence update with a deadlock, as PostgreSQL does to
    one of two workers that locked the same series rows in opposite orders."""

    def __init__(self) -> None:
        self.fired = 0

    def __call__(self, conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if self.fired or not statement.startswith("UPDATE series") \
                or "cadence_days" not in statement:
            return
        self.fired += 1
        raise OperationalError(statement, params, Exception("deadlock detected"))


def test_a_sync_whose_settle_deadlocked_settles_the_series_on_its_retry(
        harness: Harness, case: ProviderCase) -> None:
    harness.connect(case.manager)
    deadlock = _DeadlockOnce()
    event.listen(harness.runtime.engine, "before_cursor_execute", deadlock)

    harness.sync()  # the first attempt fails in the settle; dramatiq retries the message

    assert deadlock.fired == 1
    series = case_series(harness, case)
    assert series.cadence_days == 7
    # the retry's follow-up work ran too: the next occurrence got its agenda
    occurrence = occurrence_at(harness, series.id, upcoming(harness, case)[0])
    record = agenda_of(harness, occurrence.id)
    assert record is not None and record.written_hash == record.content_hash
