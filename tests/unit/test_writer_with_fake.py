"""The agenda writer over the memory connector: one write, a merge after a concurrent human
edit (stale etag), and no write when the invite already holds the agenda."""

from __future__ import annotations

from datetime import datetime, timedelta

from office import MAYA, SAM, Office
from sqlalchemy import select

from sandbox.memory import MemoryConnector
from service.agenda.block import START_MARKER, block_hash_in
from service.agenda.models import AgendaRecord
from service.agenda.planner import plan_due_agendas
from service.agenda.writer import WriteOutcome, write_agenda
from service.pairs.models import Occurrence


def upcoming(office: Office) -> datetime:
    return next(s for s in office.world.occurrence_starts(
        "maya-sam", until=office.now + timedelta(days=30)) if s > office.now)


def planned(office: Office) -> tuple[int, datetime]:
    """Connect and sync both people, plan the agendas; the next Maya / Sam agenda's id."""
    for email in (MAYA, SAM):
        office.connect(email)
        office.sync(email)
    when = upcoming(office)
    with office.factory.begin() as session:
        due = plan_due_agendas(session, settings=office.settings, now=office.now)
        agenda_id = session.scalars(
            select(AgendaRecord.id).join(Occurrence, Occurrence.id == AgendaRecord.occurrence_id)
            .where(Occurrence.original_start == when)).one()
    assert agenda_id in due
    office.calls.clear()
    return agenda_id, when


def write(office: Office, agenda_id: int) -> WriteOutcome:
    connectors = {cid: email for email, cid in office.calendars.items()}

    def connector_for(calendar_id: int) -> MemoryConnector:
        return office.connector(connectors[calendar_id])

    return write_agenda(office.factory, agenda_id=agenda_id, connector_for=connector_for,
                        settings=office.settings, now=office.now)


def content_hash(office: Office, agenda_id: int) -> str:
    with office.factory() as session:
        record = session.get(AgendaRecord, agenda_id)
        assert record is not None
        return record.content_hash


def test_the_agenda_is_written_once_into_the_organizers_copy(office: Office) -> None:
    agenda_id, when = planned(office)

    first = write(office, agenda_id)
    second = write(office, agenda_id)

    described = office.world.description_of(MAYA, "maya-sam", when)
    assert (first, second) == (WriteOutcome.WRITTEN, WriteOutcome.UNCHANGED)
    assert office.operations() == ["events.patch"]
    assert described.startswith("Standing 1:1") and START_MARKER in described
    assert block_hash_in(described) == content_hash(office, agenda_id)
    with office.factory() as session:
        record = session.get(AgendaRecord, agenda_id)
        assert record is not None and record.written_hash == record.content_hash


def test_a_stale_etag_reads_the_invite_again_and_merges_the_human_edit(office: Office) -> None:
    agenda_id, when = planned(office)
    office.world.human_edit_description(MAYA, "maya-sam", when, "Sam: can we talk pay?")

    outcome = write(office, agenda_id)

    described = office.world.description_of(MAYA, "maya-sam", when)
    assert outcome is WriteOutcome.WRITTEN
    assert office.operations() == ["events.patch", "events.get", "events.patch"]
    assert described.startswith("Sam: can we talk pay?") and "Standing 1:1" not in described
    assert block_hash_in(described) == content_hash(office, agenda_id)


def test_an_invite_that_already_holds_the_agenda_costs_no_write(office: Office) -> None:
    agenda_id, when = planned(office)
    write(office, agenda_id)
    office.sync(MAYA)  # our own write echoes back with the next round
    office.calls.clear()

    outcome = write(office, agenda_id)

    assert outcome is WriteOutcome.UNCHANGED and office.operations() == []
    assert block_hash_in(office.world.description_of(MAYA, "maya-sam", when)) == content_hash(
        office, agenda_id)
