"""A failed agenda write says why on the agenda row; a later good write clears it."""

from __future__ import annotations

from sqlalchemy import update

from service.agenda.models import AgendaRecord
from workers import actors

from .conftest import Harness, ProviderCase
from .helpers import add_topic, agenda_for_next, connect_pair


def _last_error(harness: Harness, agenda_id: int) -> str | None:
    with harness.session() as session:
        record = session.get(AgendaRecord, agenda_id)
        assert record is not None
        return record.last_error


def test_a_failed_write_keeps_its_reason_on_the_agenda_until_a_write_succeeds(
        harness: Harness, case: ProviderCase) -> None:
    connect_pair(harness, case)
    harness.sync()
    agenda_id, start = agenda_for_next(harness, case)
    assert _last_error(harness, agenda_id) is None
    sandbox = harness.sandbox(case.provider)
    add_topic(harness, case, "What should the next quarter focus on?")  # a write is due
    event_id = sandbox.inject_malformed_reads(case.manager, case.series_key, start)

    actors.write_agenda.send(agenda_id)
    harness.run()

    reason = _last_error(harness, agenda_id)
    assert reason is not None and reason.startswith("not written: MalformedEvent: ")
    assert event_id in reason and "\n" not in reason



def test_a_successful_write_clears_the_reason_of_an_earlier_failure(
        harness: Harness, case: ProviderCase) -> None:
    connect_pair(harness, case)
    harness.sync()
    agenda_id, _ = agenda_for_next(harness, case)
    with harness.runtime.factory.begin() as session:
        session.execute(update(AgendaRecord).where(AgendaRecord.id == agenda_id)
                        .values(last_error="not written: Transient: HTTP 503"))
    add_topic(harness, case, "What should the next quarter focus on?")  # a write is due

    actors.write_agenda.send(agenda_id)
    harness.run()

    assert _last_error(harness, agenda_id) is None



def test_a_write_answered_410_while_the_event_is_still_there_is_written_once_it_answers(
        harness: Harness, case: ProviderCase) -> None:
    """A 404/410 is believed only when a read agrees (the organizer dropped the occurrence);
    a refusal from a proxy or a provider glitch must not abandon the agenda for good."""
    connect_pair(harness, case)
    harness.sync()
    agenda_id, start = agenda_for_next(harness, case)
    sandbox = harness.sandbox(case.provider)
    topic = "Who covers the release while I am away?"
    sandbox.fail_writes(case.manager, status=410)
    add_topic(harness, case, topic)

    actors.reconcile.send()
    harness.run()

    with harness.session() as session:
        record = session.get(AgendaRecord, agenda_id)
        assert record is not None
        assert record.abandoned_etag is None  # not taken for a cancellation
        assert record.last_error is not None and "still there" in record.last_error
    assert topic not in sandbox.description_of(case.manager, case.series_key, start)

    sandbox.fail_writes(case.manager, status=None)
    harness.sync()  # the calendar finds the occurrence unchanged
    actors.reconcile.send()
    harness.run()

    assert topic in sandbox.description_of(case.manager, case.series_key, start)
    assert _last_error(harness, agenda_id) is None
