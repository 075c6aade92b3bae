"""Which pairs' agendas must be planned again: marks left by the changes, and the occurrences
that entered the planning window since the last pass (found from a watermark).

Planning is driven by its inputs changing, never by the clock alone: a topic or action item
changed, a line deleted in the invite, a sync that touched a series (the writers mark the pair
in their own transaction), and time passing, which matters only where an occurrence entered
the horizon, started (the next one takes its place) or got its outcome (its topics leave the
queue or come back). The three time-driven sets are indexed range queries between the last
pass and now, so a pass with nothing due costs a handful of statements at any size.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    CompoundSelect,
    and_,
    delete,
    event,
    inspect,
    literal,
    or_,
    select,
    tuple_,
    union,
)
from sqlalchemy.orm import Session

from service.accounts.signing import link_key, public_base
from service.agenda.models import PlanningWatermark, PlanWanted
from service.db import chunks, dialect_insert
from service.pairs.models import Occurrence, OccurrenceStatus, Pair, Series, SeriesStatus
from service.people.models import Person
from service.settings import Settings

WATERMARK_ID = 1


def want_plan(session: Session, pair_ids: Iterable[int | None]) -> None:
    """Mark pairs for planning again, in the caller's transaction (so the mark commits with
    the change); marking again renews the token, so a pass planning right now keeps it."""
    rows = [{"pair_id": pair_id, "token": uuid.uuid4().hex}
            for pair_id in sorted({p for p in pair_ids if p is not None})]
    if not rows:
        return
    insert = dialect_insert(session, PlanWanted)
    session.execute(insert.values(rows).on_conflict_do_update(
        index_elements=[PlanWanted.pair_id], set_={"token": insert.excluded.token}))


def want_series_plans(session: Session, series_ids: Iterable[int]) -> Marks:
    """Mark the pairs of these series (`want_plan`) and return the marks made, in one
    INSERT ... SELECT ... RETURNING: the planner that marked them needs not read them."""
    marks: Marks = {}
    for chunk in chunks(sorted(set(series_ids))):
        insert = dialect_insert(session, PlanWanted)
        made = session.execute(insert.from_select(
            ["pair_id", "token"],
            select(Series.pair_id, literal(uuid.uuid4().hex)).where(
                Series.id.in_(chunk), Series.pair_id.is_not(None)).group_by(Series.pair_id))
            .on_conflict_do_update(index_elements=[PlanWanted.pair_id],
                                   set_={"token": insert.excluded.token})
            .returning(PlanWanted.pair_id, PlanWanted.token))
        marks.update((pair_id, token) for pair_id, token in made)
    return marks


def want_every_pair(session: Session) -> None:
    """Mark every pair with an active series (no pass ran yet, or the settings changed)."""
    insert = dialect_insert(session, PlanWanted)
    session.execute(insert.from_select(
        ["pair_id", "token"],
        select(Series.pair_id, literal(uuid.uuid4().hex)).where(
            Series.pair_id.is_not(None), Series.status == SeriesStatus.ACTIVE)
        .group_by(Series.pair_id)).on_conflict_do_nothing(index_elements=[PlanWanted.pair_id]))


@event.listens_for(Session, "before_flush")
def _mark_relinked_and_renamed(session: Session, _context: object, _instances: object) -> None:
    """Mark the pairs a lower layer changed: a series linked to another pair (a sync, an
    override, the org chart: `pairs.service.refresh_pair_link`), a person renamed or whose
    links were revoked (`accounts.signing.revoke_links`), both of which the invite shows.
    Those layers sit below the agenda and cannot call `want_plan`; a flush hook sees every
    such change, whoever makes it. Everything in the agenda layer marks explicitly."""
    pair_ids: set[int] = set()
    people: set[int] = set()
    for row in session.dirty:
        if isinstance(row, Series):
            history = inspect(row).attrs.pair_id.history
            pair_ids.update(p for p in (*history.added, *history.deleted) if p is not None)
        elif isinstance(row, Person) and any(
                inspect(row).attrs[name].history.has_changes()
                for name in ("links_version", "display_name")):
            people.add(row.id)
    if not pair_ids and not people:
        return
    with session.no_autoflush:
        if people:
            pair_ids.update(session.scalars(select(Pair.id).where(
                or_(Pair.manager_id.in_(people), Pair.report_id.in_(people)))))
        want_plan(session, pair_ids)


Marks = dict[int, str]  # pair id -> the token read


def wanted_marks(session: Session, *, pair_ids: set[int] | None = None,
                 limit: int | None = None) -> Marks:
    """The marks to plan now: of these pairs, or the first `limit` of all."""
    query = select(PlanWanted.pair_id, PlanWanted.token).order_by(PlanWanted.pair_id)
    if pair_ids is not None:
        query = query.where(PlanWanted.pair_id.in_(pair_ids))
    if limit is not None:
        query = query.limit(limit)
    return {pair_id: token for pair_id, token in session.execute(query)}


def clear_marks(session: Session, marks: Marks) -> None:
    """Delete the marks planned, unless renewed meanwhile (another token: planned next), in
    one statement for the lot: (pair, token) IN (...)."""
    read = sorted(marks.items())
    for chunk in chunks(read):  # two bound parameters per mark, still well under the limit
        session.execute(delete(PlanWanted).where(
            tuple_(PlanWanted.pair_id, PlanWanted.token).in_(chunk)))


def settings_key(settings: Settings) -> str:
    """A digest of the settings that change a plan: the horizon, the occurrences per series,
    the kind rotation, and what the invite's links are made of (their base, lifetime and
    signing key, the key only through an HMAC, as every link carries one anyway)."""
    key = hmac.new(link_key(settings), b"rapport planning", hashlib.sha256).hexdigest()
    text = "|".join(str(part) for part in (
        settings.agenda_horizon_days, settings.agenda_occurrences, ",".join(settings.kinds),
        settings.link_ttl_days, public_base(settings, None), key))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Window:
    """The planning window of this pass: `now` to `until` (the horizon end)."""

    now: datetime
    until: datetime


def window(settings: Settings, now: datetime) -> Window:
    return Window(now=now, until=now + timedelta(days=settings.agenda_horizon_days))


def mark_time_driven(session: Session, *, settings: Settings, now: datetime) -> None:
    """Mark the pairs whose plan time alone changed since the last pass, and move the
    watermark to this pass. Every pair the first time, or when the settings changed, or when
    the clock went back (nothing since the last pass can be trusted then)."""
    current = window(settings, now)
    key = settings_key(settings)
    mark = session.get(PlanningWatermark, WATERMARK_ID)
    if mark is None or mark.settings_key != key or mark.passed_at > now:
        want_every_pair(session)
    else:
        want_plan(session, session.scalars(_pairs_moved_in_time(mark, current)))
    if mark is None:
        session.add(PlanningWatermark(id=WATERMARK_ID, passed_at=now,
                                      planned_until=current.until, settings_key=key))
    else:
        mark.passed_at, mark.planned_until, mark.settings_key = now, current.until, key


def _pairs_moved_in_time(mark: PlanningWatermark, current: Window) -> CompoundSelect:
    """Pairs of active series with an occurrence that entered the horizon, started, or got
    its outcome since the last pass (each an indexed range on `occurrences`). Ranges are
    half-open, [last pass, now): an outcome the last pass decided after planning (at its
    `now`) counts in this pass, once."""
    confirmed = Occurrence.status == OccurrenceStatus.CONFIRMED
    entered = and_(confirmed, Occurrence.scheduled_start >= mark.planned_until,
                   Occurrence.scheduled_start < current.until)
    started = and_(confirmed, Occurrence.scheduled_start >= mark.passed_at,
                   Occurrence.scheduled_start < current.now)
    settled = and_(Occurrence.outcome_decided_at >= mark.passed_at,
                   Occurrence.outcome_decided_at < current.now)
    pairs = select(Series.pair_id).join(Occurrence, Occurrence.series_id == Series.id) \
        .where(Series.pair_id.is_not(None), Series.status == SeriesStatus.ACTIVE)
    return union(*(pairs.where(condition) for condition in (entered, started, settled)))
