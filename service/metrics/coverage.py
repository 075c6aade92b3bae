"""Coverage, from the org chart: which of a manager's direct reports have a recurring 1:1 with
them, at which rhythm, and who has none (or one rarer than `settings.coverage_cadence_days`).

No calendar can tell this: a missing meeting leaves no trace in it. The org chart
(`Person.manager_id`, from `service.directory`) names the direct reports; the active series of
each (manager, report) pair give the rhythm (`Series.cadence_days`, the median spacing).

The digest mentions a gap once (`CoverageMention`), with a link that opens a new weekly event
with both people in the manager's own calendar app. Neither link format is part of a
documented API; both are the widely used, observed ones:
Google Calendar ``https://calendar.google.com/calendar/render?action=TEMPLATE`` with
``text`` (title), ``details``, ``add`` (guest addresses) and ``recur`` (an RFC 5545 RRULE
line); Outlook on the web ``https://outlook.office.com/calendar/deeplink/compose`` with
``subject``, ``body`` and ``to`` (attendees); it takes no recurrence, so the person picks
"Repeat" there (the body says so).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.accounts.models import Account, DirectoryGrant
from service.metrics.models import CoverageMention
from service.pairs.models import Pair, Series, SeriesStatus
from service.people.models import Person
from service.people.names import name_or_address

REMIND_AFTER = timedelta(days=90)  # a gap still open this long after its mention: once more
GOOGLE_NEW_EVENT = "https://calendar.google.com/calendar/render"
OUTLOOK_NEW_EVENT = "https://outlook.office.com/calendar/deeplink/compose"

COVERED, RARE, NONE = "covered", "rare", "none"


@dataclass(frozen=True)
class ReportCoverage:
    """One direct report: their most frequent recurring 1:1 with the manager, if any."""

    report_id: int
    email: str
    name: str
    cadence_days: int | None  # None: no 1:1, or one whose rhythm is not known yet
    has_series: bool
    state: str  # COVERED, RARE or NONE
    create_link: str | None  # a new weekly 1:1 with both people, for a gap

    def as_json(self) -> dict[str, Any]:
        return {"email": self.email, "name": self.name, "state": self.state,
                "cadence_days": self.cadence_days, "create_link": self.create_link}


@dataclass(frozen=True)
class ManagerCoverage:
    """A manager's direct reports and how many of them have a recurring 1:1 often enough."""

    manager_id: int
    email: str
    name: str
    cadence_limit: int
    reports: tuple[ReportCoverage, ...]

    @property
    def gaps(self) -> list[ReportCoverage]:
        return [r for r in self.reports if r.state != COVERED]

    def sentence(self) -> str:
        """E.g. "Jordan has 6 direct reports; 5 have a weekly 1:1; Lee has none."."""
        total = len(self.reports)
        parts = [f"{self.name} has {total} direct report{'s' if total != 1 else ''}"]
        rhythms: dict[str, int] = defaultdict(int)
        for r in self.reports:
            if r.state == COVERED:
                rhythms[rhythm(r.cadence_days)] += 1
        for words, count in sorted(rhythms.items(), key=lambda kv: (-kv[1], kv[0])):
            parts.append(f"{count} {'has' if count == 1 else 'have'} {words}")
        for r in self.reports:
            if r.state == RARE:
                parts.append(f"{r.name} has only {rhythm(r.cadence_days)}")
        missing = [r.name for r in self.reports if r.state == NONE]
        if missing:
            names = (", ".join(missing[:-1]) + " and " + missing[-1]) if len(missing) > 1 \
                else missing[0]
            parts.append(f"{names} {'has' if len(missing) == 1 else 'have'} none")
        return "; ".join(parts) + "."

    def as_json(self) -> dict[str, Any]:
        return {"manager": self.email, "name": self.name, "cadence_limit_days": self.cadence_limit,
                "direct_reports": len(self.reports), "covered": len(self.reports) - len(self.gaps),
                "sentence": self.sentence(), "reports": [r.as_json() for r in self.reports]}


def rhythm(days: int | None) -> str:
    """A 1:1's rhythm in words: "a weekly 1:1", "a 1:1 every 3 weeks"."""
    if days is None:
        return "a recurring 1:1"
    if 5 <= days <= 8:
        return "a weekly 1:1"
    if days % 7 == 0:
        return f"a 1:1 every {days // 7} weeks"
    return f"a 1:1 every {days} days"


def org_chart_managers(session: Session) -> list[int]:
    """Everyone the org chart names as someone's manager (who is still there), by email."""
    report = select(Person.manager_id).where(Person.manager_id.is_not(None),
                                             Person.suspended.is_(False),
                                             Person.left_at.is_(None))
    return list(session.scalars(select(Person.id).where(
        Person.id.in_(report), Person.suspended.is_(False), Person.left_at.is_(None))
        .order_by(Person.email)))


def manager_coverage(session: Session, *, manager_id: int,
                     cadence_days: int) -> ManagerCoverage | None:
    """The coverage of one manager's direct reports; None when the org chart names none."""
    manager = session.get(Person, manager_id)
    if manager is None:
        return None
    reports = list(session.scalars(select(Person).where(
        Person.manager_id == manager_id, Person.suspended.is_(False),
        Person.left_at.is_(None)).order_by(Person.email)))
    if not reports:
        return None
    cadences: dict[int, list[int | None]] = defaultdict(list)
    for report_id, cadence in session.execute(
            select(Pair.report_id, Series.cadence_days).join(Series, Series.pair_id == Pair.id)
            .where(Pair.manager_id == manager_id, Series.status == SeriesStatus.ACTIVE)):
        cadences[report_id].append(cadence)
    provider = manager_provider(session, manager)
    rows = []
    for report in reports:
        known = [c for c in cadences.get(report.id, []) if c is not None]
        has_series = report.id in cadences
        best = min(known) if known else None
        if not has_series:
            state = NONE
        elif best is not None and best > cadence_days:
            state = RARE
        else:
            state = COVERED
        name = name_or_address(report, report.email)
        link = None if state == COVERED else new_one_on_one_link(
            provider, manager=manager, report=report)
        rows.append(ReportCoverage(report.id, report.email, name, best, has_series, state, link))
    return ManagerCoverage(manager.id, manager.email, name_or_address(manager, manager.email),
                           cadence_days, tuple(rows))


def all_coverage(session: Session, *, cadence_days: int,
                 manager_email: str | None = None) -> list[ManagerCoverage]:
    """The coverage of every manager the org chart names (or of the one with that email)."""
    found = []
    for manager_id in org_chart_managers(session):
        coverage = manager_coverage(session, manager_id=manager_id, cadence_days=cadence_days)
        if coverage is not None and (manager_email is None
                                     or manager_email.lower() == coverage.email):
            found.append(coverage)
    return found


def manager_provider(session: Session, manager: Person) -> str | None:
    """Where the manager's calendar lives: their account's provider, else their directory's."""
    provider = session.scalar(select(Account.provider).where(
        Account.person_id == manager.id).order_by(Account.id).limit(1))
    if provider is None and manager.directory_grant_id is not None:
        grant = session.get(DirectoryGrant, manager.directory_grant_id)
        provider = grant.provider if grant is not None else None
    return provider


def new_one_on_one_link(provider: str | None, *, manager: Person, report: Person) -> str | None:
    """A link that opens a new weekly 1:1 of the two in the manager's calendar (see the
    module docstring for both formats); None for a provider without such a link."""
    title = f"{_first(manager)} / {_first(report)} 1:1"
    if provider == "google":
        query = {"action": "TEMPLATE", "text": title, "add": report.email,
                 "details": "A regular 1:1. Rapport will add a shared agenda to each one.",
                 "recur": "RRULE:FREQ=WEEKLY"}
        return f"{GOOGLE_NEW_EVENT}?{urlencode(query, quote_via=quote)}"
    if provider == "microsoft":
        query = {"subject": title, "to": report.email,
                 "body": "A regular 1:1: choose Repeat, weekly. Rapport will add a shared "
                         "agenda to each one."}
        return f"{OUTLOOK_NEW_EVENT}?{urlencode(query, quote_via=quote)}"
    return None


def _first(person: Person) -> str:
    return name_or_address(person, person.email).split(" ")[0]


def gaps_to_mention(session: Session, coverage: ManagerCoverage, *,
                    now: datetime) -> list[ReportCoverage]:
    """The gaps the digest has not mentioned yet (or not for `REMIND_AFTER`)."""
    gaps = coverage.gaps
    if not gaps:
        return []
    last = dict(session.execute(select(CoverageMention.report_id, CoverageMention.mentioned_at)
                                .where(CoverageMention.manager_id == coverage.manager_id,
                                       CoverageMention.report_id.in_([g.report_id
                                                                      for g in gaps]))).all())
    return [g for g in gaps if g.report_id not in last or last[g.report_id] <= now - REMIND_AFTER]


def remember_mentions(session: Session, *, manager_id: int, report_ids: list[int],
                      now: datetime) -> None:
    """Record that the digest told the manager about these gaps (in the digest's own write)."""
    if not report_ids:
        return
    rows = {m.report_id: m for m in session.scalars(select(CoverageMention).where(
        CoverageMention.manager_id == manager_id, CoverageMention.report_id.in_(report_ids)))}
    for report_id in report_ids:
        if report_id in rows:
            rows[report_id].mentioned_at = now
        else:
            session.add(CoverageMention(manager_id=manager_id, report_id=report_id,
                                        mentioned_at=now))
