"""The writer's one-statement lookups agree with the rules they fold: `writing_account` acts
for the account of the very copy `planner.target_copy` picks, only while it is active; the
recording's UPDATEs move `written_at` only when the content changes and touch nothing once
the agenda or its copy is gone. On a real SQLite file of the production schema."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

import service.models  # noqa: F401  (every table)
from connectors.base import CalendarEvent
from service.accounts.models import Account, AccountStatus
from service.accounts.pace import ActingAccount
from service.agenda.models import AgendaRecord
from service.agenda.planner import target_copy
from service.agenda.writer import _record_written, writing_account
from service.calendars.models import Calendar
from service.db import make_engine, session_factory
from service.pairs.models import Occurrence, OccurrenceCopy, Pair, Series
from service.people.models import Person
from tests.agenda.test_agenda_block import make_agenda
from tests.statements import statements

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SELECTS = "SELECT"


@pytest.fixture
def factory(tmp_path: Path, migrated_database: Path) -> Iterator[sessionmaker[Session]]:
    path = tmp_path / "rapport.db"
    shutil.copyfile(migrated_database, path)
    engine: Engine = make_engine(f"sqlite:///{path}")
    yield session_factory(engine)
    engine.dispose()


def _seed(session: Session, *, copies: list[tuple[str, bool, bool]]) -> int:
    """One agenda whose occurrence has a copy per (account status, organizer's, removed), each
    on its own account's calendar, in this order of ids; returns the agenda's id."""
    manager, report = Person(email="m@acme.test"), Person(email="r@acme.test")
    session.add_all([manager, report])
    session.flush()
    pair = Pair(manager_id=manager.id, report_id=report.id)
    session.add(pair)
    session.flush()
    series = Series(series_key="m-r", pair_id=pair.id)
    session.add(series)
    session.flush()
    occurrence = Occurrence(series_id=series.id, original_start=NOW + timedelta(days=1),
                            scheduled_start=NOW + timedelta(days=1),
                            scheduled_end=NOW + timedelta(days=1, minutes=30))
    session.add(occurrence)
    session.flush()
    for n, (status, organizer, removed) in enumerate(copies):
        account = Account(provider="google", email=f"a{n}@acme.test", status=status,
                          credentials_encrypted=b"x")
        session.add(account)
        session.flush()
        calendar = Calendar(account_id=account.id, provider_calendar_id="primary")
        session.add(calendar)
        session.flush()
        session.add(OccurrenceCopy(occurrence_id=occurrence.id, calendar_id=calendar.id,
                                   provider_event_id=f"e{n}", is_organizer_copy=organizer,
                                   removed=removed, description="", etag="v0"))
        session.flush()
    record = AgendaRecord(occurrence_id=occurrence.id, pair_id=pair.id, kind="regular",
                          content_hash="c0", needs_write=True)
    session.add(record)
    session.flush()
    return record.id


def _expected(session: Session, agenda_id: int) -> int | None:
    """The active account of `target_copy`'s copy, as the old lookups found it."""
    record = session.get(AgendaRecord, agenda_id)
    assert record is not None
    copy = target_copy(session, record.occurrence_id)
    calendar = session.get(Calendar, copy.calendar_id) if copy else None
    account = session.get(Account, calendar.account_id) if calendar else None
    return account.id if account and account.status == AccountStatus.ACTIVE else None


ACTIVE, FLAGGED = AccountStatus.ACTIVE.value, AccountStatus.NEEDS_RECONSENT.value


@pytest.mark.parametrize("copies", [
    [(ACTIVE, True, True), (ACTIVE, False, False), (ACTIVE, True, False), (ACTIVE, True, False)],
    [(ACTIVE, False, False), (FLAGGED, True, False), (ACTIVE, True, False)],
    [(ACTIVE, False, False), (ACTIVE, True, True)],
    [],
], ids=["removed-attendee-then-two-organizers", "organizer-needs-reconsent",
        "no-live-organizer-copy", "no-copy"])
def test_the_writing_account_is_the_target_copys_active_account_in_one_statement(
        factory: sessionmaker[Session], copies: list[tuple[str, bool, bool]]) -> None:
    with factory.begin() as session:
        agenda_id = _seed(session, copies=copies)
        session.execute(update(Account).values(not_before=NOW))
    with factory() as session:
        expected = _expected(session, agenda_id)
    with factory() as session, statements(factory, startswith=SELECTS) as seen:
        found = writing_account(session, agenda_id=agenda_id)
    assert len(seen) == 1
    assert (found.id if found else None) == expected
    if expected is not None:
        assert found == ActingAccount(expected, "google", NOW)


def _event(etag: str, description: str) -> CalendarEvent:
    return CalendarEvent(id="e0", calendar_id="primary", etag=etag, description=description)


def test_recording_a_write_moves_written_at_only_when_the_content_changes(
        factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        agenda_id = _seed(session, copies=[(ACTIVE, True, False)])
    first, other = make_agenda("Hiring"), make_agenda("Budget")
    later = NOW + timedelta(hours=1)
    for agenda, etag, at in ((first, "v1", NOW), (first, "v2", later), (other, "v3", later)):
        with factory.begin() as session, statements(factory, startswith=SELECTS) as seen:
            assert _record_written(session, agenda_id=agenda_id, copy_id=1,
                                   event=_event(etag, f"text {etag}"), agenda=agenda, now=at)
        assert seen == []  # UPDATEs only
        with factory() as session:
            record, copy = session.get(AgendaRecord, agenda_id), session.get(OccurrenceCopy, 1)
            assert record is not None and copy is not None
            assert (copy.etag, copy.description, record.provider_etag, record.needs_write) \
                == (etag, f"text {etag}", etag, False)
            assert record.written_at == (NOW if agenda is first else later)


def test_recording_a_write_touches_nothing_once_the_agenda_or_its_copy_is_gone(
        factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        agenda_id = _seed(session, copies=[(ACTIVE, True, False)])
    with factory.begin() as session:
        assert not _record_written(session, agenda_id=agenda_id, copy_id=99,
                                   event=_event("v1", "x"), agenda=make_agenda(), now=NOW)
        assert not _record_written(session, agenda_id=99, copy_id=1,
                                   event=_event("v1", "x"), agenda=make_agenda(), now=NOW)
    with factory() as session:
        record, copy = session.get(AgendaRecord, agenda_id), session.get(OccurrenceCopy, 1)
        assert record is not None and copy is not None
        assert (record.written_hash, record.needs_write, copy.etag) == (None, True, "v0")
