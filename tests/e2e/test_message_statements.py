"""What one provider message reads beside its own work (issue 14, target 6): the account it
acts for, with its pace, in one statement; the connector without reading the calendar
again; a write recorded with two UPDATEs and no re-read. Counted with `tests.statements`
on the real actors (called as functions: the same context, pace and errors as a message).
The planner's own reads are left out: they are the planner's business.
"""

from __future__ import annotations

from datetime import timedelta

import dramatiq
import pytest
from sqlalchemy import select, update

from service.accounts.models import Account
from service.agenda.planner import plan_due_agendas
from service.calendars.models import Calendar
from service.db import utcnow
from tests.statements import Statement, statements
from workers import actors

from .conftest import Harness, ProviderCase
from .helpers import add_topic, agenda_of, calls, connect_pair, upcoming

SQL = ("SELECT", "INSERT", "UPDATE", "DELETE")  # not SQLite's BEGIN / PRAGMA
ACTING = "SELECT accounts.id, accounts.provider, accounts.not_before FROM"
CREDENTIALS = "SELECT accounts.id, accounts.provider, accounts.email,"  # a whole account row
WHOLE_ROWS = ("SELECT agendas.id,", "SELECT occurrences.id,", "SELECT series.id,",
              "SELECT occurrence_copies.id,", "SELECT calendars.id,", "SELECT calendars.account_id")


def _sent(seen: list[Statement]) -> list[str]:
    """Each statement on one line."""
    return [" ".join(s.sql.split()) for s in seen]


def _one_write_due(harness: Harness, case: ProviderCase) -> list[int]:
    """A synced pair with a topic added: the one agenda write it owes."""
    connect_pair(harness, case)
    harness.sync()
    add_topic(harness, case, "The hiring plan")
    with harness.runtime.factory.begin() as session:
        due = plan_due_agendas(session, settings=harness.settings, now=harness.clock())
    assert len(due) == 1
    return due


def test_one_agenda_write_reads_its_account_once_and_records_with_two_updates(
        harness: Harness, case: ProviderCase) -> None:
    due = _one_write_due(harness, case)

    with statements(harness.runtime.factory, startswith=SQL) as seen:
        actors.write_agenda(due[0])

    start = upcoming(harness, case)[0]
    assert "The hiring plan" in harness.sandbox(case.provider).description_of(
        case.manager, case.series_key, start)
    sent = _sent(seen)
    assert sent[0].startswith(f"{ACTING} agendas JOIN occurrence_copies")  # with its pace
    assert sent[1].startswith("SELECT agendas.id,") and "LEFT OUTER JOIN series" in sent[1] \
        and "LEFT OUTER JOIN calendars" in sent[1]  # agenda, occurrence, series, copy: once
    assert [s for s in sent[2:] if s.startswith(WHOLE_ROWS + (ACTING,))] == []
    assert [s for s in sent if s.startswith(CREDENTIALS)] == [sent[-4]]  # the connector's
    assert [s.split(" SET ")[0].split(" (")[0] for s in sent[-3:]] == [
        "UPDATE occurrence_copies", "UPDATE agendas", "INSERT INTO provider_calls"]
    agenda = agenda_of(harness, _occurrence_of(harness, due[0]))
    assert agenda is not None and agenda.written_at is not None and not agenda.needs_write


def test_a_calendar_sync_reads_its_account_once_before_the_sync(
        harness: Harness, case: ProviderCase) -> None:
    connect_pair(harness, case)
    harness.sync()
    with harness.session() as session:
        calendar_id = session.scalars(select(Calendar.id).order_by(Calendar.id)).first()
    assert calendar_id is not None

    with statements(harness.runtime.factory, startswith=SQL) as seen:
        actors.sync_calendar(calendar_id)

    sent = _sent(seen)
    lease = next(i for i, s in enumerate(sent) if s.startswith("UPDATE calendars"))
    assert len(sent[:lease]) == 2, sent[:lease]  # (the old code: 5)
    assert sent[0].startswith(f"{ACTING} accounts JOIN calendars")  # with its pace
    assert sent[1].startswith(CREDENTIALS)  # the connector knows the calendar's account


def test_a_throttled_account_still_waits_on_the_lookup_that_found_it(
        harness: Harness, case: ProviderCase) -> None:
    due = _one_write_due(harness, case)
    with harness.runtime.factory.begin() as session:
        session.execute(update(Account).values(not_before=utcnow() + timedelta(minutes=5)))
    sandbox = harness.sandbox(case.provider)
    sandbox.clear_requests()

    with statements(harness.runtime.factory, startswith=SQL) as seen, \
            pytest.raises(dramatiq.Retry) as retry:
        actors.write_agenda(due[0])

    assert retry.value.delay is not None and 4 * 60_000 < retry.value.delay <= 5 * 60_000
    assert len(seen) == 1 and _sent(seen)[0].startswith(ACTING)  # no second read for the pace
    assert calls(sandbox).api == []


def _occurrence_of(harness: Harness, agenda_id: int) -> int:
    from service.agenda.models import AgendaRecord

    with harness.session() as session:
        occurrence_id = session.scalar(select(AgendaRecord.occurrence_id)
                                       .where(AgendaRecord.id == agenda_id))
    assert occurrence_id is not None
    return occurrence_id
