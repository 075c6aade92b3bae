"""Applying pages of provider changes onto storage, with pages from the memory connector."""

from __future__ import annotations

from datetime import datetime, timedelta

from office import MAYA, SAM, Office
from sqlalchemy import select

from connectors.base import CalendarEvent, ChangePage, EventStatus, Response
from service.calendars.models import Calendar
from service.pairs.models import Occurrence, OccurrenceCopy, OccurrenceStatus, Pair, Series
from service.sync.apply import ApplyResult
from service.sync.calendar_sync import apply_page

SERIES_KEY = "maya-sam@rapport-sandbox"


def apply(office: Office, email: str, pages: list[ChangePage]) -> ApplyResult:
    """Apply `pages` to `email`'s calendar in one transaction, as one sync round does."""
    result = ApplyResult()
    with office.factory.begin() as session:
        calendar = session.get(Calendar, office.calendars[email])
        assert calendar is not None
        for page in pages:
            apply_page(session, calendar, page, result=result, now=office.now)
    return result


def pages_of(office: Office, email: str, cursor: str | None = None) -> list[ChangePage]:
    return list(office.connector(email).list_changes(
        email, cursor, window_start=office.now - timedelta(days=28),
        window_end=office.now + timedelta(days=120)))


def upcoming(office: Office) -> datetime:
    return next(s for s in office.world.occurrence_starts(
        "maya-sam", until=office.now + timedelta(days=30)) if s > office.now)


def test_a_new_series_is_detected_as_a_one_on_one_with_every_occurrence(
        office: Office) -> None:
    office.connect(MAYA)
    pages = pages_of(office, MAYA)
    listed = {e.original_start for p in pages for e in p.events if e.ical_uid == SERIES_KEY}

    result = apply(office, MAYA, pages)

    with office.factory() as session:
        series = session.scalars(select(Series).where(Series.series_key == SERIES_KEY)).one()
        pair = session.get(Pair, series.pair_id)
        starts = set(session.scalars(select(Occurrence.original_start)
                                     .where(Occurrence.series_id == series.id)))
    assert (series.organizer_email, series.other_email, series.human_count) == (MAYA, SAM, 2)
    assert pair is not None and series.id in result.series_touched
    assert starts == listed and len(starts) > 10


def test_applying_the_same_page_twice_changes_nothing_the_second_time(office: Office) -> None:
    office.connect(MAYA)
    pages = pages_of(office, MAYA)
    apply(office, MAYA, pages)

    again = apply(office, MAYA, pages)

    with office.factory() as session:
        occurrences = session.scalars(select(Occurrence)).all()
    assert again.occurrences_changed == set() and again.occurrences_cancelled == set()
    assert len({(o.series_id, o.original_start) for o in occurrences}) == len(occurrences)


def test_a_moved_occurrence_keeps_its_original_start_and_takes_the_new_time(
        office: Office) -> None:
    office.connect(MAYA)
    first = pages_of(office, MAYA)
    apply(office, MAYA, first)
    when = upcoming(office)
    new_start = when + timedelta(days=1, hours=2)
    office.world.move_occurrence("maya-sam", when, new_start)

    result = apply(office, MAYA, pages_of(office, MAYA, first[-1].cursor))

    with office.factory() as session:
        moved = session.scalars(select(Occurrence).where(Occurrence.original_start == when)
                                ).one()
    assert (moved.scheduled_start, moved.scheduled_end) == (
        new_start, new_start + timedelta(minutes=30))
    assert moved.status == OccurrenceStatus.CONFIRMED and result.occurrences_changed == {moved.id}


def test_a_tombstoned_organizer_copy_cancels_the_occurrence(office: Office) -> None:
    office.connect(MAYA)
    apply(office, MAYA, pages_of(office, MAYA))
    when = upcoming(office)
    copy_id = office.world.event_id(MAYA, "maya-sam", when)
    # a Graph-style @removed: only the id, no series, no times
    tombstone = CalendarEvent(id=copy_id, calendar_id=MAYA, status=EventStatus.CANCELLED)

    result = apply(office, MAYA, [ChangePage(events=[tombstone])])

    with office.factory() as session:
        copy = session.scalars(select(OccurrenceCopy).where(
            OccurrenceCopy.provider_event_id == copy_id)).one()
        occurrence = session.get(Occurrence, copy.occurrence_id)
    assert copy.removed and occurrence is not None
    assert occurrence.status == OccurrenceStatus.CANCELLED
    assert result.occurrences_cancelled == {occurrence.id}


def test_a_tombstoned_attendee_copy_is_their_decline_while_the_organizers_copy_remains(
        office: Office) -> None:
    for email in (MAYA, SAM):
        office.connect(email)
        apply(office, email, pages_of(office, email))
    when = upcoming(office)
    copy_id = office.world.event_id(SAM, "maya-sam", when)
    tombstone = CalendarEvent(id=copy_id, calendar_id=SAM, status=EventStatus.CANCELLED)

    result = apply(office, SAM, [ChangePage(events=[tombstone])])

    with office.factory() as session:
        occurrence = session.scalars(select(Occurrence).where(Occurrence.original_start == when)
                                     ).one()
    assert occurrence.status == OccurrenceStatus.CONFIRMED
    assert occurrence.report_response == str(Response.DECLINED)
    assert result.occurrences_cancelled == set() and occurrence.id in result.occurrences_changed
