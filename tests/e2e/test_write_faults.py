"""A write answered "gone" (Graph 404; Google 412, then the re-read shows it cancelled) is
news: the calendar is synced right after and the occurrence recorded cancelled, and no later
reconcile tries that write again, on both providers (issue 11, item 7)."""

from __future__ import annotations

from sqlalchemy import select

from service.calendars.models import Calendar
from service.pairs.models import OccurrenceCopy, OccurrenceStatus
from workers import actors

from .conftest import Harness, ProviderCase
from .helpers import add_topic, agenda_of, calls, case_series, connect_pair, occurrence_at, upcoming


def _reconcile(harness: Harness) -> None:
    actors.reconcile.send()
    harness.run()


def test_a_write_into_a_deleted_occurrence_syncs_the_calendar_at_once(
        harness: Harness, case: ProviderCase) -> None:
    connect_pair(harness, case)
    harness.sync()
    _reconcile(harness)
    start = upcoming(harness, case)[0]
    occurrence = occurrence_at(harness, case_series(harness, case).id, start)
    record = agenda_of(harness, occurrence.id)
    assert record is not None and record.written_copy_id is not None
    with harness.session() as session:
        copy = session.get(OccurrenceCopy, record.written_copy_id)
        assert copy is not None
        event_id = copy.provider_event_id
    add_topic(harness, case, "How the launch went")  # the agenda needs a new write
    sandbox = harness.sandbox(case.provider)
    sandbox.cancel_occurrence(case.series_key, start)  # and our sync has not seen it yet
    sandbox.clear_requests()

    actors.write_agenda.send(record.id)
    harness.run()

    served = calls(sandbox)
    first_write = next(i for i, r in enumerate(served.api) if r in served.writes)
    assert any(r in served.lists for r in served.api[first_write + 1:]), \
        "the calendar was not synced after the write met the deleted occurrence"
    assert occurrence_at(harness, occurrence.series_id, start).status == \
        OccurrenceStatus.CANCELLED
    with harness.session() as session:
        assert session.scalars(select(Calendar.sync_requested_at)).all() == [None, None]

    sandbox.clear_requests()
    _reconcile(harness)
    assert [w for w in calls(sandbox).writes if w.path.endswith(event_id)] == []
