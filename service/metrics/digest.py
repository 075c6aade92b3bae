"""The weekly digest: one email per manager per ISO week, at their own local time, once.

When: the digest of ISO week W goes out on `settings.digest_weekday` of W at
`settings.digest_time`, read in the manager's time zone (Monday 08:00 by default). A local
time that a DST jump skips is taken as the same wall time with the offset from before the
jump (so 02:30 on a spring-forward night is 03:30 after it); an ambiguous one takes its first
instance. Auckland's Monday 08:00 is a Sunday evening in UTC, Honolulu's a Monday evening:
the week is always the manager's local week.

What: the 12 ISO weeks before W (W itself has only begun), per report a compact row and a
strip of those weeks, pairs that need attention first, one suggested step for each.

Once: the outbox row's dedupe key is ``digest:{manager_person_id}:{iso_week}``. Rendering
happens outside the write transaction; the enqueue is INSERT ... ON CONFLICT DO NOTHING;
delivery is the outbox's claim / lease / fenced result, so a worker killed mid-send is picked
up again after the lease with the same Message-ID.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, delete, exists, literal, or_, select
from sqlalchemy.orm import Session, sessionmaker

from service.accounts.signing import manager_url
from service.db import dialect_insert, read_session
from service.email.models import OutboxMessage, OutboxStatus
from service.email.outbox import LEASE, DeliveryResult, deliver, enqueue
from service.email.render import RenderedEmail, render_email
from service.email.transport import Transport, transport_from_settings
from service.metrics import definitions as d
from service.metrics.coverage import (
    ManagerCoverage,
    ReportCoverage,
    gaps_to_mention,
    manager_coverage,
    remember_mentions,
    rhythm,
)
from service.metrics.models import DigestZone
from service.metrics.reports import DEFAULT_WEEKS, ManagerReport, PairReport, compute_manager
from service.pairs.models import Pair
from service.people.models import Person
from service.people.names import greeting
from service.people.zones import zone_of
from service.settings import Settings

log = logging.getLogger(__name__)

KIND = "digest"
CATCH_UP = timedelta(days=3)  # a digest this late is skipped; next week's comes on time

STRIP_COLOURS = {
    d.STRIP_HELD: "#16a34a",
    d.STRIP_RESCHEDULED: "#f59e0b",
    d.STRIP_DROPPED: "#dc2626",
    d.STRIP_PENDING: "#cbd5e1",
    d.STRIP_NONE: "#e5e7eb",
}
STRIP_LETTERS = {
    d.STRIP_HELD: "H",
    d.STRIP_RESCHEDULED: "R",
    d.STRIP_DROPPED: "X",
    d.STRIP_PENDING: "?",
    d.STRIP_NONE: "-",
}
STRIP_WORDS = {
    d.STRIP_HELD: "held",
    d.STRIP_RESCHEDULED: "rescheduled",
    d.STRIP_DROPPED: "dropped",
    d.STRIP_PENDING: "not decided yet",
    d.STRIP_NONE: "nothing planned",
}


def dedupe_key(manager_id: int, iso_week: str) -> str:
    """The outbox key that makes a digest unique per manager and week."""
    return f"digest:{manager_id}:{iso_week}"


def parse_dedupe_key(key: str) -> tuple[int, str] | None:
    """(manager id, ISO week) of a digest key, None for any other key."""
    parts = key.split(":")
    if len(parts) != 3 or parts[0] != KIND or not parts[1].isdigit():
        return None
    return int(parts[1]), parts[2]


def send_at(iso_week: str, tz: tzinfo, settings: Settings) -> datetime:
    """The UTC instant the digest of `iso_week` is due, from the local weekday and time."""
    monday = d.week_monday(iso_week)
    day = monday + timedelta(days=settings.digest_weekday % 7)
    local = datetime(day.year, day.month, day.day, settings.digest_time.hour,
                     settings.digest_time.minute, tzinfo=tz)
    return local.astimezone(UTC)


# -- due work ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DueDigest:
    """A digest the reconciler should (re)send: never queued, or queued and not yet out."""

    manager_id: int
    iso_week: str


RECHECK = timedelta(hours=1)  # how long a zone's "week done" mark and the zone list hold
_ACTIVE = (Person.opted_out.is_(False), Person.suspended.is_(False), Person.left_at.is_(None))


def _zone_key(raw: str | None) -> str:
    """The `DigestZone.zone` of a `people.time_zone` value ("" when unset)."""
    return raw or ""


def _in_zone(key: str) -> ColumnElement[bool]:
    if key:
        return Person.time_zone == key
    return or_(Person.time_zone.is_(None), Person.time_zone == "")


def _managers_zones(session: Session) -> set[str]:
    """The zones of the active managers (one read of every person: at most once per
    `RECHECK`)."""
    return {_zone_key(raw) for raw in session.scalars(select(Person.time_zone).distinct().where(
        *_ACTIVE, exists().where(Pair.manager_id == Person.id)))}


def _zones_to_walk(keys: set[str], marks: dict[str, DigestZone], *, settings: Settings,
                   now: datetime) -> dict[str, str]:
    """zone -> this local week, for the zones whose send window is open and whose week is
    not marked done within `RECHECK`."""
    walk = {}
    for key in keys:
        tz = zone_of(key or None)
        week = d.iso_week_of(now, tz)
        due_at = send_at(week, tz, settings)
        if not due_at <= now < due_at + CATCH_UP:
            continue
        mark = marks.get(key)
        if (mark is not None and mark.iso_week == week and mark.done_at is not None
                and mark.done_at > now - RECHECK):
            continue
        walk[key] = week
    return walk


def _record(factory: sessionmaker[Session], *, zones: set[str] | None,
            done: dict[str, str], now: datetime) -> None:
    """Store the zone list read (`zones`, None: not read this pass) and the weeks found
    done; an upsert, so two reconcilers at once agree."""
    with factory.begin() as session:
        stmt = dialect_insert(session, DigestZone)
        if zones is not None:
            session.execute(delete(DigestZone).where(DigestZone.zone.not_in(sorted(zones))))
            for key in zones:
                session.execute(stmt.values(zone=key, seen_at=now).on_conflict_do_update(
                    index_elements=[DigestZone.zone], set_={"seen_at": now}))
        for key, week in done.items():
            session.execute(stmt.values(zone=key, iso_week=week, done_at=now, seen_at=now)
                            .on_conflict_do_update(index_elements=[DigestZone.zone],
                                                   set_={"iso_week": week, "done_at": now}))


def digest_due(factory: sessionmaker[Session], *, settings: Settings, now: datetime,
               lease: timedelta = LEASE) -> list[DueDigest]:
    """Digests due now: the manager's send time this local week has passed and no outbox row
    exists yet, plus digest rows still waiting for delivery (due retry or expired lease).

    A manager's first digest waits until Rapport has known their 1:1s (their first pair)
    for the whole of the week before: earlier, it would be twelve empty weeks. A digest not
    queued within `CATCH_UP` of its send time (the service was down) is skipped.

    The cost follows what is due, not the number of managers: the send time depends only
    on the zone, and the pass reads the few `DigestZone` rows; it walks the managers of a
    zone (one indexed query for those without this week's row) only while its send window
    is open and the week is not marked done, and marks it done when that walk finds nobody.
    A mark (and the zone list) is trusted for `RECHECK`: a manager who becomes due later in
    the window (back from suspension, opted in again, moved zone) is found within that.
    Reads in a read-only session; writes only when a mark or the zone list changes.
    """
    with read_session(factory) as session:
        marks = {m.zone: m for m in session.scalars(select(DigestZone))}
        stale = not marks or min(m.seen_at for m in marks.values()) <= now - RECHECK
        zones = _managers_zones(session) if stale else set(marks)
        walk = _zones_to_walk(zones, marks, settings=settings, now=now)
        due, busy = [], set()
        if walk:
            open_zones = []
            for key, week in walk.items():
                watched_from, _ = d.week_bounds(d.shift_week(week, -1), zone_of(key or None))
                week_key = literal(f"{KIND}:") + cast(Person.id, String) + literal(f":{week}")
                open_zones.append(and_(
                    _in_zone(key),
                    exists().where(Pair.manager_id == Person.id,
                                   Pair.created_at <= watched_from),
                    ~exists().where(OutboxMessage.dedupe_key == week_key)))
            for manager_id, raw in session.execute(
                    select(Person.id, Person.time_zone).where(*_ACTIVE, or_(*open_zones))):
                busy.add(_zone_key(raw))
                due.append(DueDigest(manager_id, walk[_zone_key(raw)]))
        stuck = session.scalars(select(OutboxMessage.dedupe_key).where(
            OutboxMessage.kind == KIND,
            or_((OutboxMessage.status == OutboxStatus.PENDING.value)
                & or_(OutboxMessage.not_before.is_(None), OutboxMessage.not_before <= now),
                (OutboxMessage.status == OutboxStatus.SENDING.value)
                & (OutboxMessage.sending_since <= now - lease)))).all()
    done = {key: week for key, week in walk.items() if key not in busy}
    if done or (stale and (zones or marks)):  # nobody manages yet: nothing to keep
        _record(factory, zones=zones if stale else None, done=done, now=now)
    for key in stuck:
        parsed = parse_dedupe_key(key)
        if parsed:
            due.append(DueDigest(*parsed))
    return sorted(set(due), key=lambda x: (x.iso_week, x.manager_id))


# -- rendering ---------------------------------------------------------------------------


def manager_link(settings: Settings, manager: Person, *, now: datetime,
                 last_week: str | None = None) -> str:
    """The signed link to the manager's page (the `metrics link` builder), showing the weeks
    up to `last_week`: what the digest showed, with the same numbers."""
    return manager_url(settings, manager.id, version=manager.links_version, now=now,
                       last_week=last_week)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{round(value * 100)}%"


def _gap_text(pair: PairReport) -> str:
    gap = pair.metrics.gap
    if gap.days is None:
        return "–"
    return f"{gap.days}d / {gap.cadence_days or d.DEFAULT_CADENCE_DAYS}d"


def pair_row(pair: PairReport) -> dict[str, Any]:
    """What a template needs of one report's row."""
    m = pair.metrics
    return {
        "name": pair.report_name,
        "email": pair.report_email,
        "consistency": _pct(m.consistency),
        "took_place": m.counts.took_place,
        "eligible": m.counts.eligible,
        "held": m.counts.held + m.counts.moved,
        "rescheduled": m.counts.rescheduled,
        "dropped": m.counts.dropped,
        "streak": m.streak_current,
        "streak_longest": m.streak_longest,
        "gap": _gap_text(pair),
        "strip": [{"week": w, "state": s, "colour": STRIP_COLOURS[s],
                   "letter": STRIP_LETTERS[s], "word": STRIP_WORDS[s]} for w, s in m.strip],
        "strip_text": "".join(STRIP_LETTERS[s] for _, s in m.strip),
        "areas": {a: m.balance.areas.get(a, 0) for a in d.AREAS},
        "agendas": m.balance.agendas,
        "needs_attention": pair.needs_attention,
        "suggestion": pair.suggestion,
        "muted": pair.muted,
    }


def digest_context(report: ManagerReport, *, iso_week: str,
                   link: str | None = None) -> dict[str, Any]:
    """The template context of one digest (also what the web page shows)."""
    first, last = report.weeks[0], report.weeks[-1]
    tz = zone_of(report.time_zone)
    start, _ = d.week_bounds(first, tz)
    _, end = d.week_bounds(last, tz)
    span = (f"{start.astimezone(tz):%d %b %Y} – "
            f"{(end.astimezone(tz) - timedelta(days=1)):%d %b %Y}")
    rows = [pair_row(p) for p in report.pairs]
    weeks = len(report.weeks)
    return {
        "greeting": greeting(report.display_name),
        "manager_name": report.display_name,  # None when unknown: "Your 1:1s"
        "period": "the last week" if weeks == 1 else f"the last {weeks} weeks",
        "iso_week": iso_week,
        "first_week": first,
        "last_week": last,
        "weeks": weeks,
        "span": span,
        "time_zone": report.time_zone,
        "consistency": _pct(report.consistency),
        "took_place": report.counts.took_place,
        "eligible": report.counts.eligible,
        "dropped": report.counts.dropped,
        "pairs": rows,
        "attention": [r for r in rows if r["needs_attention"]],
        "legend": [{"state": s, "colour": STRIP_COLOURS[s], "word": STRIP_WORDS[s],
                    "letter": STRIP_LETTERS[s]}
                   for s in (d.STRIP_HELD, d.STRIP_RESCHEDULED, d.STRIP_DROPPED,
                             d.STRIP_NONE, d.STRIP_PENDING)],
        "link": link,
    }


def coverage_context(coverage: ManagerCoverage | None,
                     gaps: list[ReportCoverage] | None = None) -> dict[str, Any] | None:
    """What a template shows of coverage: the sentence and the gaps (each with its link);
    None when the org chart names no direct report (or, with `gaps`, none to mention)."""
    if coverage is None or (gaps is not None and not gaps):
        return None
    shown = coverage.gaps if gaps is None else gaps
    return {"sentence": coverage.sentence(),
            "gaps": [{"name": g.name, "email": g.email, "state": g.state,
                      "rhythm": rhythm(g.cadence_days), "link": g.create_link}
                     for g in shown]}


def _digest(session: Session, *, settings: Settings, manager_id: int, iso_week: str,
            now: datetime, weeks: int) -> tuple[Person, RenderedEmail, list[int]]:
    manager = session.get(Person, manager_id)
    if manager is None:
        raise LookupError(f"no person with id {manager_id}")
    last_week = d.shift_week(iso_week, -1)
    report = compute_manager(session, manager_id=manager_id, now=now, weeks=weeks,
                             last_week=last_week)
    context = digest_context(report, iso_week=iso_week,
                             link=manager_link(settings, manager, now=now, last_week=last_week))
    coverage = manager_coverage(session, manager_id=manager_id,
                                cadence_days=settings.coverage_cadence_days)
    gaps = gaps_to_mention(session, coverage, now=now) if coverage is not None else []
    context["coverage"] = coverage_context(coverage, gaps)
    return manager, render_email(template="digest", context=context), [g.report_id for g in gaps]


def build_digest(session: Session, *, settings: Settings, manager_id: int, iso_week: str,
                 now: datetime, weeks: int = DEFAULT_WEEKS) -> tuple[Person, RenderedEmail]:
    """The manager and their rendered digest for `iso_week` (the weeks before it); coverage
    gaps not mentioned before are in it (`enqueue_digest` records the mention)."""
    manager, rendered, _ = _digest(session, settings=settings, manager_id=manager_id,
                                   iso_week=iso_week, now=now, weeks=weeks)
    return manager, rendered


# -- queue and send ----------------------------------------------------------------------


def enqueue_digest(factory: sessionmaker[Session], *, settings: Settings, manager_id: int,
                   iso_week: str, now: datetime) -> int:
    """Queue the digest (once: the dedupe key) and return its outbox id.

    The metrics are read and rendered in a read-only session that is closed before the short
    write transaction, so the SQLite write lock is never held while we compute.
    """
    key = dedupe_key(manager_id, iso_week)
    with factory() as session:
        existing = session.scalar(select(OutboxMessage.id).where(
            OutboxMessage.dedupe_key == key))
        if existing is not None:
            return existing
        manager, rendered, mentioned = _digest(session, settings=settings,
                                               manager_id=manager_id, iso_week=iso_week,
                                               now=now, weeks=DEFAULT_WEEKS)
        recipient = manager.email
        session.rollback()
    with factory.begin() as session:
        row = enqueue(session, kind=KIND, dedupe_key=key, recipient=recipient,
                      rendered=rendered)
        remember_mentions(session, manager_id=manager_id, report_ids=mentioned, now=now)
        return row.id


def send_digest(factory: sessionmaker[Session], *, settings: Settings, manager_id: int,
                iso_week: str, now: datetime,
                deliver_now: Callable[[int], DeliveryResult | None] | None = None,
                transport: Transport | None = None) -> DeliveryResult | None:
    """Queue the digest if needed, then deliver it; safe to run any number of times.

    `deliver_now` hands the outbox id to whoever delivers (the `deliver_email` actor, when
    there is one); without it the outbox is delivered here through `transport`.
    """
    message_id = enqueue_digest(factory, settings=settings, manager_id=manager_id,
                                iso_week=iso_week, now=now)
    if deliver_now is not None:
        return deliver_now(message_id)
    if transport is None:
        transport = transport_from_settings(settings)
    return deliver(factory, message_id=message_id, transport=transport, now=now,
                   sender=settings.mail_from)

