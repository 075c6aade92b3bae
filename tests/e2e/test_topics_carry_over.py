"""A queued topic is never lost: it leaves the queue only when the meeting it was planned into
took place, otherwise it goes to the pair's next occurrence, whatever series that is in. And no
agenda is written into an occurrence the provider shows cancelled or gone."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from service.agenda.block import extract_block
from service.agenda.items import add_action_item, add_topic, queued_topics
from service.agenda.models import AgendaRecord, PairTopic
from service.pairs.models import Occurrence, OccurrenceCopy, OccurrenceStatus, Outcome
from workers import actors

from .conftest import Harness, ProviderCase
from .helpers import agenda_of, calls, case_series, connect_pair, occurrence_at, upcoming

TOPIC = "How the on-call rota feels after the reorg"
FOLLOW_UP = "Send the conference budget request"
ZONES = {"google": "America/New_York", "microsoft": "Europe/London"}  # the seeded series' zones

# How each provider answers our write into an occurrence the organizer dropped, before our
# sync has heard of it: Google keeps cancelled events (events.get returns them with status
# "cancelled"), so the stale etag gets 412 and the re-read shows the cancellation; Outlook
# removes a deleted occurrence from the organizer's calendar, so the write gets 404.
STALE_WRITE = {"google": 412, "microsoft": 404}


@dataclass(frozen=True)
class Planned:
    """The occurrence the topic was planned into, and the pair."""

    start: datetime
    occurrence_id: int
    pair_id: int


@dataclass(frozen=True)
class Next:
    """Where the pair meets next after the drop: the series key and original start."""

    series_key: str
    start: datetime


@pytest.fixture(autouse=True)
def _two_weeks_ahead(harness: Harness) -> None:
    """Agendas are written two weeks ahead, so the occurrence after a dropped one has one."""
    harness.runtime.settings.agenda_horizon_days = 15


def _reconcile(harness: Harness) -> None:
    actors.reconcile.send()
    harness.run()


def _block(harness: Harness, case: ProviderCase, series_key: str, start: datetime) -> str:
    """The agenda block the invite at (series, start) holds, as a person reads it."""
    description = harness.sandbox(case.provider).description_of(case.manager, series_key, start)
    block = extract_block(description)
    assert block is not None, f"no agenda in the invite of {series_key} at {start.isoformat()}"
    return html.unescape(block)


def _queue_topic_into_next(harness: Harness, case: ProviderCase) -> Planned:
    """Connect the pair, queue a topic and an action item, and let Rapport plan and write them
    into the next occurrence."""
    connect_pair(harness, case)
    harness.sync()
    series = case_series(harness, case)
    assert series.pair_id is not None
    with harness.runtime.factory.begin() as session:
        add_topic(session, pair_id=series.pair_id, text=TOPIC)
        add_action_item(session, pair_id=series.pair_id, text=FOLLOW_UP)
    _reconcile(harness)
    start = upcoming(harness, case)[0]
    assert TOPIC in _block(harness, case, case.series_key, start)
    return Planned(start, occurrence_at(harness, series.id, start).id, series.pair_id)


def _occurrence(harness: Harness, occurrence_id: int) -> Occurrence:
    with harness.session() as session:
        row = session.get(Occurrence, occurrence_id)
        assert row is not None
        session.expunge_all()
        return row


def _drop(harness: Harness, case: ProviderCase, how: str, start: datetime) -> Next:
    """The organizer drops the occurrence at `start` the way `how` says."""
    sandbox = harness.sandbox(case.provider)
    if how == "cancel":
        sandbox.cancel_occurrence(case.series_key, start)
        return Next(case.series_key, next(s for s in upcoming(harness, case) if s > start))
    if how == "split":
        # "this and following": Google gives the old series an UNTIL and starts a new series
        # (a new event id); Outlook on the web likewise ends the old series and makes a new,
        # unlinked one from the chosen occurrence on (its seriesId does not name the old
        # series: OfficeDev/office-js#1571), as EWS does when a recurrence is changed
        # (OfficeDev/ews-managed-api#168: past and future occurrences become two series).
        sandbox.end_series(case.series_key, start - timedelta(minutes=1))
    else:  # "recreate": the series is deleted and a fresh one booked in the same slot
        sandbox.delete_series(case.series_key)
    key = sandbox.create_series(organizer=case.manager, attendees=[case.report],
                                title="1:1 (new series)", first_start=start,
                                time_zone=ZONES[case.provider])
    return Next(key, start)


@pytest.mark.parametrize("how", ["cancel", "split", "recreate"])
def test_a_topic_planned_into_a_dropped_occurrence_goes_to_the_pairs_next_one(
        harness: Harness, case: ProviderCase, how: str) -> None:
    planned = _queue_topic_into_next(harness, case)

    after = _drop(harness, case, how, planned.start)
    harness.sync()
    _reconcile(harness)

    assert _occurrence(harness, planned.occurrence_id).status == OccurrenceStatus.CANCELLED
    block = _block(harness, case, after.series_key, after.start)
    assert TOPIC in block
    assert FOLLOW_UP in block
    with harness.session() as session:
        assert [t.text for t in queued_topics(session, pair_id=planned.pair_id)] == [TOPIC]


def test_a_topic_leaves_the_queue_once_the_meeting_it_was_planned_into_took_place(
        harness: Harness, case: ProviderCase) -> None:
    planned = _queue_topic_into_next(harness, case)
    occurrence = _occurrence(harness, planned.occurrence_id)

    harness.clock.now = occurrence.scheduled_end + timedelta(hours=1)
    _reconcile(harness)  # settles the meeting as held
    _reconcile(harness)  # plans the agendas after it

    assert _occurrence(harness, planned.occurrence_id).outcome == Outcome.HELD
    following = upcoming(harness, case)[0]
    block = _block(harness, case, case.series_key, following)
    assert TOPIC not in block
    assert FOLLOW_UP in block  # an open action item carries over until it is closed
    with harness.session() as session:
        assert queued_topics(session, pair_id=planned.pair_id) == []


@pytest.mark.parametrize("how", ["cancel", "split", "recreate"])
def test_no_agenda_is_written_into_an_occurrence_dropped_before_our_sync(
        harness: Harness, case: ProviderCase, how: str) -> None:
    planned = _queue_topic_into_next(harness, case)
    start = planned.start
    record = agenda_of(harness, planned.occurrence_id)
    assert record is not None
    sandbox = harness.sandbox(case.provider)
    before = sandbox.description_of(case.manager, case.series_key, start)
    with harness.runtime.factory.begin() as session:  # changes the planned agenda
        add_topic(session, pair_id=planned.pair_id, text="Feedback on the offsite")

    after = _drop(harness, case, how, start)  # and our sync has not seen it yet
    dropped_event = _event_id(harness, planned.occurrence_id)
    sandbox.clear_requests()
    actors.write_agenda.send(record.id)
    harness.run()  # the refused write syncs the calendar at once

    assert [w.status for w in calls(sandbox).writes
            if w.path.endswith(dropped_event)] == [STALE_WRITE[case.provider]]
    assert sandbox.description_of(case.manager, case.series_key, start) == before
    with harness.session() as session:
        stored = session.get(AgendaRecord, record.id)
        assert stored is not None
        assert stored.abandoned_etag is not None
        assert stored.written_hash == record.written_hash
        tied = session.scalars(select(PairTopic.used_in_occurrence_id)).all()
        assert planned.occurrence_id not in tied  # both topics moved on to the next one

    sandbox.clear_requests()
    _reconcile(harness)  # no second try into the dropped occurrence
    assert [w for w in calls(sandbox).writes if w.path.endswith(dropped_event)] == []

    harness.sync()
    _reconcile(harness)
    block = _block(harness, case, after.series_key, after.start)
    assert TOPIC in block and "Feedback on the offsite" in block
    assert _occurrence(harness, planned.occurrence_id).status == OccurrenceStatus.CANCELLED


def _event_id(harness: Harness, occurrence_id: int) -> str:
    """The provider event id of the organizer's copy of an occurrence (as in the URL path)."""
    with harness.session() as session:
        record = session.scalar(select(AgendaRecord).where(
            AgendaRecord.occurrence_id == occurrence_id))
        assert record is not None and record.written_copy_id is not None
        from_copy = session.get(OccurrenceCopy, record.written_copy_id)
        assert from_copy is not None
        return from_copy.provider_event_id
