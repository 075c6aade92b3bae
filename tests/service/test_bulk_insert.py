"""`service.db.bulk_insert` (and `insert_returning` over it): on PostgreSQL one
INSERT ... SELECT FROM unnest(one array per column) whose text does not depend on the row
count; on SQLite the multi-row INSERT ... RETURNING. Values of every column type of the tables
it serves come back as given, None included; rows with other keys get their own statement."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    select,
)
from sqlalchemy.exc import DataError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from service.accounts.models import Account
from service.bulk import bulk_insert, insert_returning
from service.calendars.models import Calendar
from service.db import Base
from service.pairs.models import (
    Occurrence,
    OccurrenceCopy,
    OccurrenceStatus,
    Override,
    Pair,
    Series,
    SeriesSource,
    SeriesStatus,
)
from service.people.models import Person
from tests.postgres import migrated
from tests.statements import statements

WHEN = datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=UTC)  # microseconds, a DST day
ELSEWHERE = timezone(timedelta(hours=-7, minutes=-30))  # stored as UTC, read back as UTC


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with migrated(request.param, tmp_path, "bulk") as made:
        yield made


@pytest.fixture
def pg_factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with migrated("postgresql", tmp_path, "bulk") as made:
        yield made


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def _calendar(session: Session) -> int:
    account = Account(provider="google", email="m@x.test", credentials_encrypted=b"-")
    session.add(account)
    session.flush()
    calendar = Calendar(account_id=account.id, provider_calendar_id="primary")
    session.add(calendar)
    session.flush()
    return calendar.id


def _every_column(model: type[Base], full: dict[str, Any]) -> list[dict[str, Any]]:
    """A row with a value for every column but the id, and one with None wherever allowed
    (the test fails when the table gains a column it does not cover)."""
    table = _table(model)
    assert set(full) == {c.key for c in table.columns} - {"id"}, model.__name__
    nones = {key: None if table.c[key].nullable else value for key, value in full.items()}
    return [full, nones]


def _insert_and_read_back(session: Session, model: type[Base], rows: list[dict[str, Any]],
                          natural: str) -> dict[Any, Any]:
    """Rows inserted through `bulk_insert`, read back by their natural key with a SELECT."""
    table = _table(model)
    returned = bulk_insert(session, table, rows, table.c.id, table.c[natural])
    assert len(returned) == len(rows)
    ids = {key: new_id for new_id, key in returned}
    stored = {}
    for found in session.execute(select(table).where(table.c.id.in_(ids.values()))).mappings():
        assert ids[found[natural]] == found["id"]
        stored[found[natural]] = {k: v for k, v in found.items() if k != "id"}
    return stored


def _same(given: dict[str, Any], stored: dict[str, Any]) -> None:
    for key, value in given.items():
        assert stored[key] == value, key
        if isinstance(value, datetime):
            assert stored[key].utcoffset() == timedelta(0), key


def test_values_of_every_column_type_come_back_as_given_none_included(
        factory: sessionmaker[Session]) -> None:
    """Integer (and foreign keys), sized strings, text, float, boolean, aware datetimes
    through `UTCDateTime` (its bind processing applies to each element: a datetime in another
    zone is stored as UTC), str enums, and None: every type of the six tables bulk-inserted."""
    with factory.begin() as session, statements(factory, startswith="INSERT") as inserts:
        calendar_id = _calendar(session)
        before = len(inserts)
        boss = {"email": "boss@x.test", "display_name": "Boss", "time_zone": "Europe/Paris",
                "opted_out": True, "links_version": 3, "manager_id": None,
                "directory_grant_id": None, "directory_id": "u-1", "suspended": True,
                "left_at": WHEN.astimezone(ELSEWHERE), "directory_manager_ref": "id:u-0",
                "directory_seen_pass": 7}
        _same(boss, _insert_and_read_back(session, Person, [boss], "email")["boss@x.test"])
        boss_id = session.scalar(select(Person.id).where(Person.email == "boss@x.test"))
        # quotes, a backslash, a comma and braces: array literal syntax, if it leaked
        person_rows = _every_column(Person, dict(
            boss, email="p@x.test", display_name="Zoë \"Z\" O'Neil \\ ,{}", manager_id=boss_id))
        person_rows[1]["email"] = "q@x.test"
        people = _insert_and_read_back(session, Person, person_rows, "email")
        for row in person_rows:
            _same(row, people[row["email"]])
        manager, report = (session.scalar(select(Person.id).where(Person.email == e))
                           for e in ("p@x.test", "q@x.test"))

        pair_rows = _every_column(Pair, {"manager_id": manager, "report_id": report,
                                         "muted": True, "created_at": WHEN})
        del pair_rows[1]  # no nullable column: the second row would repeat the unique key
        pairs = _insert_and_read_back(session, Pair, pair_rows, "report_id")
        _same(pair_rows[0], pairs[report])
        pair_id = session.scalar(select(Pair.id))

        series_rows = _every_column(Series, {
            "series_key": "uid-1", "pair_id": pair_id, "title": "1:1 " + "é" * 496,
            "organizer_email": "p@x.test", "other_email": "q@x.test", "human_count": 2,
            "confidence": 0.875, "detection_reason": "two people\nweekly",
            "override": Override.INCLUDE, "manager_override": "p@x.test",
            "time_zone": "America/St_Johns", "cadence_days": 7, "status": SeriesStatus.ENDED,
            "first_seen_at": WHEN, "ended_at": WHEN + timedelta(days=300)})
        series_rows[1]["series_key"] = "uid-2"
        series = _insert_and_read_back(session, Series, series_rows, "series_key")
        for row in series_rows:
            _same(row, series[row["series_key"]])
        series_id = session.scalar(select(Series.id).where(Series.series_key == "uid-1"))

        source_rows = _every_column(SeriesSource, {
            "series_id": series_id, "calendar_id": calendar_id, "provider_series_id": "s1",
            "is_organizer_copy": True})
        del source_rows[1]
        _same(source_rows[0],
              _insert_and_read_back(session, SeriesSource, source_rows, "provider_series_id")["s1"])

        occurrence_rows = [dict(row, original_start=WHEN + timedelta(weeks=i))
                           for i, row in enumerate(_every_column(Occurrence, {
                               "series_id": series_id, "original_start": WHEN,
                               "scheduled_start": WHEN.astimezone(ELSEWHERE),
                               "scheduled_end": WHEN + timedelta(minutes=30),
                               "status": OccurrenceStatus.CANCELLED,
                               "manager_response": "accepted", "report_response": "declined",
                               "cancelled_at": WHEN, "dropped_at": WHEN,
                               "outcome": "held", "outcome_decided_at": WHEN,
                               "check_due_at": WHEN, "prep_nudged_at": WHEN,
                               "prep_due_at": WHEN, "prep_due_for": WHEN,
                               "updated_at": WHEN}))]
        occurrences = _insert_and_read_back(session, Occurrence, occurrence_rows,
                                            "original_start")
        for row in occurrence_rows:
            _same(row, occurrences[row["original_start"]])
        occurrence_id = session.scalar(select(Occurrence.id).limit(1))

        copy_rows = _every_column(OccurrenceCopy, {
            "occurrence_id": occurrence_id, "calendar_id": calendar_id,
            "provider_event_id": "e1", "is_organizer_copy": True, "etag": '"3181"',
            "block_hash": "ab" * 32, "description": "<p>agenda</p>\n" * 1000,
            "description_is_html": True, "removed": True, "seen_at": WHEN})
        copy_rows[1]["provider_event_id"] = "e2"
        copies = _insert_and_read_back(session, OccurrenceCopy, copy_rows, "provider_event_id")
        for row in copy_rows:
            _same(row, copies[row["provider_event_id"]])
        ours = inserts[before:]
    dialect = factory.kw["bind"].dialect.name
    # one statement per table and key set (the rows with None have the same keys)
    assert len(ours) == 7
    if dialect == "postgresql":
        assert all("FROM unnest(" in s.sql for s in ours)


def test_the_statement_text_is_the_same_for_one_row_and_for_300(
        factory: sessionmaker[Session]) -> None:
    """The text of a multi-row VALUES list grows with the rows: psycopg converts it anew in
    Python on every execution (it caches only short queries) and PostgreSQL parses and plans
    it anew. An unnest of one array per column is one text for any count."""
    dialect = factory.kw["bind"].dialect.name
    with factory.begin() as session:
        with statements(factory, startswith="INSERT") as one:
            made = insert_returning(session, Person, [{"email": "solo@x.test"}])
        assert [p.email for p in made] == ["solo@x.test"]
        with statements(factory, startswith="INSERT") as many:
            made = insert_returning(session, Person,
                                    [{"email": f"p{i}@x.test"} for i in range(300)])
        assert sorted(p.email for p in made) == sorted(f"p{i}@x.test" for i in range(300))
        assert all(session.get(Person, p.id) is p for p in made)
        series = insert_returning(session, Series, [{"series_key": "k"}])[0].id
        occurrences = _table(Occurrence)
        with statements(factory, startswith="INSERT") as occurrence_inserts:
            for count in (1, 300):
                starts = [WHEN + timedelta(days=count + i) for i in range(count)]
                back = bulk_insert(session, occurrences, [
                    {"series_id": series, "original_start": start, "scheduled_start": start,
                     "scheduled_end": start, "status": OccurrenceStatus.CONFIRMED,
                     "manager_response": None, "cancelled_at": None} for start in starts],
                    occurrences.c.id, occurrences.c.original_start)
                assert sorted(start for _, start in back) == starts
    assert len(one) == len(many) == 1 and len(occurrence_inserts) == 2
    if dialect == "postgresql":
        assert one[0].sql == many[0].sql
        assert occurrence_inserts[0].sql == occurrence_inserts[1].sql
    else:  # SQLite: the multi-row VALUES list, as before
        assert one[0].sql != many[0].sql


def test_rows_with_other_keys_get_their_own_statement_and_the_column_defaults(
        factory: sessionmaker[Session]) -> None:
    """A page's new series: those described by their first event carry a title and more,
    the others only their key. As the ORM's bulk INSERT does, None for a column with a
    default counts as not given through `insert_returning` (the default applies)."""
    with factory.begin() as session, statements(factory, startswith="INSERT") as inserts:
        made = insert_returning(session, Series, [
            {"series_key": "bare", "first_seen_at": WHEN},
            {"series_key": "described", "first_seen_at": WHEN, "title": "1:1", "human_count": 2},
            {"series_key": "nulls", "first_seen_at": WHEN, "title": None, "human_count": None},
            {"series_key": "also bare", "first_seen_at": WHEN, "time_zone": None}])
        by_key = {s.series_key: s for s in made}
        assert set(by_key) == {"bare", "described", "nulls", "also bare"}
        assert (by_key["described"].title, by_key["described"].human_count) == ("1:1", 2)
        for key in ("bare", "nulls", "also bare"):
            series = by_key[key]
            assert (series.title, series.human_count, series.confidence, series.status,
                    series.time_zone) == ("", 0, 0.0, SeriesStatus.ACTIVE, None)
        # "nulls" goes with "bare"; "also bare" has a key more (None, no default: NULL)
        assert len(inserts) == 3
        people = _table(Person)
        back = bulk_insert(session, people, [
            {"email": "a@x.test"}, {"email": "b@x.test", "display_name": "B"}],
            people.c.email, people.c.display_name, people.c.opted_out, people.c.links_version)
        assert sorted(back) == [("a@x.test", None, False, 0), ("b@x.test", "B", False, 0)]
        assert bulk_insert(session, people, [], people.c.id) == []
        assert insert_returning(session, Person, []) == []
        assert len(inserts) == 5


@pytest.mark.integration
def test_a_too_long_string_and_a_naive_datetime_are_still_refused(
        pg_factory: sessionmaker[Session]) -> None:
    """The arrays are cast to varchar[] without the column's length: an explicit cast to
    varchar(n) would cut a longer value silently; the INSERT's assignment still refuses it.
    A naive datetime meets `UTCDateTime`'s check inside the array too."""
    with pg_factory.begin() as session:
        with pytest.raises(DataError, match="too long"), session.begin_nested():
            insert_returning(session, Person, [{"email": "x" * 321}])
        with pytest.raises(StatementError, match="naive datetime"), session.begin_nested():
            insert_returning(session, Series, [{"series_key": "k", "first_seen_at":
                                                WHEN.replace(tzinfo=None)}])
        assert insert_returning(session, Person, [{"email": "x" * 320}])[0].id


@pytest.mark.integration
def test_a_rolled_back_savepoint_leaves_none_of_its_rows_in_the_session(
        pg_factory: sessionmaker[Session]) -> None:
    """The bookkeeping of `insert_returning` on PostgreSQL's path (the ORM's "orm" strategy
    loads the returned objects): a rolled-back savepoint's rows leave the session."""
    with pg_factory.begin() as session:
        kept = insert_returning(session, Person, [{"email": "kept@x.test"}])
        with pytest.raises(LookupError), session.begin_nested():
            gone = insert_returning(session, Person, [{"email": "gone@x.test"}])
            assert gone[0] in session
            raise LookupError
        assert gone[0] not in session and kept[0] in session
        again = insert_returning(session, Person, [{"email": "gone@x.test"}])
        assert again[0] in session and again[0] is not gone[0]


@pytest.mark.integration
def test_a_type_that_is_not_sent_as_an_array_keeps_the_values_list(
        pg_factory: sessionmaker[Session]) -> None:
    """No table bulk-inserted today has one, but a JSON column (say) would not be sent as an
    array: its rows go as a multi-row VALUES list, the other columns' types unchanged."""
    metadata = MetaData()
    table = Table("bulk_fallback", metadata, Column("id", Integer, primary_key=True),
                  Column("doc", JSON), Column("name", String(20)))
    metadata.create_all(pg_factory.kw["bind"])
    rows: list[dict[str, Any]] = [{"doc": {"a": [1, None]}, "name": "x"},
                                  {"doc": None, "name": None}]
    with pg_factory.begin() as session, statements(pg_factory, startswith="INSERT") as seen:
        back = bulk_insert(session, table, rows, table.c.doc, table.c.name)
    assert sorted(back, key=lambda r: r.name or "") == [(None, None), ({"a": [1, None]}, "x")]
    assert len(seen) == 1 and "VALUES" in seen[0].sql and "unnest" not in seen[0].sql
