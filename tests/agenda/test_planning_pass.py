"""The reconciler's planning pass is driven by what changed: nothing due costs the same few
statements at any size; a topic, time bringing an occurrence into the horizon, a settings
change and an account ready again each lead to exactly the plans and writes they should.

Databases are seeded straight (`tests/benchmarks/seed_series.py`) and migrated like
production; the pass is the real `plan_due_agendas` on a real SQLite file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import Engine, event, func, select, update
from sqlalchemy.orm import Session, sessionmaker

import service.models  # noqa: F401  (every table)
from service.accounts.models import Account
from service.accounts.signing import revoke_links
from service.agenda.items import add_topic
from service.agenda.models import AgendaRecord, PlanWanted
from service.agenda.planner import plan_due_agendas, plan_occurrence, plan_touched_pairs
from service.db import make_engine, migrate, session_factory, utcnow
from service.pairs.models import Occurrence, Series
from service.pairs.service import set_manager_override
from service.settings import Settings
from tests.benchmarks.seed_series import NOW, seed, settle_writes
from tests.statements import statements

INTERVAL = timedelta(seconds=60)  # one reconcile interval
MAX_STATEMENTS = 6


@dataclass
class Db:
    engine: Engine
    factory: sessionmaker[Session]
    settings: Settings

    def reconcile(self, now: datetime, settings: Settings | None = None) -> tuple[list[int], int]:
        """One planning pass: the agendas to write and the statements it sent."""
        with statements(self.engine) as seen, self.factory.begin() as session:
            due = plan_due_agendas(session, settings=settings or self.settings, now=now)
        return due, len(seen)  # BEGIN IMMEDIATE included


@pytest.fixture
def make_db(tmp_path: Path) -> Iterator[Any]:
    engines: list[Engine] = []

    def make(series: int, weeks_past: int = 6) -> Db:
        folder = tmp_path / f"db{len(engines)}"
        folder.mkdir()
        engine = make_engine(f"sqlite:///{folder / 'rapport.db'}")
        engines.append(engine)
        migrate(engine)
        seed(engine, series=series, weeks_past=weeks_past, weeks_ahead=3)
        settings = Settings(data_dir=folder,
                            secret_key=SecretStr(Fernet.generate_key().decode()))
        db = Db(engine, session_factory(engine), settings)
        db.reconcile(NOW)  # the first pass plans every pair
        settle_writes(engine)  # and the writes put every agenda into its invite
        return db

    yield make
    for engine in engines:
        engine.dispose()


def test_a_pass_with_nothing_due_costs_the_same_few_statements_at_10_and_200_series(
        make_db: Any) -> None:
    costs = {}
    for size in (10, 200):
        db = make_db(size)
        due, statements = db.reconcile(NOW + INTERVAL)
        assert due == []
        again, statements_again = db.reconcile(NOW + 2 * INTERVAL)
        assert again == [] and statements_again == statements
        costs[size] = statements
    assert costs[10] == costs[200] <= MAX_STATEMENTS, costs


def _upcoming_agendas(db: Db, now: datetime) -> dict[int, int]:
    """occurrence id -> agenda id of the next occurrence of every series."""
    with db.factory() as session:
        rows = session.execute(
            select(Occurrence.id, AgendaRecord.id)
            .join(AgendaRecord, AgendaRecord.occurrence_id == Occurrence.id)
            .where(Occurrence.scheduled_start >= now,
                   Occurrence.scheduled_start < now + timedelta(days=7))).all()
    return {occurrence_id: agenda_id for occurrence_id, agenda_id in rows}


def test_occurrences_entering_the_horizon_are_planned_and_owed_at_the_next_pass(
        make_db: Any) -> None:
    db = make_db(20)
    later = NOW + timedelta(days=1)
    horizon = db.settings.agenda_horizon_days
    with db.factory() as session:
        entering = set(session.scalars(select(Occurrence.id).where(
            Occurrence.scheduled_start >= NOW + timedelta(days=horizon),
            Occurrence.scheduled_start < later + timedelta(days=horizon))))
    assert entering  # the seeded week has meetings on every weekday
    due, _ = db.reconcile(later)
    planned = _upcoming_agendas(db, later)
    assert entering <= set(planned)
    assert sorted(due) == sorted(planned[o] for o in entering)  # their invites lack them
    again, statements = db.reconcile(later + INTERVAL)
    assert again == due and statements <= MAX_STATEMENTS  # still owed, nothing re-planned


def test_a_topic_replans_only_its_pair_and_its_write_is_owed(make_db: Any) -> None:
    db = make_db(30)
    with db.factory.begin() as session:
        pair_id = session.scalar(select(Series.pair_id).where(Series.id == 7))
        assert pair_id is not None
        add_topic(session, pair_id=pair_id, text="The conference budget")
    planned = {o: a for o, a in _upcoming_agendas(db, NOW).items()}
    due, statements = db.reconcile(NOW + INTERVAL)
    with db.factory() as session:
        record = session.scalars(select(AgendaRecord).where(AgendaRecord.id.in_(due))).one()
        series_id = session.scalar(select(Occurrence.series_id).where(
            Occurrence.id == record.occurrence_id))
        assert session.scalar(select(PlanWanted.pair_id)) is None  # the mark is gone
    assert series_id == 7 and record.id in planned.values() and record.needs_write
    assert statements < 40  # one pair planned, not thirty
    assert db.reconcile(NOW + 2 * INTERVAL)[0] == [record.id]  # owed until written


def test_a_settings_change_replans_every_pair(make_db: Any) -> None:
    db = make_db(12)
    rotated = db.settings.model_copy(update={"kind_cadence": "core"})
    due, _ = db.reconcile(NOW + INTERVAL, settings=rotated)
    with db.factory() as session:
        kinds = set(session.scalars(select(AgendaRecord.kind).where(
            AgendaRecord.id.in_(_upcoming_agendas(db, NOW).values()))))
    assert kinds == {"core"}
    assert len(due) == 12  # every invite now lacks its new agenda
    assert db.reconcile(NOW + 2 * INTERVAL, settings=rotated)[0] == due  # owed, not replanned


def test_a_write_owed_by_a_throttled_account_is_found_once_it_is_ready(make_db: Any) -> None:
    db = make_db(16)
    with db.factory.begin() as session:
        pair_id = session.scalar(select(Series.pair_id).where(Series.id == 3))
        assert pair_id is not None
        add_topic(session, pair_id=pair_id, text="Hiring plan")
        session.execute(update(Account).values(not_before=utcnow() + timedelta(hours=1)))
    assert db.reconcile(NOW + INTERVAL)[0] == []  # planned, but the account must wait
    with db.factory.begin() as session:
        session.execute(update(Account).values(not_before=None))
    due, statements = db.reconcile(NOW + 2 * INTERVAL)
    assert len(due) == 1 and statements <= MAX_STATEMENTS  # found by the index, not a re-plan


def test_planning_an_occurrence_reads_a_bounded_history(make_db: Any) -> None:
    db = make_db(1, weeks_past=40)
    loaded: list[object] = []

    def on_load(target: object, _context: object) -> None:
        loaded.append(target)

    event.listen(AgendaRecord, "load", on_load)
    try:
        with db.factory.begin() as session:
            occurrence = session.scalars(select(Occurrence).where(
                Occurrence.scheduled_start >= NOW).order_by(Occurrence.scheduled_start)
                .limit(1)).one()
            series = session.get(Series, occurrence.series_id)
            assert series is not None
            digest = session.scalar(select(AgendaRecord.content_hash).where(
                AgendaRecord.occurrence_id == occurrence.id))  # planned by the first pass
            loaded.clear()
            planned = plan_occurrence(session, occurrence=occurrence, series=series,
                                      settings=db.settings)
    finally:
        event.remove(AgendaRecord, "load", on_load)
    assert planned.content_hash == digest  # the same plan as before
    assert len(loaded) <= 1  # its own record at most, never the 40 before it


def _series_of_due(db: Db, due: list[int]) -> set[int]:
    with db.factory() as session:
        return set(session.scalars(
            select(Occurrence.series_id).join(AgendaRecord,
                                              AgendaRecord.occurrence_id == Occurrence.id)
            .where(AgendaRecord.id.in_(due))))


def test_revoked_links_and_a_relinked_series_replan_their_pairs(make_db: Any) -> None:
    """Changes made below the agenda layer (people's links, a series' pair) are seen too."""
    db = make_db(10)
    with db.factory.begin() as session:
        assert revoke_links(session, email="r2@bench.test") == 1  # series 3: its links change
        set_manager_override(session, series_id=6, email="r5@bench.test")  # a new pair
    due, _ = db.reconcile(NOW + INTERVAL)
    assert _series_of_due(db, due) == {3, 6}
    with db.factory() as session:
        series = session.get(Series, 6)
        record = session.scalars(select(AgendaRecord).join(
            Occurrence, Occurrence.id == AgendaRecord.occurrence_id)
            .where(AgendaRecord.id.in_(due), Occurrence.series_id == 6)).one()
        assert series is not None
        assert record.pair_id == series.pair_id  # the agenda follows the series to its pair


def test_planning_one_held_agenda_reads_its_pair_and_people_once_and_not_its_row(
        make_db: Any) -> None:
    """`write_agenda` plans with the row it holds: the pair and its two people are read once
    (the links used to read them again after the follow-ups let them go from the session's
    identity map) and the agenda row not at all (issue 14 target 6: 27 -> 23 statements per
    write)."""
    db = make_db(3)
    with db.factory.begin() as session:
        occurrence = session.scalars(select(Occurrence).where(
            Occurrence.scheduled_start >= NOW).order_by(Occurrence.scheduled_start)
            .limit(1)).one()
        series = session.get(Series, occurrence.series_id)
        row = session.scalars(select(AgendaRecord).where(
            AgendaRecord.occurrence_id == occurrence.id)).one()
        assert series is not None
        digest = row.content_hash
        with statements(db.engine, startswith="SELECT") as seen:
            planned = plan_occurrence(session, occurrence=occurrence, series=series,
                                      settings=db.settings, record=row)
    reads = [" ".join(s.sql.split()) for s in seen]
    assert planned.content_hash == digest and planned.record is row
    assert sum(" FROM pairs " in s for s in reads) == 1, reads
    assert sum(" FROM people " in s for s in reads) == 2, reads
    assert not any(s.startswith("SELECT agendas.id") for s in reads), reads


def test_a_pass_planning_new_agendas_inserts_each_with_its_plan_and_reads_once_per_batch(
        make_db: Any) -> None:
    """Occurrences entering the horizon get their agenda row in one INSERT carrying the plan
    (no SELECT and two UPDATEs of the row after it), the pairs' history, topics and items
    are read once for the batch (their past agendas in one query), and their marks are
    cleared in one DELETE (issue 14 target 6: 8 statements per new agenda and one DELETE
    per pair before)."""
    db = make_db(20)
    later = NOW + timedelta(days=1)
    with statements(db.engine) as seen, db.factory.begin() as session:
        due = plan_due_agendas(session, settings=db.settings, now=later)
    sql = [" ".join(s.sql.split()) for s in seen]
    inserts = [i for i, s in enumerate(sql) if s.startswith("INSERT INTO agendas")]
    assert len(inserts) == len(due) > 2  # new rows, and each lacks its invite's write
    for i in inserts:
        assert not sql[i + 1].startswith(("UPDATE agendas", "SELECT agendas")), sql[i:i + 3]
    assert sum(s.startswith("UPDATE agendas") for s in sql) == 0, sql
    assert sum(" FROM action_items " in s for s in sql) == 1, sql
    assert sum(" FROM pair_topics " in s for s in sql) == 1, sql
    assert sum("count(*) OVER" in s for s in sql) == 1, sql  # the past agendas
    assert sum(s.startswith("DELETE FROM plan_wanted") for s in sql) == 1, sql
    # the batch's series, copies and records come with its occurrences
    assert not any(s.startswith(("SELECT series.id FROM", "SELECT occurrence_copies.id",
                                 "SELECT agendas.id")) for s in sql), sql
    with db.factory() as session:
        assert session.scalar(select(func.count()).select_from(PlanWanted)) == 0
        rows = session.scalars(select(AgendaRecord).where(AgendaRecord.id.in_(due))).all()
    assert all(r.needs_write and r.areas and r.question_ids for r in rows)


def test_a_sync_marks_its_pairs_in_one_statement_and_plans_with_those_marks(
        make_db: Any) -> None:
    """`plan_touched_pairs` marks the pairs of the series a sync touched with one INSERT ...
    SELECT ... RETURNING (it read the series' pairs, then the marks, before), plans them and
    clears the marks."""
    db = make_db(6)
    with db.factory.begin() as session:
        add_topic(session, pair_id=session.scalars(select(Series.pair_id).where(
            Series.id == 2)).one(), text="Budget for next year")
    with statements(db.engine) as seen:
        due = plan_touched_pairs(db.factory, series_ids={1, 2, 3}, settings=db.settings,
                                 now=NOW + INTERVAL)
    sql = [" ".join(s.sql.split()) for s in seen]
    assert _series_of_due(db, due) == {2}  # the topic changed that plan only
    assert sum(" plan_wanted" in s for s in sql) == 2, sql  # marked, then cleared
    assert not any(s.startswith("SELECT series.pair_id") for s in sql), sql
    with db.factory() as session:
        assert session.scalar(select(func.count()).select_from(PlanWanted)) == 0
