"""Map provider-neutral events onto storage: series, occurrences, copies, one-off meetings.

Idempotent by construction: every row is found by its natural key (series key, original
start, calendar + provider id) before it is created, so applying the same page twice, or
after a crash half-way, leaves the same state.

New occurrences and copies (nearly every event of a first sync) are plain values until the
batch is settled, then inserted with one bulk INSERT ... RETURNING per table: an ORM
object and a unit-of-work flush per event cost more than the rest of the sync together.
Rows that already exist are ORM objects, changed in place and flushed with the session.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from copy import copy as shallow_copy
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, inspect, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from connectors.base import CalendarEvent, EventStatus, Response
from service.agenda.block import block_hash_in
from service.agenda.invite_edits import absorb_invite_edits
from service.agenda.models import AgendaRecord
from service.bulk import bulk_insert, insert_returning
from service.calendars.models import Calendar, QuarantinedItem
from service.db import chunks
from service.pairs.detection import detect, humans_of
from service.pairs.models import (
    AdHocMeeting,
    Occurrence,
    OccurrenceCopy,
    OccurrenceStatus,
    Series,
    SeriesSource,
)
from service.pairs.service import link_pairs, pairs_with_people, refresh_pair_link, roles_of
from service.people.service import remember_names

log = logging.getLogger(__name__)

# the tables themselves: Core INSERTs of plain rows, without the ORM's per-row bookkeeping
_OCCURRENCES = cast(Table, Occurrence.__table__)
_COPIES = cast(Table, OccurrenceCopy.__table__)
_SERIES = cast(Table, Series.__table__)
CONFLICT_RETRIES = 2  # re-applications of a page (an event) after a concurrent insert of a row
MAX_STORED_DESCRIPTION = 256 * 1024  # larger descriptions are not kept (nor written into)


@dataclass(slots=True)
class NewOccurrence:
    """An occurrence first seen in this batch: the fields `_confirm` / `_cancel` set, kept as
    plain values until `_settle` inserts it and gives it its `id`."""

    series_id: int
    original_start: datetime
    scheduled_start: datetime
    scheduled_end: datetime
    status: str = OccurrenceStatus.CONFIRMED
    manager_response: str | None = None
    report_response: str | None = None
    cancelled_at: datetime | None = None
    dropped_at: datetime | None = None
    id: int | None = None

    def row(self) -> dict[str, Any]:
        return {"series_id": self.series_id, "original_start": self.original_start,
                "scheduled_start": self.scheduled_start, "scheduled_end": self.scheduled_end,
                "status": self.status, "manager_response": self.manager_response,
                "report_response": self.report_response, "cancelled_at": self.cancelled_at,
                "dropped_at": self.dropped_at}


AnyOccurrence = Occurrence | NewOccurrence


@dataclass
class ApplyResult:
    """What one round changed, so the caller knows which work follows."""

    series_touched: set[int] = field(default_factory=set)
    occurrences_cancelled: set[int] = field(default_factory=set)
    occurrences_changed: set[int] = field(default_factory=set)
    seen_copy_ids: set[int] = field(default_factory=set)
    events: int = 0
    skipped: int = 0


class CalendarApplier:
    """Applies the events of one calendar; caches rows by key for the length of a round."""

    def __init__(self, session: Session, calendar: Calendar, *, now: datetime) -> None:
        self.session = session
        self.calendar = calendar
        self.now = now
        self.result = ApplyResult()
        self._sources = {
            s.provider_series_id: s
            for s in session.scalars(select(SeriesSource).where(
                SeriesSource.calendar_id == calendar.id))
        }
        self._copies: dict[str, OccurrenceCopy] = {}  # by event id, read by `_prefetch`
        self._by_key: dict[str, Series | None] = {}  # series by key, None: not stored
        self._series: dict[int, Series] = {}
        self._occurrences: dict[tuple[int, datetime], Occurrence] = {}
        self._loaded: set[int] = set()  # series whose stored occurrences are all in the cache
        self._named: set[str] = set()  # keys of series whose names were recorded this round
        self._described: dict[int, tuple[Any, ...]] = {}  # series -> detection inputs seen
        self._roles: dict[int, tuple[str | None, str | None]] = {}  # series -> (manager, report)
        # rows of the batch, inserted by `_settle`: new occurrences by key, new copies by event
        # id (with the new occurrence whose id they wait for); then the ids they were given
        self._new_occurrences: dict[tuple[int, datetime], NewOccurrence] = {}
        self._new_copies: dict[str, tuple[dict[str, Any], NewOccurrence | None]] = {}
        self._inserted_occurrences: dict[tuple[int, datetime], int] = {}
        self._inserted_copies: dict[str, int] = {}
        self._noted: list[tuple[set[int], NewOccurrence]] = []
        self._held: Sequence[object] = ()  # pairs and people read by `_prefetch_series`

    def _prefetch(self, events: Sequence[CalendarEvent]) -> None:
        """Read what the events will look up, one query per kind: this calendar's copies of
        them (not every copy the calendar has: an incremental page names a few), and the
        series their new series keys name."""
        wanted = [e.id for e in events if e.id not in self._copies]
        for chunk in chunks(wanted):
            for copy in self.session.scalars(select(OccurrenceCopy).where(
                    OccurrenceCopy.calendar_id == self.calendar.id,
                    OccurrenceCopy.provider_event_id.in_(chunk))):
                self._copies[copy.provider_event_id] = copy
        keys = list({self._series_key(e) for e in events
                     if e.series_id is not None and e.series_id not in self._sources}
                    - self._by_key.keys())
        for chunk in chunks(keys):
            found = {s.series_key: s for s in self.session.scalars(
                select(Series).where(Series.series_key.in_(chunk)))}
            self._by_key.update({key: found.get(key) for key in chunk})
        self._prefetch_series(events)
        self._create_series(events)

    def _prefetch_series(self, events: Sequence[CalendarEvent]) -> None:
        """The stored series the events' sources name, their occurrences, pairs and people,
        one query per kind for the page instead of one per event (the people and pairs are
        held, so `roles_of` finds them in the identity map)."""
        sources = {self._sources[e.series_id].series_id for e in events
                   if e.series_id is not None and e.series_id in self._sources
                   and not _is_tombstone(e)}
        for chunk in chunks(sorted(sources - self._series.keys())):
            for series in self.session.scalars(select(Series).where(Series.id.in_(chunk))):
                self._series[series.id] = series
        unloaded = sorted({self._sources[e.series_id].series_id for e in events
                           if e.is_occurrence and not e.all_day and e.series_id in self._sources
                           and not _is_tombstone(e)} & (self._series.keys() - self._loaded))
        if unloaded:
            self._load_occurrences(unloaded)
        self._held = pairs_with_people(self.session, {
            pair_id for i in sources if i in self._series
            if (pair_id := self._series[i].pair_id) is not None})

    def _create_series(self, events: Sequence[CalendarEvent]) -> None:
        """Insert the page's new series at once, each described by its first event as
        `_series_for` would (its people and pair set-wise, `link_pairs`), with the source
        that event names: one INSERT per table for the page instead of ~15 statements per
        series. Later events of the page find them stored and described."""
        firsts: dict[str, CalendarEvent] = {}
        claimed: set[str] = set()
        for event in events:
            if not _reaches_series(event) or event.series_id in self._sources \
                    or event.series_id in claimed:
                continue
            key = self._series_key(event)
            if key in self._by_key and self._by_key[key] is None and key not in firsts:
                assert event.series_id is not None
                firsts[key] = event
                claimed.add(event.series_id)
        if not firsts:
            return
        fresh = {key: Series(series_key=key, first_seen_at=self.now) for key in firsts}
        described = [key for key, event in firsts.items() if _describes(event)]
        organizes = {key: self._detect_onto(fresh[key], firsts[key]) for key in described}
        roles = link_pairs(self.session, [fresh[key] for key in described],
                           names=[_names_of(firsts[key], fresh[key]) for key in described])
        columns = [c.key for c in _SERIES.columns]
        rows = [{name: value for name, value in inspect(series).dict.items() if name in columns}
                for series in fresh.values()]
        stored = {s.series_key: s for s in insert_returning(self.session, Series, rows)}
        sources = insert_returning(self.session, SeriesSource, [
            {"series_id": stored[key].id, "calendar_id": self.calendar.id,
             "provider_series_id": event.series_id,
             "is_organizer_copy": organizes.get(key, False)}
            for key, event in firsts.items()])
        self._sources.update((source.provider_series_id, source) for source in sources)
        for key, series in stored.items():
            self._by_key[key] = self._series[series.id] = series
            self._loaded.add(series.id)
        for key, linked in zip(described, roles, strict=True):
            series = stored[key]
            self._described[series.id] = _detection_inputs(firsts[key])
            self._roles[series.id] = linked or (series.organizer_email, series.other_email)
            if series.pair_id is not None:
                self._named.add(key)

    def _series_key(self, event: CalendarEvent) -> str:
        """The key that makes the manager's and the report's copies one series: the iCalendar
        UID both providers give, else this calendar's own series id."""
        return event.ical_uid or f"cal{self.calendar.id}:{event.series_id}"

    def apply_batch(self, events: Sequence[CalendarEvent]) -> None:
        """Apply a page of events in one savepoint; its new occurrences and copies are
        inserted together at its end (`_settle`), their ids read back from the INSERTs.

        A concurrent sync inserting the same rows (IntegrityError / OperationalError) rolls
        the page back and it is applied again, finding the rows the other worker committed.
        Any other failure, or conflicts that persist, and the page is applied event by event
        (`apply`), so only the broken event is quarantined."""
        for attempt in range(1 + CONFLICT_RETRIES):
            before = self._snapshot()
            try:
                with self.session.begin_nested():
                    self._prefetch(events)
                    for event in events:
                        self.result.events += 1
                        self._apply(event)
                    self._settle()
                return
            except (IntegrityError, OperationalError) as err:
                self._restore(before)
                self._forget_unsaved()
                log.info("calendar %s: a page of %d events met a concurrent write (%s)%s",
                         self.calendar.id, len(events), err.__class__.__name__,
                         "; applying it again" if attempt < CONFLICT_RETRIES else "")
            except Exception:  # noqa: BLE001 - find the broken event one at a time
                self._restore(before)
                self._forget_unsaved()
                break
        for event in events:
            self.apply(event)

    def _snapshot(self) -> dict[str, Any]:
        return {f.name: shallow_copy(getattr(self.result, f.name)) for f in fields(self.result)}

    def _restore(self, snapshot: dict[str, Any]) -> None:
        """Put the result back as it was before a rolled-back attempt (the caller holds it)."""
        for name, value in snapshot.items():
            setattr(self.result, name, value)

    def _settle(self) -> None:
        """Insert the batch's new occurrences, then their copies (each knowing its
        occurrence's id now), one bulk INSERT ... RETURNING id each (`bulk_insert`), and
        record the ids the result names. The series they point at were flushed when they
        were created."""
        if self._new_occurrences:
            # the ids come back with each row's natural key: a bulk INSERT returns its
            # rows in no promised order (asking for it makes SQLAlchemy insert row by row)
            c = _OCCURRENCES.c
            inserted = bulk_insert(self.session, _OCCURRENCES,
                                   [n.row() for n in self._new_occurrences.values()],
                                   c.id, c.series_id, c.original_start)
            for new_id, series_id, original in inserted:
                self._new_occurrences[(series_id, original)].id = new_id
                self._inserted_occurrences[(series_id, original)] = new_id
            self._new_occurrences.clear()
        if self._new_copies:
            rows = []
            for row, occurrence in self._new_copies.values():
                if occurrence is not None:
                    row["occurrence_id"] = occurrence.id
                rows.append(row)
            c = _COPIES.c
            for new_id, event_id in bulk_insert(self.session, _COPIES, rows,
                                                c.id, c.provider_event_id):
                self._inserted_copies[event_id] = new_id
                self.result.seen_copy_ids.add(new_id)
            self._new_copies.clear()
        for noted, occurrence in self._noted:
            assert occurrence.id is not None
            noted.add(occurrence.id)
        self._noted.clear()

    def _note(self, ids: set[int], occurrence: AnyOccurrence) -> None:
        """Add the occurrence's id to one of the result's sets, once it has one."""
        if isinstance(occurrence, NewOccurrence) and occurrence.id is None:
            self._noted.append((ids, occurrence))
        else:
            assert occurrence.id is not None
            ids.add(occurrence.id)

    def apply(self, event: CalendarEvent) -> None:
        """Apply one event or tombstone; a broken one is quarantined, never raised.

        The manager's and the report's calendars, synced at once, insert the same series
        and occurrences; the loser's insert fails on the unique key (PostgreSQL) and applying
        the event again finds the row the other worker committed.
        """
        self.result.events += 1
        for attempt in range(1 + CONFLICT_RETRIES):
            try:
                with self.session.begin_nested():
                    self._prefetch([event])
                    self._apply(event)
                    self._settle()
                return
            except (IntegrityError, OperationalError) as err:
                self._forget_unsaved()
                failure: Exception = err
                if attempt < CONFLICT_RETRIES:
                    log.info("calendar %s: event %s met a concurrent write (%s); applying again",
                             self.calendar.id, event.id, err.__class__.__name__)
            except Exception as err:  # noqa: BLE001 - bad input must not stop the round
                failure = err
                break
        log.warning("calendar %s: event %s quarantined: %s",
                    self.calendar.id, event.id, failure.__class__.__name__)
        self.quarantine(event.id, f"{failure.__class__.__name__}: {failure}"[:500])

    def _forget_unsaved(self) -> None:
        """Drop cached rows that a rolled-back attempt created; they are looked up again
        (the copies and occurrences from the database, which holds those that were kept)."""
        caches: tuple[dict[Any, Any], ...] = (self._sources, self._series, self._occurrences)
        for cache in caches:
            for key in [k for k, row in cache.items() if not inspect(row).persistent]:
                del cache[key]
        self._copies.clear()  # read again, with the rows other workers committed since
        self._by_key.clear()
        self._loaded.clear()  # other workers may have stored occurrences since
        self._named.clear()  # names written in the rolled-back attempt are gone too
        self._described.clear()
        self._roles.clear()
        self._new_occurrences.clear()
        self._new_copies.clear()
        self._inserted_occurrences.clear()
        self._inserted_copies.clear()
        self._noted.clear()
        self._held = ()

    def quarantine(self, event_id: str | None, reason: str) -> None:
        """Keep an unusable item's id and reason; the round goes on."""
        self.result.skipped += 1
        if event_id is None:
            return
        existing = self.session.scalar(select(QuarantinedItem).where(
            QuarantinedItem.calendar_id == self.calendar.id,
            QuarantinedItem.provider_event_id == event_id))
        if existing is None:
            self.session.add(QuarantinedItem(calendar_id=self.calendar.id,
                                             provider_event_id=event_id, reason=reason))
        else:
            existing.reason, existing.at = reason, self.now

    # -- the cases -----------------------------------------------------------------

    def _apply(self, event: CalendarEvent) -> None:
        copy = self._copy_row(event.id)
        if _is_tombstone(event):
            self._tombstone(event, copy)
        elif event.all_day:
            return
        elif event.is_occurrence:
            self._occurrence(event, copy)
        else:
            self._single(event)

    def _tombstone(self, event: CalendarEvent, copy: OccurrenceCopy | None) -> None:
        self._settle()  # it reads copies and occurrences by id, ours of this page included
        if copy is not None:
            was_removed, copy.removed = copy.removed, True
            occurrence = self.session.get(Occurrence, copy.occurrence_id)
            if occurrence is not None:
                if was_removed:
                    pass  # its cancellation (or decline) was applied already
                elif self._is_attendee_response(occurrence, copy):
                    self._declined_by_owner(occurrence)
                else:
                    self._cancel(occurrence, at=event.updated)
                # a tombstone names no series (Graph @removed): settle and re-plan it anyway
                self.result.series_touched.add(occurrence.series_id)
            return
        adhoc = self.session.scalar(select(AdHocMeeting).where(
            AdHocMeeting.calendar_id == self.calendar.id,
            AdHocMeeting.provider_event_id == event.id))
        if adhoc is not None:
            adhoc.cancelled = True

    def _is_attendee_response(self, occurrence: Occurrence, copy: OccurrenceCopy) -> bool:
        """True when the copy that vanished is an attendee's and the organizer's remains.

        Outlook removes an occurrence an attendee declined from the attendee's calendar
        (Exchange moves declined meetings to Deleted Items by default), so their delta says
        ``@removed`` while the meeting goes on; an organizer's cancellation instead marks
        attendee copies ``isCancelled`` (https://learn.microsoft.com/en-us/graph/api/event-cancel).
        Only the organizer's copy going, or every copy going, cancels the occurrence.
        """
        series = self.session.get(Series, occurrence.series_id)
        owner = (self.calendar.owner_email or "").lower()
        if copy.is_organizer_copy or series is None or owner == series.organizer_email:
            return False
        others = self.session.scalar(select(OccurrenceCopy.id).where(
            OccurrenceCopy.occurrence_id == occurrence.id, OccurrenceCopy.id != copy.id,
            OccurrenceCopy.removed.is_(False)).limit(1))
        return others is not None

    def _declined_by_owner(self, occurrence: Occurrence) -> None:
        """Record the calendar owner's decline (they are the other person of the 1:1)."""
        series = self.session.get(Series, occurrence.series_id)
        owner = (self.calendar.owner_email or "").lower()
        if series is None or owner != series.other_email:
            return  # a third person leaving changes nothing for the pair
        field = "manager_response" if roles_of(self.session, series)[0] == owner \
            else "report_response"
        if getattr(occurrence, field) != str(Response.DECLINED):
            setattr(occurrence, field, str(Response.DECLINED))
            occurrence.dropped_at = self.now
            self._note(self.result.occurrences_changed, occurrence)
            log.info("calendar %s: occurrence %s declined by its owner (copy removed)",
                     self.calendar.id, occurrence.id)

    def _occurrence(self, event: CalendarEvent, copy: OccurrenceCopy | None) -> None:
        assert event.series_id is not None
        series = self._series_for(event)
        original = event.original_start or event.start
        if original is None:
            raise ValueError("occurrence without original start")
        occurrence = self._occurrence_row(series, original, event)
        if event.status == EventStatus.CANCELLED:
            self._cancel(occurrence, at=event.updated)
        else:
            self._confirm(occurrence, event, series)
        self._copy(occurrence, event, copy, series)

    def _series_for(self, event: CalendarEvent) -> Series:
        """The event's series, found by its source or key, else created already described
        (one INSERT; it has no stored occurrences to load)."""
        assert event.series_id is not None
        source = self._sources.get(event.series_id)
        series = self._series.get(source.series_id) if source else None
        if source is not None and series is None:
            series = self.session.get(Series, source.series_id)
        created = False
        if series is None:
            key = self._series_key(event)
            series = self._by_key.get(key) if key in self._by_key else \
                self.session.scalar(select(Series).where(Series.series_key == key))
            if series is None:  # added once described, so its INSERT carries its pair
                series = self._by_key[key] = Series(series_key=key, first_seen_at=self.now)
                created = True
        organizer_copy, inputs = None, None
        if _describes(event):
            inputs = _detection_inputs(event)
            if created or self._described.get(series.id) != inputs:
                organizer_copy, roles = self._describe(series, event)
            else:
                inputs = None
        if created:
            self.session.add(series)
            self.session.flush()
        if inputs is not None:  # described: the roles as linked (None: ask `roles_of`)
            self._described[series.id] = inputs
            if roles is None:
                self._roles.pop(series.id, None)
            else:
                self._roles[series.id] = roles
        if created:
            self._loaded.add(series.id)
        if source is None:
            source = SeriesSource(series_id=series.id, calendar_id=self.calendar.id,
                                  provider_series_id=event.series_id)
            self.session.add(source)
            self._sources[event.series_id] = source
        if organizer_copy is not None:
            source.is_organizer_copy = organizer_copy
        self._series[series.id] = series
        self.result.series_touched.add(series.id)
        return series

    def _describe(self, series: Series,
                  event: CalendarEvent) -> tuple[bool, tuple[str | None, str | None] | None]:
        """Detection's verdict onto the series, its pair linked when that changed. Returns
        whether this calendar's owner organizes it, and the (manager, report) `roles_of`
        would give when the pair was linked now (None when it was not looked at). Its
        lookups (people, pair) do not autoflush: what they read was flushed when created."""
        before = (series.title, series.organizer_email, series.other_email,
                  series.human_count, series.confidence)
        organizes = self._detect_onto(series, event)
        changed = before != (series.title, series.organizer_email, series.other_email,
                             series.human_count, series.confidence)
        roles: tuple[str | None, str | None] | None = None
        with self.session.no_autoflush:
            if changed or series.pair_id is None:
                roles = refresh_pair_link(self.session, series) \
                    or (series.organizer_email, series.other_email)
            if series.pair_id is not None and series.series_key not in self._named:
                remember_names(self.session, _names_of(event, series), known=self._held)
                self._named.add(series.series_key)
        return organizes, roles

    def _detect_onto(self, series: Series, event: CalendarEvent) -> bool:
        """Detection's verdict written onto the series; whether this calendar's owner
        organizes it."""
        verdict = detect(event)
        series.title = event.title[:500]
        series.organizer_email = verdict.organizer
        series.other_email = verdict.other
        series.human_count = verdict.human_count
        series.confidence = verdict.confidence
        series.detection_reason = verdict.reason
        series.time_zone = event.time_zone or series.time_zone
        return verdict.organizer == (self.calendar.owner_email or "").lower()

    def _copy_row(self, event_id: str) -> OccurrenceCopy | None:
        """The calendar's stored copy of an event, one inserted by this batch included."""
        if event_id in self._new_copies:  # an event listed twice in one batch: rare
            self._settle()
        copy = self._copies.get(event_id)
        if copy is None and event_id in self._inserted_copies:
            copy = self.session.get(OccurrenceCopy, self._inserted_copies[event_id])
            if copy is not None:
                self._copies[event_id] = copy
        return copy

    def _occurrence_row(self, series: Series, original: datetime,
                        event: CalendarEvent) -> AnyOccurrence:
        """The stored occurrence of the series at `original`, or a new one for the batch."""
        key = (series.id, original)
        new = self._new_occurrences.get(key)
        if new is not None:
            return new
        if key not in self._occurrences and series.id not in self._loaded:
            self._load_occurrences([series.id])
        occurrence = self._occurrences.get(key)
        if occurrence is None and key in self._inserted_occurrences:
            occurrence = self.session.get(Occurrence, self._inserted_occurrences[key])
            if occurrence is not None:
                self._occurrences[key] = occurrence
        if occurrence is not None:
            return occurrence
        start = event.start or original
        new = self._new_occurrences[key] = NewOccurrence(
            series_id=series.id, original_start=original, scheduled_start=start,
            scheduled_end=event.end or start)
        self._note(self.result.occurrences_changed, new)
        return new

    def _roles_of(self, series: Series) -> tuple[str | None, str | None]:
        """`roles_of` once per series and page (its lookups autoflushed for every event);
        describing the series again forgets it, as the pair may have changed."""
        roles = self._roles.get(series.id)
        if roles is None:
            roles = self._roles[series.id] = roles_of(self.session, series)
        return roles

    def _load_occurrences(self, series_ids: Sequence[int]) -> None:
        """Cache these series' stored occurrences with one query: a page holds many
        occurrences of each series, and a query (with its autoflush) per event dominated a
        first sync."""
        for chunk in chunks(series_ids):
            for occurrence in self.session.scalars(
                    select(Occurrence).where(Occurrence.series_id.in_(chunk))):
                self._occurrences.setdefault((occurrence.series_id, occurrence.original_start),
                                             occurrence)
        self._loaded.update(series_ids)

    def _confirm(self, occurrence: AnyOccurrence, event: CalendarEvent,
                 series: Series) -> None:
        assert event.start is not None
        end = event.end or event.start
        responses = {a.email.lower(): a.response for a in event.attendees}
        manager_email, report_email = self._roles_of(series)
        manager: Response | None
        report: Response | None
        if manager_email == series.organizer_email:
            manager = responses.get(manager_email or "", Response.ACCEPTED)
            report = responses.get(report_email or "")
        else:  # the report organizes: the organizer's silence is their acceptance
            manager = responses.get(manager_email or "")
            report = responses.get(report_email or "", Response.ACCEPTED)
        before = (occurrence.status, occurrence.scheduled_start, occurrence.scheduled_end,
                  occurrence.manager_response, occurrence.report_response)
        occurrence.scheduled_start, occurrence.scheduled_end = event.start, end
        occurrence.status = OccurrenceStatus.CONFIRMED
        occurrence.cancelled_at = None
        if event.attendees:
            declined_before = Response.DECLINED in (occurrence.manager_response,
                                                    occurrence.report_response)
            occurrence.manager_response = str(manager) if manager else None
            occurrence.report_response = str(report) if report else None
            if Response.DECLINED in (manager, report) and not declined_before:
                occurrence.dropped_at = event.updated or self.now
        after = (occurrence.status, occurrence.scheduled_start, occurrence.scheduled_end,
                 occurrence.manager_response, occurrence.report_response)
        if before != after:
            self._note(self.result.occurrences_changed, occurrence)

    def _cancel(self, occurrence: AnyOccurrence, *, at: datetime | None = None) -> None:
        """Cancel the shared occurrence; `at` is the provider's time of the change, if known."""
        if occurrence.status != OccurrenceStatus.CANCELLED:
            occurrence.status = OccurrenceStatus.CANCELLED
            occurrence.cancelled_at = self.now
            occurrence.dropped_at = at or self.now
            self._note(self.result.occurrences_cancelled, occurrence)
            self._note(self.result.occurrences_changed, occurrence)

    def _copy(self, occurrence: AnyOccurrence, event: CalendarEvent,
              copy: OccurrenceCopy | None, series: Series) -> None:
        values = self._copy_values(event)
        if copy is None:  # inserted with the batch, once its occurrence has an id
            row = dict(values, calendar_id=self.calendar.id, provider_event_id=event.id,
                       occurrence_id=occurrence.id)
            waits = occurrence if isinstance(occurrence, NewOccurrence) else None
            self._new_copies[event.id] = (row, waits)
            previous = None
        else:
            if occurrence.id is None:  # a stored copy moving to a new occurrence: rare
                self._settle()
            copy.occurrence_id = occurrence.id  # type: ignore[assignment]
            previous = copy.block_hash
            for name, value in values.items():
                setattr(copy, name, value)
            self.result.seen_copy_ids.add(copy.id)
        block_hash = values.get("block_hash")
        if values["is_organizer_copy"] and block_hash not in (None, previous) \
                and occurrence.id is not None:
            self._read_people_edits(occurrence.id, event, block_hash)

    def _copy_values(self, event: CalendarEvent) -> dict[str, Any]:
        """A copy's columns as this event gives them (a description too large to carry an
        agenda is not kept, and the event is quarantined)."""
        owner = (self.calendar.owner_email or "").lower()
        values: dict[str, Any] = {
            "is_organizer_copy": (event.organizer or "").lower() == owner != "",
            "etag": event.etag, "removed": event.status == EventStatus.CANCELLED,
            "seen_at": self.now}
        if len(event.description) <= MAX_STORED_DESCRIPTION:
            values.update(description=event.description,
                          description_is_html=event.description_is_html,
                          block_hash=block_hash_in(event.description))
        else:
            values.update(description=None, description_is_html=False, block_hash=None)
            self.quarantine(event.id, f"description of {len(event.description)} characters "
                                      "is too large to carry an agenda")
        return values

    def _read_people_edits(self, occurrence_id: int, event: CalendarEvent,
                           block_hash: str) -> None:
        """The block in the organizer's copy changed and is not our own write echoing back:
        a person edited it. Read it now, even if the meeting has started (people tick items
        during the meeting), so ticks and added lines become the pair's state. Attendee
        copies only mirror the organizer's (Google shares the description; Outlook sends the
        organizer's updates), and a stale one would read as deletions, so they are not read."""
        self._settle()
        self.session.flush()
        record = self.session.scalar(select(AgendaRecord).where(
            AgendaRecord.occurrence_id == occurrence_id))
        if record is not None and record.written_hash != block_hash:
            absorb_invite_edits(self.session, record=record, description=event.description,
                                at=event.updated or self.now)

    def _single(self, event: CalendarEvent) -> None:
        humans = humans_of(event)
        if len(humans) != 2 or event.start is None:
            return
        adhoc = self.session.scalar(select(AdHocMeeting).where(
            AdHocMeeting.calendar_id == self.calendar.id,
            AdHocMeeting.provider_event_id == event.id))
        if adhoc is None:
            adhoc = AdHocMeeting(calendar_id=self.calendar.id, provider_event_id=event.id,
                                 people_key="|".join(sorted(humans)), start=event.start,
                                 end=event.end or event.start,
                                 booked_at=event.created or event.updated or self.now)
            self.session.add(adhoc)
        elif adhoc.start != event.start:
            adhoc.moved_at = event.updated or self.now
        adhoc.people_key = "|".join(sorted(humans))
        adhoc.title = event.title[:500]
        adhoc.start, adhoc.end = event.start, event.end or event.start
        adhoc.cancelled = event.status == EventStatus.CANCELLED


def _is_tombstone(event: CalendarEvent) -> bool:
    """A deleted event that names no occurrence (Graph @removed, a cancelled single)."""
    return event.status == EventStatus.CANCELLED and event.start is None and \
        (event.series_id is None or event.original_start is None)


def _reaches_series(event: CalendarEvent) -> bool:
    """True for the events `_apply` hands to `_occurrence` (and so to `_series_for`)."""
    return not _is_tombstone(event) and not event.all_day and event.is_occurrence


def _describes(event: CalendarEvent) -> bool:
    """True for an event detection can read: cancelled ones and those without attendees
    leave the series as it is."""
    return event.status != EventStatus.CANCELLED and bool(event.attendees)


def _names_of(event: CalendarEvent, series: Series) -> dict[str, str | None]:
    """The names both providers send with attendees (Google displayName, Graph
    emailAddress.name), of the series' two people: kept once per series and round."""
    people = {series.organizer_email, series.other_email}
    return {a.email: a.display_name for a in event.attendees if a.email.lower() in people}


def _detection_inputs(event: CalendarEvent) -> tuple[Any, ...]:
    """What `_describe` reads from an event (responses aside): occurrences of a series that
    agree on it describe the series alike, so a page describes it once."""
    return (event.title, event.organizer, event.time_zone,
            tuple((a.email, a.display_name, a.is_resource, a.is_organizer, a.is_self)
                  for a in event.attendees))
