"""A page of changes is applied as a batch: one savepoint and a few flushes per page, not
per event; a conflict with a concurrent sync applies the page again."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

import pytest
from office import MAYA, Office
from sqlalchemy import event, func, insert, select

from service.calendars.models import Calendar, QuarantinedItem
from service.pairs.models import Occurrence, OccurrenceCopy, OccurrenceStatus, Pair, Series
from service.people.models import Person
from service.sync.apply import ApplyResult, CalendarApplier
from service.sync.calendar_sync import apply_page
from tests.statements import statements
from tests.unit.test_apply_with_fake import apply, pages_of


def test_a_page_takes_one_savepoint_and_flushes_per_series_not_per_event(
        office: Office) -> None:
    office.connect(MAYA)
    pages = pages_of(office, MAYA)
    events = sum(len(p.events) for p in pages)
    flushes: list[int] = []
    result = ApplyResult()
    with statements(office.factory, startswith="SAVEPOINT") as savepoints, \
            office.factory.begin() as session:
        event.listen(session, "after_flush", lambda *_: flushes.append(1))
        calendar = session.get(Calendar, office.calendars[MAYA])
        assert calendar is not None
        for page in pages:
            apply_page(session, calendar, page, result=result, now=office.now)
    with office.factory() as session:
        series = session.scalar(select(func.count()).select_from(Series))
        copies = session.scalar(select(func.count()).select_from(OccurrenceCopy))
    assert events > 20 and copies == len(result.seen_copy_ids) > 20
    assert len(savepoints) == len(pages)
    # flushes follow the series (a new one's id, its pair, its people), not the events;
    # two more per page for the batch (occurrences, then their copies)
    assert series is not None and events > 4 * series
    assert len(flushes) <= 8 * series + 2 * len(pages)


def test_a_conflicting_insert_applies_the_page_again(
        office: Office, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Another sync commits an occurrence of a series it stored (the report's calendar)
    after ours loaded the series' occurrences: our insert of it fails on the unique key, and
    the page is applied again."""
    office.connect(MAYA)
    pages = pages_of(office, MAYA)
    with office.factory.begin() as session:
        for key in {e.ical_uid for p in pages for e in p.events if e.series_id and e.ical_uid}:
            session.add(Series(series_key=key, first_seen_at=office.now))
    real_load = CalendarApplier._load_occurrences
    raced: list[int] = []

    def load_then_race(self: CalendarApplier, series_ids: Sequence[int]) -> None:
        real_load(self, series_ids)
        series_id = series_ids[0]
        if raced:
            return
        occurrence = next(e for p in pages for e in p.events
                          if e.series_id and e.original_start and e.start and e.end)
        self.session.execute(insert(Occurrence).values(
            series_id=series_id, original_start=occurrence.original_start,
            scheduled_start=occurrence.start, scheduled_end=occurrence.end,
            status=OccurrenceStatus.CONFIRMED))
        raced.append(series_id)

    monkeypatch.setattr(CalendarApplier, "_load_occurrences", load_then_race)
    result = ApplyResult()
    with caplog.at_level(logging.INFO, logger="service.sync.apply"), \
            office.factory.begin() as session:
        calendar = session.get(Calendar, office.calendars[MAYA])
        assert calendar is not None
        for page in pages:
            apply_page(session, calendar, page, result=result, now=office.now)
    assert raced
    assert any("applying it again" in r.getMessage() for r in caplog.records)
    with office.factory() as session:
        quarantined = session.scalar(select(func.count()).select_from(QuarantinedItem))
        stored = session.scalar(select(func.count()).select_from(Occurrence))
        copies = session.scalar(select(func.count()).select_from(OccurrenceCopy))
    listed = sum(1 for p in pages for e in p.events if e.series_id and e.original_start)
    assert quarantined == 0
    assert stored == copies == len(result.seen_copy_ids) == listed
    assert result.events == sum(len(p.events) for p in pages)


def test_every_new_series_of_a_page_records_its_two_peoples_names(office: Office) -> None:
    """New series are described before they have an id: each still records the names the
    provider sends for its pair's two people, not only the first series of the page."""
    office.connect(MAYA)
    pages = pages_of(office, MAYA)
    apply(office, MAYA, pages)
    sent = {a.email: a.display_name for p in pages for e in p.events for a in e.attendees
            if a.display_name}
    with office.factory() as session:
        names = {p.id: (p.email, p.display_name) for p in session.scalars(select(Person))}
        pairs = session.scalars(select(Pair)).all()
    paired = dict(names[i] for pair in pairs for i in (pair.manager_id, pair.report_id))
    assert len(pairs) >= 3
    assert paired == {email: sent[email] for email in paired}


def test_a_pages_new_series_people_and_pairs_take_one_insert_per_table(
        office: Office) -> None:
    """A first sync creates a series, its source, its people and its pair for every 1:1:
    set-wise per page (one INSERT per table), not a handful of statements per series."""
    office.connect(MAYA)
    pages = pages_of(office, MAYA)
    with statements(office.factory, startswith="INSERT INTO") as seen:
        apply(office, MAYA, pages)
    inserts = Counter(s.sql.split()[2] for s in seen)
    with office.factory() as session:
        series = session.scalar(select(func.count()).select_from(Series)) or 0
        pairs = session.scalar(select(func.count()).select_from(Pair)) or 0
    assert series > len(pages) and pairs > len(pages)
    for table in ("series_sources", "people", "pairs"):
        assert 1 <= inserts.get(table, 0) <= len(pages), (table, inserts)
    # series: one INSERT per row shape and page (described, or first seen cancelled)
    assert 1 <= inserts.get("series", 0) <= 2 * len(pages), inserts


def test_a_pushed_page_reads_its_series_occurrences_pairs_and_people_once_per_kind(
        office: Office) -> None:
    """An incremental page names stored series: they, their occurrences, their pairs and
    the pairs' people are read once for the page, not once per event (issue 14 target 6:
    three moved occurrences of three series cost 19 such reads before, 4 now)."""
    office.connect(MAYA)
    office.sync(MAYA)
    keys = [key for key in office.world.series_keys()
            if MAYA in (office.world.series[key].organizer, *office.world.series[key].attendees)]
    moved = []
    for key in keys[:3]:
        original = office.world.occurrence_starts(key, until=office.now + timedelta(days=30))[0]
        office.world.move_occurrence(key, original, original + timedelta(hours=1))
        moved.append((key, original))
    assert len(moved) == 3
    with statements(office.factory, startswith="SELECT") as seen:
        outcome = office.sync(MAYA)
    reads = [" ".join(s.sql.split()) for s in seen]
    assert outcome.events >= 3 and len(outcome.occurrences_changed) == 3
    counts = {table: sum(r.startswith(f"SELECT {table}.id") for r in reads)
              for table in ("series", "occurrences", "pairs", "people")}
    # series: the page's and `settle_series`' lock; pairs: with their people, whose names
    # each series' `remember_names` finds among them
    assert counts == {"series": 2, "occurrences": 1, "pairs": 1, "people": 0}, reads
    with office.factory() as session:
        starts = {i: start for i, start in session.execute(
            select(Occurrence.id, Occurrence.scheduled_start)
            .where(Occurrence.id.in_(outcome.occurrences_changed)))}
    assert sorted(starts.values()) == sorted(o + timedelta(hours=1) for _, o in moved)
