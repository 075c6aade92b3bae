"""The manager's and the report's syncs plan the same occurrence at once: one agenda row,
no exception (issue 11, item 2)."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import Engine, func, select

from service.agenda.models import AgendaRecord
from service.agenda.planner import plan_occurrence
from service.db import session_factory
from service.pairs.models import Occurrence, Series
from service.settings import Settings

from .conftest import NOW, run_threads, seed_pair, wait_until_blocked


def _plan(engine: Engine, settings: Settings, occurrence_id: int,
          planned: threading.Event | None = None,
          hold_until_blocked: bool = False) -> None:
    """One worker's planning of the occurrence, in its own session and transaction."""
    with session_factory(engine)() as session:
        occurrence = session.get(Occurrence, occurrence_id)
        assert occurrence is not None
        series = session.get(Series, occurrence.series_id)
        assert series is not None
        plan_occurrence(session, occurrence=occurrence, series=series, settings=settings)
        if planned is not None:
            planned.set()
        if hold_until_blocked:  # commit only once the other worker waits on our new row
            assert wait_until_blocked(engine), "the second planner never met our insert"
        session.commit()


def _agenda_rows(engine: Engine) -> int:
    with session_factory(engine)() as session:
        return session.scalar(select(func.count()).select_from(AgendaRecord)) or 0


def test_two_workers_planning_one_occurrence_on_postgresql_make_one_row(
        pg_engine: Engine, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    seeded = seed_pair(session_factory(pg_engine), now=NOW)
    occurrence_id = seeded.first_occurrence_ids[0]
    first_planned = threading.Event()

    def second() -> None:
        assert first_planned.wait(60)
        _plan(pg_engine, settings, occurrence_id)

    errors = run_threads(
        lambda: _plan(pg_engine, settings, occurrence_id, planned=first_planned,
                      hold_until_blocked=True),
        second)

    assert errors == []
    assert _agenda_rows(pg_engine) == 1


def test_two_workers_planning_one_occurrence_on_sqlite_make_one_row(
        sqlite_engine: Engine, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    seeded = seed_pair(session_factory(sqlite_engine), now=NOW)
    occurrence_id = seeded.first_occurrence_ids[0]
    start = threading.Barrier(2)

    def worker() -> None:
        start.wait(60)
        _plan(sqlite_engine, settings, occurrence_id)

    errors = run_threads(worker, worker)

    assert errors == []
    assert _agenda_rows(sqlite_engine) == 1
