"""Pairs and series: people, the manual override, and the listing `rapport pairs` prints."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, aliased

from service.bulk import insert_returning
from service.db import chunks
from service.pairs.detection import is_one_on_one
from service.pairs.models import (
    Occurrence,
    OccurrenceStatus,
    Override,
    Pair,
    Series,
    SeriesSource,
    SeriesStatus,
)
from service.people.models import Person
from service.people.names import better_name
from service.people.service import ensure_people, people_by_email


class SeriesNotFound(LookupError):
    """No series with that id."""


class OverrideRefused(ValueError):
    """The override cannot apply (e.g. including a meeting that has three people)."""


class PairNotFound(LookupError):
    """A pair reference (id or report email) that names no pair, or more than one."""


def ensure_pair(session: Session, *, manager_email: str, report_email: str) -> Pair:
    """The pair for (manager, report); one pair outlives every series between them."""
    roles = (manager_email.lower(), report_email.lower())
    return ensure_pairs(session, [roles])[roles]


def ensure_pairs(session: Session, roles: Iterable[tuple[str, str]], *,
                 names: Mapping[str, str | None] | None = None,
                 known: Mapping[str, Person] | None = None) -> dict[tuple[str, str], Pair]:
    """The pairs for these (manager email, report email), set-wise: their people ensured
    (`ensure_people`, with the names given; `known`: people the caller just read), one
    SELECT of the known pairs, one multi-row INSERT of the missing."""
    wanted = sorted(set(roles))
    emails = {email for pair in wanted for email in pair}
    people = ensure_people(session, {e: (names or {}).get(e) for e in emails}, known=known)
    ids = {(m, r): (people[m].id, people[r].id) for m, r in wanted}
    managers = sorted({m for m, _ in ids.values()})
    found: dict[tuple[int, int], Pair] = {}
    for chunk in chunks(managers):
        for pair in session.scalars(select(Pair).where(Pair.manager_id.in_(chunk))):
            found[(pair.manager_id, pair.report_id)] = pair
    missing = [{"manager_id": m, "report_id": r} for m, r in dict.fromkeys(ids.values())
               if (m, r) not in found]
    found.update(((p.manager_id, p.report_id), p)
                 for p in insert_returning(session, Pair, missing))
    return {key: found[ids[key]] for key in wanted}


def manager_of(session: Session, series: Series) -> tuple[str, str] | None:
    """(manager email, report email) of a two-person series, or None when it is no managed 1:1
    (see `_manager_among`)."""
    emails = [e for e in (series.organizer_email, series.other_email) if e]
    return _manager_among(series, people_by_email(session, emails))


def _manager_among(series: Series, people: Mapping[str, Person]) -> tuple[str, str] | None:
    """(manager email, report email) of a two-person series, or None when it is no managed 1:1;
    `people` holds whom of the two Rapport knows.

    In order: `series.manager_override` (`rapport series manager`); then the org chart (one
    of the two is the other's manager in a company directory); two people the directory
    knows of whom neither manages the other are no managed pair (a peer or skip-level 1:1);
    the organizer rule (the organizer manages) only where no directory knows them.
    """
    organizer, other = series.organizer_email, series.other_email
    if not organizer or not other:
        return None
    override = (series.manager_override or "").lower()
    if override in (organizer, other):
        return (organizer, other) if override == organizer else (other, organizer)
    first, second = people.get(organizer), people.get(other)
    if first is not None and second is not None:
        if second.manager_id == first.id:
            return organizer, other
        if first.manager_id == second.id:
            return other, organizer
        if in_directory(first) and in_directory(second):
            return None
    return organizer, other


def pairs_with_people(session: Session, pair_ids: Iterable[int]) -> list[Pair | Person]:
    """These pairs and their two people, in one query: hold the list while working on
    them, as the session's identity map keeps objects only while referenced, and
    `session.get` then finds them there (`roles_of`, the links, the follow-ups)."""
    manager, report = aliased(Person), aliased(Person)
    held: list[Pair | Person] = []
    for chunk in chunks(sorted(set(pair_ids))):
        for pair, *people in session.execute(
                select(Pair, manager, report)
                .outerjoin(manager, manager.id == Pair.manager_id)
                .outerjoin(report, report.id == Pair.report_id)
                .where(Pair.id.in_(chunk))):
            held += [pair, *(person for person in people if person is not None)]
    return held


def roles_of(session: Session, series: Series) -> tuple[str | None, str | None]:
    """(manager email, report email) as the series' pair has them; the organizer and the
    other person while it has no pair. Who declined is read through this, so a report who
    organizes the 1:1 is still the report."""
    pair = session.get(Pair, series.pair_id) if series.pair_id is not None else None
    if pair is not None:
        manager, report = session.get(Person, pair.manager_id), session.get(Person, pair.report_id)
        if manager is not None and report is not None:
            return manager.email, report.email
    return series.organizer_email, series.other_email


def has_departed_person(session: Session, series: Series) -> bool:
    """True when one of the series' two people is suspended in, or gone from, a directory."""
    emails = [e for e in (series.organizer_email, series.other_email) if e]
    return session.scalar(select(Person.id).where(
        Person.email.in_(emails),
        Person.suspended.is_(True) | Person.left_at.is_not(None)).limit(1)) is not None


def in_directory(person: Person) -> bool:
    """True for someone a company directory lists now (not removed from it)."""
    return person.directory_grant_id is not None and person.left_at is None


def refresh_pair_link(session: Session, series: Series, *,
                      keep_history_before: datetime | None = None) -> tuple[str, str] | None:
    """Link the series to its pair when it is a managed 1:1 (see `manager_of`), unlink it
    when it no longer is; returns the pair's (manager email, report email), None unlinked.

    With `keep_history_before` (the org chart changed a manager) a series that leaves a pair
    after meeting under it is split like a "this and following" edit: the part before that
    instant stays with the old pair as an ended series (its occurrences, metrics and items are
    that pair's history), the rest continues under the new pair, which starts fresh.
    """
    roles, pair_id = _pair_links(session, [series])[0]
    if (keep_history_before is not None and series.pair_id is not None
            and pair_id != series.pair_id):
        series = _split_off_history(session, series, before=keep_history_before)
    series.pair_id = pair_id
    return roles


def link_pairs(session: Session, series: Sequence[Series], *,
               names: Sequence[Mapping[str, str | None]]) -> list[tuple[str, str] | None]:
    """`refresh_pair_link` for many series at once (a sync page's new series), set-wise: one
    query per kind for all of them (`ensure_pairs`). `names[i]` holds the names a provider
    sent for series i's people; those of linked series name the pair's people, first real
    name first (as `remember_names` would, series by series)."""
    links = _pair_links(session, series, names=names)
    for one, (_roles, pair_id) in zip(series, links, strict=True):
        one.pair_id = pair_id
    return [roles for roles, _pair_id in links]


def _pair_links(session: Session, series: Sequence[Series], *,
                names: Sequence[Mapping[str, str | None]] | None = None,
                ) -> list[tuple[tuple[str, str] | None, int | None]]:
    """(roles, pair id) for each series: a managed 1:1's pair (created if new), else None."""
    candidates = [s for s in series if is_one_on_one(
        confidence=s.confidence, human_count=s.human_count, override=s.override)]
    people = people_by_email(session, {e for s in candidates
                                       for e in (s.organizer_email, s.other_email) if e})
    roles = {id(s): _manager_among(s, people) for s in candidates}
    named: dict[str, str | None] = {}
    for one, sent in zip(series, names or [{}] * len(series), strict=True):
        if roles.get(id(one)) is not None:
            for email, name in sent.items():
                named[email.lower()] = better_name(named.get(email.lower()), name)
    pairs = ensure_pairs(session, [r for r in roles.values() if r is not None], names=named,
                         known=people)
    links: list[tuple[tuple[str, str] | None, int | None]] = []
    for one in series:
        found = roles.get(id(one))
        links.append((found, pairs[found].id if found is not None else None))
    return links


def _split_off_history(session: Session, series: Series, *, before: datetime) -> Series:
    """Keep `series` (ended, its past occurrences) with its pair; return the series row that
    carries on: the calendar copies and the occurrences from `before` on move to it."""
    past = session.scalar(select(func.count()).select_from(Occurrence).where(
        Occurrence.series_id == series.id, Occurrence.original_start < before)) or 0
    if not past:
        return series
    key = series.series_key
    series.series_key = f"{key[:440]}~until~{before:%Y%m%dT%H%M%SZ}~pair{series.pair_id}"
    series.status, series.ended_at = SeriesStatus.ENDED, before
    session.flush()
    follower = Series(
        series_key=key, title=series.title, organizer_email=series.organizer_email,
        other_email=series.other_email, human_count=series.human_count,
        confidence=series.confidence, detection_reason=series.detection_reason,
        override=series.override, manager_override=series.manager_override,
        time_zone=series.time_zone, cadence_days=series.cadence_days,
        first_seen_at=before)
    session.add(follower)
    session.flush()
    session.execute(update(SeriesSource).where(SeriesSource.series_id == series.id)
                    .values(series_id=follower.id))
    session.execute(update(Occurrence).where(Occurrence.series_id == series.id,
                                             Occurrence.original_start >= before)
                    .values(series_id=follower.id))
    return follower


def set_override(session: Session, *, series_id: int, override: Override | None) -> Series:
    """Include or exclude a series by hand (None clears); the override beats detection."""
    series = session.get(Series, series_id)
    if series is None:
        raise SeriesNotFound(f"no series with id {series_id} (see `rapport pairs --all`)")
    if override == Override.INCLUDE and series.human_count != 2:
        raise OverrideRefused(
            f"series {series_id} ({series.title!r}) has {series.human_count} people; "
            "only a meeting of exactly two people can be a 1:1"
        )
    series.override = override
    refresh_pair_link(session, series)
    return series


def set_manager_override(session: Session, *, series_id: int, email: str | None) -> Series:
    """Name the manager of a series by hand (None clears); it beats the org chart and the
    organizer rule (see `manager_of`)."""
    series = session.get(Series, series_id)
    if series is None:
        raise SeriesNotFound(f"no series with id {series_id} (see `rapport pairs --all`)")
    if email is not None:
        email = email.strip().lower()
        if email not in (series.organizer_email, series.other_email):
            people = " and ".join(e for e in (series.organizer_email, series.other_email) if e)
            raise OverrideRefused(f"{email} is not in series {series_id} ({series.title!r}); "
                                  f"its people are {people or 'unknown'}")
    series.manager_override = email
    refresh_pair_link(session, series)
    return series


@dataclass(frozen=True)
class SeriesRow:
    """One line of `rapport pairs`: a stable, documented JSON shape."""

    series_id: int
    pair_id: int | None
    manager: str | None
    report: str | None
    title: str
    is_one_on_one: bool
    confidence: float
    reason: str
    override: str | None
    cadence_days: int | None
    status: str
    next_occurrence: datetime | None
    provider_ids: list[str]

    def as_json(self) -> dict[str, Any]:
        """The JSON object documented in README (`rapport pairs --json`)."""
        return {
            "series_id": self.series_id,
            "pair_id": self.pair_id,
            "manager": self.manager,
            "report": self.report,
            "title": self.title,
            "is_one_on_one": self.is_one_on_one,
            "confidence": self.confidence,
            "reason": self.reason,
            "override": self.override,
            "cadence_days": self.cadence_days,
            "status": self.status,
            "next_occurrence": self.next_occurrence.isoformat() if self.next_occurrence else None,
            "provider_ids": self.provider_ids,
        }


def list_series(session: Session, *, now: datetime, include_all: bool = False) -> list[SeriesRow]:
    """The detected 1:1 series (every recurring series with `include_all`), manager first."""
    manager, report = aliased(Person), aliased(Person)
    next_start = (
        select(Occurrence.series_id, func.min(Occurrence.scheduled_start).label("next"))
        .where(Occurrence.scheduled_start >= now,
               Occurrence.status == OccurrenceStatus.CONFIRMED)
        .group_by(Occurrence.series_id)
        .subquery()
    )
    rows = session.execute(
        select(Series, next_start.c.next)
        .outerjoin(next_start, next_start.c.series_id == Series.id)
        .order_by(Series.organizer_email, Series.other_email, Series.id)
    ).all()
    roles = {pair.id: (m, r) for pair, m, r in session.execute(
        select(Pair, manager.email, report.email)
        .join(manager, manager.id == Pair.manager_id)
        .join(report, report.id == Pair.report_id))}
    sources: dict[int, list[str]] = {}
    for source in session.scalars(select(SeriesSource)):
        sources.setdefault(source.series_id, []).append(source.provider_series_id)
    result = []
    for series, nxt in rows:
        verdict = series.pair_id is not None
        if not include_all and not verdict:
            continue
        who = roles.get(series.pair_id or 0, (series.organizer_email, series.other_email))
        result.append(SeriesRow(
            series_id=series.id, pair_id=series.pair_id, manager=who[0],
            report=who[1], title=series.title, is_one_on_one=verdict,
            confidence=series.confidence, reason=series.detection_reason,
            override=str(series.override) if series.override else None,
            cadence_days=series.cadence_days,
            status=str(series.status),
            next_occurrence=nxt, provider_ids=sorted(set(sources.get(series.id, []))),
        ))
    # manager first: the pair's manager, which the org chart may name over the organizer
    return sorted(result, key=lambda r: (r.manager or "", r.report or "", r.series_id))


def resolve_pair(session: Session, *, ref: str) -> Pair:
    """The pair a person means by `ref`: a pair id (as `rapport pairs` shows) or the report's
    email. One resolver for every command, so ids never mean a series in one place and a pair
    in another; raises `PairNotFound` with a one-line reason when it is unknown or ambiguous."""
    ref = ref.strip()
    if ref.isdigit():
        pair = session.get(Pair, int(ref))
        if pair is None:
            raise PairNotFound(f"no pair with id {ref} (see the 'pair' column of `rapport pairs`)")
        return pair
    if "@" not in ref:
        raise PairNotFound(f"{ref!r} is neither a pair id nor an email (see `rapport pairs`)")
    person = session.scalar(select(Person).where(func.lower(Person.email) == ref.lower()))
    found = [] if person is None else list(session.scalars(
        select(Pair).where(Pair.report_id == person.id).order_by(Pair.id)))
    if len(found) == 1:
        return found[0]
    if found:
        ids = ", ".join(str(p.id) for p in found)
        raise PairNotFound(f"{ref} is the report in several pairs ({ids}): give the pair id")
    managed = [] if person is None else list(session.scalars(
        select(Pair.id).where(Pair.manager_id == person.id).order_by(Pair.id)))
    if managed:
        ids = ", ".join(str(i) for i in managed)
        raise PairNotFound(f"{ref} is the manager in pairs {ids}, not a report: give the pair id "
                           "or the report's email")
    raise PairNotFound(f"no pair has {ref} as its report (see `rapport pairs`)")


def pair_emails(session: Session, *, pair_id: int) -> tuple[str, str]:
    """(manager email, report email) of a pair, for messages that name who a pair id means."""
    manager = aliased(Person)
    report = aliased(Person)
    row = session.execute(
        select(manager.email, report.email)
        .select_from(Pair)
        .join(manager, manager.id == Pair.manager_id)
        .join(report, report.id == Pair.report_id)
        .where(Pair.id == pair_id)
    ).one()
    return row[0], row[1]


def series_of_people(session: Session, emails: set[str]) -> list[Series]:
    """The active series in which one of these people is one of the two."""
    if not emails:
        return []
    wanted = sorted(emails)
    found: dict[int, Series] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i:i + 500]
        for series in session.scalars(select(Series).where(
                Series.status == SeriesStatus.ACTIVE,
                Series.organizer_email.in_(chunk) | Series.other_email.in_(chunk))):
            found[series.id] = series
    return [found[k] for k in sorted(found)]


def end_series_of(session: Session, *, emails: set[str], now: datetime) -> int:
    """End every active series of these people (they left or were suspended): nothing more
    is planned, written or alerted for them; their history stays. Returns how many."""
    ended = series_of_people(session, emails)
    for series in ended:
        series.status, series.ended_at = SeriesStatus.ENDED, now
    return len(ended)
