"""Fixtures for metrics and digest tests: a migrated SQLite database and a history builder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy.orm import Session, sessionmaker

from service.agenda.models import ActionItem, AgendaRecord
from service.db import make_engine, migrate, session_factory
from service.pairs.models import Occurrence, OccurrenceStatus, Pair, Series
from service.people.models import Person
from service.settings import Settings


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a fresh SQLite file, migrated like production."""
    engine = make_engine(f"sqlite:///{tmp_path / 'rapport.db'}")
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a fixed secret and an outbox folder in the test's folder."""
    return Settings(data_dir=tmp_path, secret_key=Fernet.generate_key().decode(),
                    web_secret="test-web-secret")


@dataclass
class History:
    """Writes hand-made histories: people, pairs, series and occurrences with outcomes."""

    factory: sessionmaker[Session]

    def person(self, email: str, *, tz: str | None = "UTC", name: str | None = None) -> int:
        with self.factory.begin() as session:
            person = Person(email=email, display_name=name, time_zone=tz)
            session.add(person)
            session.flush()
            return person.id

    def pair(self, manager_id: int, report_id: int, *,
             created_at: datetime = datetime(2025, 1, 1, tzinfo=UTC)) -> int:
        with self.factory.begin() as session:
            pair = Pair(manager_id=manager_id, report_id=report_id, created_at=created_at)
            session.add(pair)
            session.flush()
            return pair.id

    def series(self, pair_id: int, *, key: str, cadence_days: int | None = 7) -> int:
        with self.factory.begin() as session:
            series = Series(series_key=key, pair_id=pair_id, title="1:1",
                            cadence_days=cadence_days, human_count=2, confidence=1.0)
            session.add(series)
            session.flush()
            return series.id

    def occurrences(self, series_id: int, first: datetime, outcomes: list[str | None], *,
                    every: timedelta = timedelta(days=7),
                    moved_by: dict[int, timedelta] | None = None) -> list[int]:
        """One occurrence per outcome, `every` apart from `first` (UTC step)."""
        ids = []
        with self.factory.begin() as session:
            for i, outcome in enumerate(outcomes):
                original = first + i * every
                scheduled = original + (moved_by or {}).get(i, timedelta())
                occ = Occurrence(series_id=series_id, original_start=original,
                                 scheduled_start=scheduled,
                                 scheduled_end=scheduled + timedelta(minutes=30),
                                 status=OccurrenceStatus.CONFIRMED, outcome=outcome)
                session.add(occ)
                session.flush()
                ids.append(occ.id)
        return ids

    def agenda(self, pair_id: int, occurrence_id: int, *, kind: str, areas: list[str]) -> None:
        with self.factory.begin() as session:
            session.add(AgendaRecord(occurrence_id=occurrence_id, pair_id=pair_id, kind=kind,
                                     areas=areas, question_ids=[], content_hash="x"))

    def action_item(self, pair_id: int, *, closed_at: datetime | None) -> None:
        with self.factory.begin() as session:
            session.add(ActionItem(pair_id=pair_id, text="follow up", closed_at=closed_at))


@pytest.fixture
def history(factory: sessionmaker[Session]) -> History:
    """A builder for hand-made histories on the test database."""
    return History(factory)


def utc(*args: int) -> datetime:
    """An aware UTC datetime."""
    return datetime(*args, tzinfo=UTC)
