"""One sync round over the memory connector: when the cursor is saved, and the full resync
that answers an expired cursor."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from office import MAYA, Office
from sqlalchemy import select

from connectors.base import ChangePage
from sandbox.memory import MemoryConnector
from service.calendars.models import Calendar
from service.pairs.models import Occurrence, OccurrenceCopy, OccurrenceStatus


class Crash(Exception):
    """The worker dies between two pages."""


class Watched(MemoryConnector):
    """A memory connector that notes the stored cursor each time the sync asks for the next
    page (the previous page is committed by then), and can die after some pages."""

    def __init__(self, office: Office, email: str, *, crash_after: int | None = None) -> None:
        super().__init__(office.world, email, page_size=10)
        self.office = office
        self.crash_after = crash_after
        self.stored_cursors: list[str | None] = []
        self.handed_cursors: list[str | None] = []

    def list_changes(self, calendar_id: str, cursor: str | None, *, window_start: datetime,
                     window_end: datetime) -> Iterator[ChangePage]:
        pages = super().list_changes(calendar_id, cursor, window_start=window_start,
                                     window_end=window_end)
        for number, page in enumerate(pages):
            if number:
                self.stored_cursors.append(stored_cursor(self.office))
            if self.crash_after is not None and number == self.crash_after:
                raise Crash
            self.handed_cursors.append(page.cursor)
            yield page


def stored_cursor(office: Office) -> str | None:
    with office.factory() as session:
        calendar = session.get(Calendar, office.calendars[MAYA])
        assert calendar is not None
        return calendar.cursor


def upcoming(office: Office) -> datetime:
    return next(s for s in office.world.occurrence_starts(
        "maya-sam", until=office.now + timedelta(days=30)) if s > office.now)


def test_the_cursor_is_saved_with_the_last_page_only(office: Office) -> None:
    office.connect(MAYA)
    connector = Watched(office, MAYA)

    outcome = office.sync(MAYA, connector)

    assert len(connector.handed_cursors) > 2 and outcome.full_sync
    assert connector.handed_cursors[:-1] == [None] * (len(connector.handed_cursors) - 1)
    assert connector.stored_cursors == [None] * (len(connector.handed_cursors) - 1)
    assert stored_cursor(office) == connector.handed_cursors[-1] is not None


def test_a_crash_between_pages_keeps_no_cursor_and_the_next_round_starts_over(
        office: Office) -> None:
    office.connect(MAYA)

    with pytest.raises(Crash):
        office.sync(MAYA, Watched(office, MAYA, crash_after=2))
    with office.factory() as session:
        applied_before = len(session.scalars(select(OccurrenceCopy)).all())
    assert stored_cursor(office) is None and applied_before > 0

    outcome = office.sync(MAYA)

    assert outcome.full_sync and stored_cursor(office)
    with office.factory() as session:
        assert len(session.scalars(select(OccurrenceCopy)).all()) > applied_before


def test_an_expired_cursor_resyncs_in_full_and_sweeps_what_vanished(office: Office) -> None:
    office.connect(MAYA)
    office.sync(MAYA)
    old_cursor = stored_cursor(office)
    when = upcoming(office)
    # the provider forgets our cursor, and with it the news of this cancellation
    office.world.expire_cursors()
    office.world.cancel_occurrence("maya-sam", when)
    office.calls.clear()

    outcome = office.sync(MAYA)

    assert outcome.cursor_expired and outcome.full_sync
    with office.factory() as session:
        occurrence = session.scalars(select(Occurrence).where(
            Occurrence.original_start == when)).one()
        copy = session.scalars(select(OccurrenceCopy).where(
            OccurrenceCopy.occurrence_id == occurrence.id)).one()
        calendar = session.get(Calendar, office.calendars[MAYA])
    assert copy.removed and occurrence.status == OccurrenceStatus.CANCELLED
    assert occurrence.id in outcome.occurrences_cancelled
    assert calendar is not None and calendar.last_full_sync_at == office.now
    assert calendar.cursor and calendar.cursor != old_cursor
    assert office.operations()[0] == "events.list" and len(office.operations()) >= 2


def test_an_unchanged_calendar_is_one_listing_and_changes_nothing(office: Office) -> None:
    office.connect(MAYA)
    office.sync(MAYA)
    office.calls.clear()

    outcome = office.sync(MAYA)

    assert office.operations() == ["events.list"]
    assert not outcome.full_sync and outcome.events == 0
    assert outcome.occurrences_changed == set()
