"""Seed the Google sandbox with the shared team (`sandbox.team`).

Every non-room person on Google gets a primary calendar (id = email). Each series is held
by its organizer (when on Google) and copied, with the same event id and iCalUID, into the
calendar of every attendee on Google, as Google does for attendees in the same domain.
iCalUID is ``{key}@rapport-sandbox`` on both providers, so a cross-provider series can be
recognised by the service.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sandbox import team
from sandbox.google.store import (
    CalendarState,
    EventRecord,
    GoogleStore,
    Participant,
    all_day_start,
)


def event_id_for(key: str) -> str:
    """A stable Google-style event id (base32hex characters) for a series key."""
    return "r" + hashlib.sha1(key.encode()).hexdigest()[:25]


def ical_uid_for(key: str) -> str:
    """The iCalendar UID both sandboxes give a seeded series."""
    return f"{key}@rapport-sandbox"


def _name(population: team.Population, email: str) -> str | None:
    try:
        return population.person(email).name
    except KeyError:
        return None


def _is_room(population: team.Population, email: str) -> bool:
    try:
        return population.person(email).is_room
    except KeyError:
        return False


def _on_google(population: team.Population, email: str) -> bool:
    try:
        p = population.person(email)
    except KeyError:
        return False
    return p.provider == "google" and not p.is_room


def make_calendars(store: GoogleStore, population: team.Population = team.TEAM) -> None:
    """One primary calendar per Google person."""
    for p in population.people_on("google"):
        store.calendars[p.email] = team_calendar(p)


def team_calendar(p: team.Person) -> CalendarState:
    """The calendar state of one seeded person."""
    return CalendarState(owner=p.email, name=p.name, time_zone=p.time_zone)


def add_series(
    store: GoogleStore,
    *,
    key: str,
    organizer: str,
    attendees: list[str],
    title: str,
    start: datetime,
    minutes: int,
    rrule: str | None,
    time_zone: str,
    description: str,
    now: datetime,
    all_day: bool = False,
    population: team.Population = team.TEAM,
) -> EventRecord | None:
    """Create an event for the organizer and Google attendees; None if none is on Google."""
    organizer = organizer.lower()
    emails = [organizer] + [a.lower() for a in attendees if a.lower() != organizer]
    holders = {e for e in emails if _on_google(population, e) and e in store.calendars}
    if not holders:
        return None
    participants = [
        Participant(
            email=e,
            name=_name(population, e),
            response="accepted",
            resource=_is_room(population, e),
        )
        for e in emails
    ]
    if all_day:
        local = start.astimezone(ZoneInfo(time_zone))
        begin = all_day_start(local.date(), time_zone)
        duration = timedelta(days=1)
    else:
        begin = start.astimezone(ZoneInfo(time_zone))
        duration = timedelta(minutes=minutes)
    rec = EventRecord(
        id=event_id_for(key),
        ical_uid=ical_uid_for(key),
        summary=title,
        description=description,
        organizer=organizer,
        organizer_name=_name(population, organizer),
        participants=participants if len(participants) > 1 else [],
        time_zone=time_zone,
        start=begin,
        duration=duration,
        etag="",
        created=now - timedelta(days=90),
        updated=now - timedelta(days=1),
        all_day=all_day,
        recurrence=[rrule] if rrule else None,
        calendars=holders,
        series_key=key,
    )
    store.add(rec)
    return rec


def seed(
    store: GoogleStore, now: datetime, population: team.Population = team.TEAM
) -> dict[str, str]:
    """Fill an empty store with the population (the team by default); returns key -> id."""
    make_calendars(store, population)
    keys: dict[str, str] = {}
    today = now.astimezone(UTC).date()
    for spec in population.series:
        rec = add_series(
            store,
            key=spec.key,
            organizer=spec.organizer,
            attendees=list(spec.attendees),
            title=spec.title,
            start=spec.first_start(today),
            minutes=spec.minutes,
            rrule=spec.rrule,
            time_zone=spec.time_zone,
            description=spec.description,
            now=now,
            all_day=spec.all_day,
            population=population,
        )
        if rec is not None:
            keys[spec.key] = rec.id
    return keys
