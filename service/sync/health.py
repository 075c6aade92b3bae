"""What an operator must know is failing: calendars whose sync fails (and when the next try
is), accounts waiting for their owner to sign in again, agenda writes that failed, and
accounts waiting out a provider's rate limit. Read from the rows that sync, the account flag,
the pace and the writer keep (`calendars.last_error`/`retry_not_before`, `accounts.status`,
`accounts.not_before`, `agendas.last_error`); nothing here calls a provider.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.accounts.models import Account, AccountStatus
from service.agenda.models import AgendaRecord
from service.calendars.models import Calendar
from service.db import utcnow
from service.pairs.models import Occurrence, Series


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


@dataclass(frozen=True)
class FailingCalendar:
    """A calendar whose last sync failed, why, and since when it has not worked."""

    calendar_id: int
    address: str
    provider: str
    reason: str
    failed_at: datetime | None
    last_sync_at: datetime | None
    next_try: datetime | None = None  # the end of its backoff; None: at the next poll

    def as_json(self) -> dict[str, Any]:
        return {"calendar_id": self.calendar_id, "address": self.address,
                "provider": self.provider, "reason": self.reason,
                "failed_at": _iso(self.failed_at), "last_sync_at": _iso(self.last_sync_at),
                "next_try": _iso(self.next_try)}


@dataclass(frozen=True)
class AccountNeedingConsent:
    """An account parked until its owner signs in again."""

    account_id: int
    email: str
    provider: str
    reason: str
    since: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {"account_id": self.account_id, "email": self.email,
                "provider": self.provider, "reason": self.reason, "since": _iso(self.since)}


@dataclass(frozen=True)
class ThrottledAccount:
    """An account the provider asked to wait (429 / Retry-After): no call for it until then.
    It resumes by itself, so it is shown but does not make the report unhealthy."""

    account_id: int
    email: str
    provider: str
    reason: str
    until: datetime

    def as_json(self) -> dict[str, Any]:
        return {"account_id": self.account_id, "email": self.email,
                "provider": self.provider, "reason": self.reason, "until": _iso(self.until)}


@dataclass(frozen=True)
class FailedWrite:
    """An agenda the writer could not put into its invite."""

    agenda_id: int
    title: str
    occurrence_start: datetime
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"agenda_id": self.agenda_id, "title": self.title,
                "occurrence_start": _iso(self.occurrence_start), "reason": self.reason}


@dataclass(frozen=True)
class StatusReport:
    """Everything `rapport status` shows; empty lists mean all is well."""

    failing_calendars: list[FailingCalendar]
    accounts_needing_consent: list[AccountNeedingConsent]
    failed_writes: list[FailedWrite]
    throttled_accounts: list[ThrottledAccount] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not (self.failing_calendars or self.accounts_needing_consent
                    or self.failed_writes)

    def as_json(self) -> dict[str, Any]:
        return {"healthy": self.healthy,
                "failing_calendars": [c.as_json() for c in self.failing_calendars],
                "accounts_needing_consent": [a.as_json()
                                             for a in self.accounts_needing_consent],
                "failed_agenda_writes": [w.as_json() for w in self.failed_writes],
                "throttled_accounts": [a.as_json() for a in self.throttled_accounts]}


def status_report(session: Session, *, now: datetime | None = None) -> StatusReport:
    """The failing calendars, accounts needing re-consent, failed agenda writes and the
    accounts still waiting out a rate limit at `now` (wall clock, like the pace itself)."""
    wall = now or utcnow()
    calendars = [
        FailingCalendar(cal.id, cal.owner_email or cal.provider_calendar_id, account.provider,
                        cal.last_error or "", cal.last_error_at, cal.last_sync_at,
                        cal.retry_not_before if cal.retry_not_before and
                        cal.retry_not_before > wall else None)
        for cal, account in session.execute(
            select(Calendar, Account).join(Account, Account.id == Calendar.account_id)
            .where(Calendar.last_error.is_not(None), Account.status == AccountStatus.ACTIVE)
            .order_by(Calendar.last_error_at, Calendar.id))
    ]
    accounts = [
        AccountNeedingConsent(a.id, a.email, a.provider, a.status_reason or "",
                              a.status_changed_at)
        for a in session.scalars(select(Account).where(
            Account.status == AccountStatus.NEEDS_RECONSENT)
            .order_by(Account.status_changed_at, Account.id))
    ]
    # an agenda left unwritten because the occurrence was cancelled (abandoned) is no failure
    writes = [
        FailedWrite(record.id, series.title or "1:1", occurrence.scheduled_start,
                    record.last_error or "")
        for record, occurrence, series in session.execute(
            select(AgendaRecord, Occurrence, Series)
            .join(Occurrence, Occurrence.id == AgendaRecord.occurrence_id)
            .join(Series, Series.id == Occurrence.series_id)
            .where(AgendaRecord.last_error.is_not(None), AgendaRecord.abandoned_etag.is_(None))
            .order_by(Occurrence.scheduled_start, AgendaRecord.id))
    ]
    throttled = [
        ThrottledAccount(a.id, a.email, a.provider, a.not_before_reason or "", a.not_before)
        for a in session.scalars(select(Account).where(
            Account.status == AccountStatus.ACTIVE, Account.not_before > wall)
            .order_by(Account.not_before, Account.id))
        if a.not_before is not None
    ]
    return StatusReport(calendars, accounts, writes, throttled)
