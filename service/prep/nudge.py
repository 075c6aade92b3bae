"""The prep nudge: before each 1:1, one short email to each of the two people with the
agenda so far and their link to the pair's page; the manager's carries their private topics
and their private link (see `service.accounts.signing` for the two scopes).

Due work is visible in the database, so the reconciler finds it: a nudge is due once its
send time has come and the meeting is still ahead, and it is queued once per occurrence and
person (outbox dedupe key ``prep:<occurrence>:<person>``). None goes to someone who opted out,
is suspended or has left, and none for a cancelled occurrence or one already started.

The send time is RAPPORT_PREP_NUDGE_HOURS before the meeting, moved into the recipient's own
working hours (RAPPORT_WORKING_HOURS, weekdays, read in `Person.time_zone` as every other
part reads zones): to the next opening when that still comes before the meeting, else to
an hour before the last close before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import cast

from sqlalchemy import ColumnElement, Table, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session, aliased

from service.agenda.links import meeting_link_expiry, person_link
from service.agenda.page import build_page
from service.db import chunks
from service.email.outbox import enqueue, used_keys
from service.email.render import RenderedEmail, render_email
from service.pairs.models import Occurrence, OccurrenceStatus, Pair, Series, SeriesStatus
from service.people.models import Person
from service.people.names import greeting, name_or_address
from service.people.zones import person_zone, zone_name, zone_of
from service.prep.send_times import follow_settings
from service.settings import Settings

KIND = "prep"
TEMPLATE = "prep"
WEEKEND_MARGIN = timedelta(days=4)  # a send time may move this far before the lead
_LAST_HOUR = timedelta(hours=1)


def dedupe_key(occurrence_id: int, person_id: int) -> str:
    return f"prep:{occurrence_id}:{person_id}"


def send_time(meeting_start: datetime, *, lead: timedelta, hours: tuple[time, time],
              tz: tzinfo) -> datetime:
    """When the nudge for a meeting goes out: `lead` before it, moved into working hours
    (weekdays) read in `tz`."""
    nominal = meeting_start - lead
    local = nominal.astimezone(tz)
    opens, closes = hours
    for days in range(0, 8):
        day = local.date() + timedelta(days=days)
        if day.weekday() >= 5:
            continue
        begin = datetime.combine(day, opens, tzinfo=tz)
        end = datetime.combine(day, closes, tzinfo=tz)
        if begin <= local < end:
            return nominal
        if begin > local:
            if begin < meeting_start:
                return begin
            break
    for days in range(0, 8):
        day = local.date() - timedelta(days=days)
        end = datetime.combine(day, closes, tzinfo=tz)
        if day.weekday() < 5 and end <= local:
            return max(datetime.combine(day, opens, tzinfo=tz), end - _LAST_HOUR)
    return nominal  # no working day within a week (hours of zero length): keep the lead


def _reachable(person: type[Person]) -> ColumnElement[bool]:
    """SQL: the person may get email (not opted out, not suspended, not gone)."""
    return and_(person.opted_out.is_(False), person.suspended.is_(False),
                person.left_at.is_(None))


@lru_cache(maxsize=4096)
def _send_time(meeting_start: datetime, lead: timedelta, hours: tuple[time, time],
               zone: str | None) -> datetime:
    """`send_time` in a zone named as `Person.time_zone` holds it; meetings of a company
    share start times and zones, so a pass works each one out once."""
    return send_time(meeting_start, lead=lead, hours=hours, tz=zone_of(zone))


@dataclass(frozen=True)
class _Ahead:
    """A meeting whose nudges are not all queued, with what deciding them needs."""

    occurrence_id: int
    start: datetime
    live: bool  # confirmed, and its series active
    people: tuple[tuple[int, str | None, bool], ...]  # (person, zone, reachable): report first


def _ahead(session: Session, *conditions: ColumnElement[bool]) -> list[_Ahead]:
    manager, report = aliased(Person), aliased(Person)
    rows = session.execute(
        select(Occurrence.id, Occurrence.scheduled_start,
               and_(Occurrence.status == OccurrenceStatus.CONFIRMED,
                    Series.status == SeriesStatus.ACTIVE),
               Pair.report_id, report.time_zone, _reachable(report),
               Pair.manager_id, manager.time_zone, _reachable(manager))
        .join(Series, Series.id == Occurrence.series_id)
        .join(Pair, Pair.id == Series.pair_id)
        .join(report, report.id == Pair.report_id)
        .join(manager, manager.id == Pair.manager_id)
        .where(Occurrence.prep_nudged_at.is_(None), *conditions)
        .order_by(Occurrence.scheduled_start, Occurrence.id)).all()
    return [_Ahead(r[0], r[1], bool(r[2]), ((r[3], r[4], bool(r[5])), (r[6], r[7], bool(r[8]))))
            for r in rows]


def queue_prep_nudges(session: Session, *, settings: Settings, now: datetime) -> list[int]:
    """Queue every nudge that is due and not yet queued; the new outbox ids (to deliver).

    Each meeting's earliest send time is worked out once, when it enters the window (or
    moves: `prep_due_for` is the start it was worked out for) and kept in `prep_due_at`;
    after that a pass reads only meetings whose time has come and that are not marked
    `prep_nudged_at` (both nudges queued, or the meeting began). With nothing due a pass is
    two index reads and one primary-key read, however many meetings lie ahead. A kept send
    time is forgotten, to be worked out again here, when someone's time zone or the
    settings change (`send_times`)."""
    if not settings.prep_nudge_hours:
        return []
    follow_settings(session, settings=settings, now=now)
    lead, hours = timedelta(hours=settings.prep_nudge_hours), settings.working_hours
    entering = select(Occurrence.id).where(  # read from ix_occurrences_prep_window alone
        Occurrence.scheduled_start > now,
        Occurrence.scheduled_start <= now + lead + WEEKEND_MARGIN,
        Occurrence.prep_nudged_at.is_(None),
        or_(Occurrence.prep_due_for.is_(None),
            Occurrence.prep_due_for != Occurrence.scheduled_start))
    new_ids = list(session.scalars(entering))
    ahead = {a.occurrence_id: a for a in _ahead(session, Occurrence.prep_due_at <= now)}
    for chunk in chunks(new_ids):
        fresh = _ahead(session, Occurrence.id.in_(chunk))
        _remember_send_times(session, fresh, lead=lead, hours=hours)
        ahead.update((a.occurrence_id, a) for a in fresh)
    due = [(a.occurrence_id, person_id) for a in ahead.values()
           if a.live and a.start > now
           for person_id, zone, reachable in a.people
           if reachable and _send_time(a.start, lead, hours, zone) <= now]
    used = used_keys(session, (dedupe_key(*nudge) for nudge in due))
    queued = []
    for occurrence_id, person_id in due:
        key = dedupe_key(occurrence_id, person_id)
        if key in used:
            continue
        occurrence = session.get_one(Occurrence, occurrence_id)
        series = session.get_one(Series, occurrence.series_id)
        pair = session.get_one(Pair, series.pair_id)
        person = session.get_one(Person, person_id)
        rendered = render_nudge(session, settings=settings, occurrence=occurrence,
                                series=series, pair=pair, person=person, now=now)
        queued.append(enqueue(session, kind=KIND, dedupe_key=key, recipient=person.email,
                              rendered=rendered).id)
        used.add(key)
    done = [a.occurrence_id for a in ahead.values() if a.start <= now
            or {dedupe_key(a.occurrence_id, p) for p, _, _ in a.people} <= used]
    for chunk in chunks(done):
        session.execute(update(Occurrence).where(Occurrence.id.in_(chunk))
                        .values(prep_nudged_at=now, prep_due_at=None, prep_due_for=None)
                        .execution_options(synchronize_session=False))
    return queued


def _remember_send_times(session: Session, ahead: list[_Ahead], *, lead: timedelta,
                         hours: tuple[time, time]) -> None:
    """Keep each meeting's earliest send time and the start it is for."""
    table = cast(Table, Occurrence.__table__)
    rows = [{"oid": a.occurrence_id, "due": min(_send_time(a.start, lead, hours, zone)
                                                for _, zone, _ in a.people),
             "start": a.start}
            for a in ahead]
    if rows:
        session.execute(table.update().where(table.c.id == bindparam("oid"))
                        .values(prep_due_at=bindparam("due"), prep_due_for=bindparam("start")),
                        rows)


def render_nudge(session: Session, *, settings: Settings, occurrence: Occurrence,
                 series: Series, pair: Pair, person: Person, now: datetime) -> RenderedEmail:
    """The nudge of one person for one meeting: their agenda view and their link."""
    is_manager = person.id == pair.manager_id
    view = build_page(session, settings=settings, pair_id=pair.id, person_id=person.id,
                      private=is_manager, now=now, upcoming=(occurrence, series))
    tz = person_zone(person)
    local = occurrence.scheduled_start.astimezone(tz)
    expires = meeting_link_expiry(settings, occurrence)
    link = person_link(settings, pair_id=pair.id, person=person, private=is_manager,
                       expires=expires)
    return render_email(template=TEMPLATE, context={
        "greeting": greeting(person.display_name),
        "other": view.other,
        "when": f"{local:%A} {local.day} {local:%B}, {local:%H:%M} ({zone_name(tz)})",
        "kind": (view.kind or "").capitalize(),
        "check_in": view.check_in,
        "sections": [{"title": s.title,
                      "lines": [*s.lines, *(f"{i.owner}: {i.text}" for i in s.items)]}
                     for s in view.sections],
        "private_topics": list(view.private_topics),
        "private_prompts": list(view.private_prompts),
        "is_manager": is_manager,
        "link": link,
        "name": name_or_address(person, person.email),
    })
