"""Pairs and series: people, the manual override, and the listing `rapport pairs` prints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from service.pairs.detection import is_one_on_one
from service.pairs.models import (
    Occurrence,
    OccurrenceStatus,
    Override,
    Pair,
    Series,
    SeriesSource,
)
from service.people.models import Person
from service.people.service import ensure_person


class SeriesNotFound(LookupError):
    """No series with that id."""


class OverrideRefused(ValueError):
    """The override cannot apply (e.g. including a meeting that has three people)."""


class PairNotFound(LookupError):
    """A pair reference (id or report email) that names no pair, or more than one."""






def ensure_pair(session: Session, *, manager_email: str, report_email: str) -> Pair:
    """The pair for (manager, report); one pair outlives every series between them."""
    manager = ensure_person(session, email=manager_email)
    report = ensure_person(session, email=report_email)
    pair = session.scalar(
        select(Pair).where(Pair.manager_id == manager.id, Pair.report_id == report.id)
    )
    if pair is None:
        pair = Pair(manager_id=manager.id, report_id=report.id)
        session.add(pair)
        session.flush()
    return pair


def refresh_pair_link(session: Session, series: Series) -> None:
    """Link the series to its pair when it is a 1:1, unlink it when it no longer is."""
    if is_one_on_one(confidence=series.confidence, human_count=series.human_count,
                     override=series.override) and series.organizer_email and series.other_email:
        pair = ensure_pair(session, manager_email=series.organizer_email,
                           report_email=series.other_email)
        series.pair_id = pair.id
    else:
        series.pair_id = None


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
    sources: dict[int, list[str]] = {}
    for source in session.scalars(select(SeriesSource)):
        sources.setdefault(source.series_id, []).append(source.provider_series_id)
    result = []
    for series, nxt in rows:
        verdict = series.pair_id is not None
        if not include_all and not verdict:
            continue
        result.append(SeriesRow(
            series_id=series.id, pair_id=series.pair_id, manager=series.organizer_email,
            report=series.other_email, title=series.title, is_one_on_one=verdict,
            confidence=series.confidence, reason=series.detection_reason,
            override=str(series.override) if series.override else None,
            cadence_days=series.cadence_days,
            status=str(series.status),
            next_occurrence=nxt, provider_ids=sorted(set(sources.get(series.id, []))),
        ))
    return result


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
