"""Finding free slots for two people: pure functions over busy intervals and time zones.

Busy intervals come from the provider (Google freebusy.query, Graph getSchedule) through the
connector contract; this module only does the arithmetic, so it is exact and testable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from connectors.base import BusyInterval
from service.people.zones import UTC_ZONE

STEP = timedelta(minutes=30)
DAYS_BEFORE = 4  # a dropped occurrence still ahead: look this many days before it ...
DAYS_AFTER = 3  # ... and, when those are full, this many after it
DAYS_SOON = 5  # a dropped occurrence already past: look this many days from now


@dataclass(frozen=True)
class Slot:
    """A span (aware, UTC) in which both people are free and inside working hours."""

    start: datetime
    end: datetime


def search_span(*, now: datetime, lead: timedelta, dropped_start: datetime,
                dropped_end: datetime) -> tuple[datetime, datetime]:
    """Where to look for a new time for a dropped occurrence: the days before it (and just
    after) while it is still ahead, the next few days once it is past; never before
    `now + lead`, so no slot is in the past or too soon to book."""
    earliest = now + lead
    if dropped_start > earliest:
        return (max(earliest, dropped_start - timedelta(days=DAYS_BEFORE)),
                dropped_end + timedelta(days=DAYS_AFTER))
    return earliest, earliest + timedelta(days=DAYS_SOON)


def local_day(moment: datetime, tz: ZoneInfo) -> BusyInterval:
    """The whole wall-clock day (in `tz`) that `moment` falls on, as a span in UTC."""
    day = moment.astimezone(tz).date()
    begin = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return BusyInterval(begin.astimezone(UTC_ZONE), end.astimezone(UTC_ZONE))


def within_span(moment: datetime, span: tuple[time, time], tz: ZoneInfo) -> bool:
    """True when `moment`, read on the wall clock in `tz`, falls inside the span."""
    local = moment.astimezone(tz).time()
    begin, end = span
    if begin <= end:
        return begin <= local < end
    return local >= begin or local < end


def span_end_after(moment: datetime, span: tuple[time, time], tz: ZoneInfo) -> datetime:
    """The first end of `span` (wall clock in `tz`) at or after `moment`, in UTC."""
    local = moment.astimezone(tz)
    for days in range(0, 3):
        day = (local + timedelta(days=days)).date()
        candidate = datetime.combine(day, span[1], tzinfo=tz)
        if candidate >= local:
            return candidate.astimezone(UTC_ZONE)
    raise AssertionError("a span ends within two days")  # pragma: no cover


def _inside_hours(start: datetime, end: datetime, hours: tuple[time, time],
                  tz: ZoneInfo) -> bool:
    """True when [start, end) lies within one weekday's working hours, read in `tz`."""
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    if local_start.weekday() >= 5:
        return False
    day = local_start.date()
    opens = datetime.combine(day, hours[0], tzinfo=tz)
    closes = datetime.combine(day, hours[1], tzinfo=tz)
    if closes <= opens:
        closes += timedelta(days=1)
    return opens <= local_start and local_end <= closes


def _overlaps(start: datetime, end: datetime, busy: Iterable[BusyInterval]) -> bool:
    return any(b.start < end and start < b.end for b in busy)


def free_slots(
    busy: Mapping[str, list[BusyInterval]],
    *,
    zones: Mapping[str, ZoneInfo],
    start: datetime,
    end: datetime,
    duration: timedelta,
    working_hours: tuple[time, time],
    count: int = 3,
    one_per_day: bool = True,
    blocked: Iterable[BusyInterval] = (),
) -> list[Slot]:
    """Up to `count` slots of `duration` between start and end where everyone in `zones` is
    free and inside their own working hours (weekdays), earliest first; with `one_per_day`,
    slots are spread over different days (in the first person's zone) before doubling up.
    `blocked` spans are never offered either (the dropped time itself, days already holding
    a meeting of the two)."""
    first = _round_up(start)
    candidates: list[Slot] = []
    moment = first
    everyone_busy = [b for intervals in busy.values() for b in intervals] + list(blocked)
    while moment + duration <= end:
        slot_end = moment + duration
        if all(_inside_hours(moment, slot_end, working_hours, tz) for tz in zones.values()) \
                and not _overlaps(moment, slot_end, everyone_busy):
            candidates.append(Slot(moment, slot_end))
        moment += STEP
    if not one_per_day:
        return candidates[:count]
    anchor = next(iter(zones.values()), UTC_ZONE)
    chosen: list[Slot] = []
    days: set[object] = set()
    for slot in candidates:
        day = slot.start.astimezone(anchor).date()
        if day not in days:
            chosen.append(slot)
            days.add(day)
        if len(chosen) == count:
            return chosen
    for slot in candidates:
        if len(chosen) == count:
            break
        if slot not in chosen and not any(_overlaps(slot.start, slot.end, [
                BusyInterval(c.start, c.end)]) for c in chosen):
            chosen.append(slot)
    return sorted(chosen, key=lambda s: s.start)


def _round_up(moment: datetime) -> datetime:
    """The next whole half hour at or after `moment` (UTC)."""
    moment = moment.astimezone(UTC_ZONE).replace(second=0, microsecond=0)
    extra = moment.minute % 30
    return moment + timedelta(minutes=(30 - extra) % 30)
