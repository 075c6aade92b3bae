"""What the workers ask the database about accounts and calendars: which are active, which
are due for a sync, which still need their calendars discovered.

The reconciler finds due work here (the database is the source of truth; the broker only
delivers), so a lost message or a restarted broker loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from service.accounts.models import Account, AccountStatus
from service.accounts.pace import ACTING_COLUMNS, ActingAccount, acting_account, ready_accounts
from service.calendars.models import Calendar
from service.db import utcnow
from service.people.models import Person


def active_account_ids(session: Session) -> list[int]:
    """Every active account, oldest first."""
    return list(session.scalars(select(Account.id).where(
        Account.status == AccountStatus.ACTIVE).order_by(Account.id)))


def active_account(session: Session, *, account_id: int) -> ActingAccount | None:
    """That account when it exists and is active (with its pace: one statement), else None."""
    return acting_account(session.execute(select(*ACTING_COLUMNS).where(
        Account.id == account_id, Account.status == AccountStatus.ACTIVE)).first())


def active_account_of_calendar(session: Session, *, calendar_id: int) -> ActingAccount | None:
    """The account that owns the calendar, when both exist and the account is active (with
    its pace: one statement)."""
    return acting_account(session.execute(
        select(*ACTING_COLUMNS).join(Calendar, Calendar.account_id == Account.id)
        .where(Calendar.id == calendar_id, Account.status == AccountStatus.ACTIVE)).first())


@dataclass(frozen=True)
class KnownCalendars:
    """The calendars stored for an account, and whether to ask the provider for them."""

    calendar_ids: list[int]
    discover: bool


def known_calendars(session: Session, *, account_id: int) -> KnownCalendars:
    """The account's stored calendars; discover them the first time, and again while its
    owner's time zone is unknown (the provider's calendar list says it)."""
    ids = list(session.scalars(select(Calendar.id).where(Calendar.account_id == account_id)))
    account = session.get(Account, account_id)
    owner = session.get(Person, account.person_id) if account and account.person_id else None
    zone_unknown = owner is not None and not owner.time_zone
    return KnownCalendars(calendar_ids=ids, discover=not ids or zone_unknown)


def calendars_due_for_sync(session: Session, *, now: datetime, poll_interval: timedelta,
                           push_fallback: timedelta | None = None,
                           wall_now: datetime | None = None) -> list[int]:
    """Calendars never synced, not synced for `poll_interval` (the polling fallback when no
    push arrives), with a sync requested (a webhook, a failure), or left with an expired
    lease (a worker died mid-sync).

    With `push_fallback` (push is on), a calendar whose channel has not expired is polled
    only after that much longer interval: its notifications request the syncs, the poll only
    covers a lost one. Google says notifications are not 100 % reliable and a watch channel
    simply stops at its expiration; Graph sends a `missed` lifecycle event, and a
    subscription also stops at its expirationDateTime: an expired channel polls normally.

    Only calendars of accounts that are active and not asked to wait (`ready_accounts`), and
    not in a failing calendar's backoff (`retry_not_before`). Leases and backoffs are
    wall-clock (`wall_now`, default the real time): they pace real requests."""
    wall = wall_now or utcnow()
    dead_lease = and_(Calendar.sync_lease_holder.is_not(None), Calendar.sync_lease_until < wall)
    polled = Calendar.last_sync_at < now - poll_interval
    if push_fallback is not None:
        pushed = and_(Calendar.subscription_id.is_not(None),
                      Calendar.subscription_expires_at > now)
        unpushed = or_(Calendar.subscription_id.is_(None),
                       Calendar.subscription_expires_at.is_(None),
                       Calendar.subscription_expires_at <= now)
        polled = or_(and_(unpushed, polled),
                     and_(pushed, Calendar.last_sync_at < now - push_fallback))
    return list(session.scalars(
        select(Calendar.id).join(Account, Account.id == Calendar.account_id)
        .where(ready_accounts(),
               or_(Calendar.retry_not_before.is_(None), Calendar.retry_not_before <= wall),
               or_(Calendar.last_sync_at.is_(None), polled,
                   Calendar.sync_requested_at.is_not(None), dead_lease))))


def accounts_without_calendars(session: Session) -> list[int]:
    """Ready accounts with no stored calendar yet: their discovery is still due."""
    return list(session.scalars(
        select(Account.id).where(ready_accounts(),
                                 ~Account.id.in_(select(Calendar.account_id)))))


def ready_calendar_ids(session: Session) -> set[int]:
    """Calendars whose account may call its provider now (active, not asked to wait)."""
    return set(session.scalars(select(Calendar.id).join(Account, Account.id ==
                                                        Calendar.account_id)
                               .where(ready_accounts())))
