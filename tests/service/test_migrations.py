"""Migrations on a database that holds data: dropped columns go, the rows stay."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.orm import Session

import service.db
import service.models  # noqa: F401  (registers every table)
from service.agenda.models import AgendaRecord
from service.db import Base, make_engine
from service.pairs.models import Occurrence, OccurrenceCopy, Pair

START = datetime(2026, 11, 30, 10, tzinfo=UTC)


def _upgrade(engine: Engine, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(service.db.__file__).parent / "migrations"))
    cfg.attributes["connection_engine"] = engine
    command.upgrade(cfg, revision)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite file with foreign keys on, as Rapport opens it."""
    engine = make_engine(f"sqlite:///{tmp_path / 'rapport.db'}")
    yield engine
    engine.dispose()


def _seed(engine: Engine) -> None:
    """One pair with an occurrence that a copy, an agenda and a one-off meeting point at."""
    with Session(engine) as session, session.begin():
        # people, accounts, calendars and series as the 0007 schema has them (later revisions
        # add columns to them, which the models already declare)
        for email in ("maya@acme.test", "sam@acme.test"):
            session.execute(text("INSERT INTO people (email, opted_out) VALUES (:e, 0)"),
                            {"e": email})
        ids = dict(session.execute(text("SELECT email, id FROM people")).tuples().all())
        maya_id, sam_id = ids["maya@acme.test"], ids["sam@acme.test"]
        session.execute(text(
            "INSERT INTO accounts (provider, email, person_id, credentials_encrypted, status,"
            " created_at) VALUES ('google', :e, :p, :c, 'active', :t)"),
            {"e": "maya@acme.test", "p": maya_id, "c": b"x", "t": START})
        account_id = session.scalar(text("SELECT id FROM accounts"))
        session.execute(text("INSERT INTO calendars (account_id, provider_calendar_id)"
                             " VALUES (:a, 'primary')"), {"a": account_id})
        calendar_id = session.scalar(text("SELECT id FROM calendars"))
        pair = Pair(manager_id=maya_id, report_id=sam_id)
        session.add(pair)
        session.flush()
        session.execute(text(  # the 0007 columns only, as for people and accounts
            "INSERT INTO series (series_key, pair_id, title, human_count, confidence,"
            " detection_reason, status, first_seen_at) VALUES ('maya|sam', :p, '', 2, 1.0,"
            " '', 'active', :t)"), {"p": pair.id, "t": START})
        series_id = session.scalar(text("SELECT id FROM series"))
        session.execute(text(  # the 0007 columns only (0021 adds prep_nudged_at)
            "INSERT INTO occurrences (series_id, original_start, scheduled_start,"
            " scheduled_end, status, updated_at) VALUES (:s, :t, :t, :e, 'confirmed', :t)"),
            {"s": series_id, "t": START, "e": START + timedelta(hours=1)})
        occurrence_id = session.scalar(text("SELECT id FROM occurrences"))
        copy = OccurrenceCopy(occurrence_id=occurrence_id, calendar_id=calendar_id,
                              provider_event_id="evt-1")
        session.add(copy)
        session.execute(text(  # the 0007 columns only (0017 adds the merge base)
            "INSERT INTO agendas (occurrence_id, pair_id, kind, areas, question_ids,"
            " content_hash, created_at) VALUES (:o, :p, 'core', '[]', '[]', 'h', :t)"),
            {"o": occurrence_id, "p": pair.id, "t": START})
        session.execute(text(
            "INSERT INTO adhoc_meetings (calendar_id, provider_event_id, people_key, title,"
            " start, \"end\", cancelled, extra) VALUES (:c, 'adhoc-1', 'maya|sam', '',"
            " :s, :e, 0, '{}')"), {"c": calendar_id, "s": START, "e": START})


def test_dropping_the_unwritten_columns_keeps_every_row_that_points_at_an_occurrence(
        engine: Engine) -> None:
    _upgrade(engine, "0007")
    _seed(engine)

    _upgrade(engine, "head")

    columns = inspect(engine)
    assert "actual_start" not in {c["name"] for c in columns.get_columns("occurrences")}
    assert "extra" not in {c["name"] for c in columns.get_columns("adhoc_meetings")}
    with Session(engine) as session:
        for table in (Occurrence, OccurrenceCopy, AgendaRecord):
            assert session.scalar(select(func.count()).select_from(table)) == 1, table
        assert session.scalar(text("SELECT count(*) FROM adhoc_meetings")) == 1


def test_the_migrated_schema_is_the_schema_the_models_declare(engine: Engine) -> None:
    _upgrade(engine, "head")
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []
