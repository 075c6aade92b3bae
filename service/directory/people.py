"""The listing `rapport people` prints: everyone Rapport knows, with their manager, provider,
time zone, whether a calendar of theirs is watched, whether the directory stopped them, and
their pairs. `PersonRow.as_json` is the documented, stable JSON shape (README)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.accounts.models import Account, AccountStatus
from service.calendars.models import Calendar
from service.pairs.models import Pair
from service.people.models import Person

JSON_KEYS = ("email", "name", "manager", "provider", "time_zone", "watched", "suspended",
             "left_at", "directory_grant_id", "manages", "reports_to")


@dataclass(frozen=True)
class PersonRow:
    """One person as `rapport people` shows them."""

    email: str
    name: str | None
    manager: str | None  # the org chart's manager (email)
    provider: str | None  # of the calendar account, when they have one
    time_zone: str | None
    watched: bool  # an active account has a calendar of theirs that Rapport syncs
    suspended: bool
    left_at: datetime | None
    directory_grant_id: int | None
    manages: list[str]  # reports of their pairs (email), as manager
    reports_to: list[str]  # managers of their pairs (email), as report

    def as_json(self) -> dict[str, Any]:
        """The JSON object documented in README (`rapport people --json`)."""
        return {
            "email": self.email,
            "name": self.name,
            "manager": self.manager,
            "provider": self.provider,
            "time_zone": self.time_zone,
            "watched": self.watched,
            "suspended": self.suspended,
            "left_at": self.left_at.isoformat() if self.left_at else None,
            "directory_grant_id": self.directory_grant_id,
            "manages": self.manages,
            "reports_to": self.reports_to,
        }


def list_people(session: Session) -> list[PersonRow]:
    """Everyone Rapport knows, by email; a handful of queries whatever the headcount."""
    people = list(session.scalars(select(Person).order_by(Person.email)))
    email_of = {p.id: p.email for p in people}
    providers: dict[int, str] = {}
    watched: set[int] = set()
    for person_id, provider, status, calendar_id in session.execute(
            select(Account.person_id, Account.provider, Account.status, Calendar.id)
            .outerjoin(Calendar, Calendar.account_id == Account.id)
            .where(Account.person_id.is_not(None)).order_by(Account.id)):
        assert person_id is not None
        providers.setdefault(person_id, provider)
        if status == AccountStatus.ACTIVE and calendar_id is not None:
            watched.add(person_id)
    manages: dict[int, list[str]] = defaultdict(list)
    reports_to: dict[int, list[str]] = defaultdict(list)
    for pair in session.scalars(select(Pair).order_by(Pair.id)):
        manages[pair.manager_id].append(email_of[pair.report_id])
        reports_to[pair.report_id].append(email_of[pair.manager_id])
    return [PersonRow(
        email=p.email, name=p.display_name,
        manager=email_of.get(p.manager_id) if p.manager_id else None,
        provider=providers.get(p.id), time_zone=p.time_zone, watched=p.id in watched,
        suspended=p.suspended, left_at=p.left_at, directory_grant_id=p.directory_grant_id,
        manages=sorted(manages[p.id]), reports_to=sorted(reports_to[p.id]),
    ) for p in people]
