"""Incremental sync after the organizer changes the calendar, on both providers."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from service.calendars.models import Calendar
from service.pairs.models import Occurrence, OccurrenceStatus, SeriesStatus
from service.pairs.service import list_series
from workers import actors

from .conftest import Harness, ProviderCase
from .helpers import (
    NEW_REPORT,
    add_topic,
    agenda_of,
    block_count,
    calls,
    case_series,
    connect_pair,
    later,
    occurrence_at,
    row_counts,
    series_of,
    snapshot,
    upcoming,
)


def test_cancelled_occurrence_is_marked_cancelled_and_nothing_is_duplicated(
        harness: Harness, case: ProviderCase) -> None:
    connect_pair(harness, case)
    harness.sync()
    series = case_series(harness, case)
    start = upcoming(harness, case)[0]
    before = row_counts(harness)

    harness.sandbox(case.provider).cancel_occurrence(case.series_key, start)
    harness.sync()

    occurrence = occurrence_at(harness, series.id, start)
    assert occurrence.status == OccurrenceStatus.CANCELLED
    assert occurrence.cancelled_at is not None
    assert row_counts(harness) == before
    assert case_series(harness, case).status == SeriesStatus.ACTIVE  # later ones still planned


def test_moved_occurrence_keeps_its_original_start_and_its_agenda(
        harness: Harness, case: ProviderCase) -> None:
    connect_pair(harness, case)
    harness.sync()
    series = case_series(harness, case)
    start = upcoming(harness, case)[0]
    earlier = start - timedelta(hours=3)
    new_start = earlier if earlier > harness.clock() + timedelta(minutes=30) \
        else start + timedelta(hours=3)
    before = row_counts(harness)

    harness.sandbox(case.provider).move_occurrence(case.series_key, start, new_start)
    harness.sync()

    occurrence = occurrence_at(harness, series.id, start)
    assert occurrence.original_start == start
    assert occurrence.scheduled_start == new_start
    assert occurrence.scheduled_end - occurrence.scheduled_start == timedelta(minutes=30)
    assert occurrence.status == OccurrenceStatus.CONFIRMED
    assert row_counts(harness) == before  # the same occurrence, not a new one
    agenda = agenda_of(harness, occurrence.id)
    assert agenda is not None and agenda.written_hash == agenda.content_hash
    description = harness.sandbox(case.provider).description_of(case.manager, case.series_key,
                                                                 start)
    assert block_count(description) == 1
    with harness.session() as session:
        row = next(r for r in list_series(session, now=harness.clock())
                   if r.series_id == series.id)
    assert row.next_occurrence == new_start


def test_new_series_created_by_the_manager_is_detected_and_gets_an_agenda(
        harness: Harness, case: ProviderCase) -> None:
    connect_pair(harness, case)
    harness.sync()
    sandbox = harness.sandbox(case.provider)
    report = NEW_REPORT[case.provider]
    first = (harness.clock() + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    key = sandbox.create_series(organizer=case.manager, attendees=[report],
                                title="Weekly 1:1", first_start=first,
                                description="Shared notes: https://docs.example/new")

    harness.sync()

    with harness.session() as session:
        pairs = {(r.manager, r.report) for r in list_series(session, now=harness.clock())}
    assert (case.manager, report) in pairs
    series = series_of(harness, manager=case.manager, report=report)
    occurrence = occurrence_at(harness, series.id, first)
    agenda = agenda_of(harness, occurrence.id)
    assert agenda is not None and agenda.written_hash == agenda.content_hash
    description = sandbox.description_of(case.manager, key, first)
    assert block_count(description) == 1
    assert "https://docs.example/new" in description


def test_deleted_series_ends_and_gets_no_agenda_any_more(
        harness: Harness, case: ProviderCase) -> None:
    connect_pair(harness, case)
    harness.sync()
    series = case_series(harness, case)
    sandbox = harness.sandbox(case.provider)

    sandbox.delete_series(case.series_key)
    harness.sync()

    assert case_series(harness, case).status == SeriesStatus.ENDED
    with harness.session() as session:
        ahead = session.scalars(select(Occurrence.status).where(
            Occurrence.series_id == series.id,
            Occurrence.original_start > harness.clock())).all()
    assert ahead and set(ahead) == {OccurrenceStatus.CANCELLED}

    add_topic(harness, case, "Would change the agenda if the series were alive")
    sandbox.clear_requests()
    harness.sync()
    actors.reconcile.send()
    harness.run()
    assert calls(sandbox).writes == []


def test_series_cut_short_cancels_only_the_occurrences_after_the_end(
        harness: Harness, case: ProviderCase) -> None:
    connect_pair(harness, case)
    harness.sync()
    series = case_series(harness, case)
    ahead = later(harness, case, weeks=5)
    assert len(ahead) >= 3
    sandbox = harness.sandbox(case.provider)

    sandbox.end_series(case.series_key, ahead[0] + timedelta(hours=1))
    harness.sync()

    assert occurrence_at(harness, series.id, ahead[0]).status == OccurrenceStatus.CONFIRMED
    for start in ahead[1:]:
        assert occurrence_at(harness, series.id, start).status == OccurrenceStatus.CANCELLED
    assert case_series(harness, case).status == SeriesStatus.ACTIVE
    agenda = agenda_of(harness, occurrence_at(harness, series.id, ahead[0]).id)
    assert agenda is not None and agenda.written_hash == agenda.content_hash

    sandbox.end_series(case.series_key, harness.clock() - timedelta(days=1))
    harness.sync()

    assert occurrence_at(harness, series.id, ahead[0]).status == OccurrenceStatus.CANCELLED
    assert case_series(harness, case).status == SeriesStatus.ENDED


def test_lost_cursor_resyncs_in_full_without_duplicating_anything(
        harness: Harness, case: ProviderCase) -> None:
    connect_pair(harness, case)
    harness.sync()
    harness.sync()  # our writes echo back into the report's copy
    before = snapshot(harness)
    with harness.session() as session:
        full_before = {c.id: c.last_full_sync_at for c in session.scalars(select(Calendar))}
    sandbox = harness.sandbox(case.provider)

    sandbox.expire_cursors()
    sandbox.clear_requests()
    harness.clock.now += timedelta(seconds=1)  # tell the full sync's timestamp apart
    harness.sync()

    served = calls(sandbox)
    assert len(served.status(410)) == len(full_before)  # each calendar's cursor was refused
    assert served.writes == []  # the agendas are already there
    assert snapshot(harness) == before
    with harness.session() as session:
        for calendar in session.scalars(select(Calendar)):
            earlier = full_before[calendar.id]
            assert calendar.last_full_sync_at is not None and earlier is not None
            assert calendar.last_full_sync_at > earlier
            assert calendar.cursor

