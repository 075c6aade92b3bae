"""When an account may call its provider again, kept in the database across messages.

A provider that throttles one account says how long to wait (``Retry-After``: Graph,
https://learn.microsoft.com/en-us/graph/throttling; Google, 429/403 rateLimitExceeded,
https://developers.google.com/calendar/api/guides/errors). The wait belongs to the account,
not to the message that heard it: every actor acting for the account checks its pace
first (`ActingAccount`, read with the account) and the reconciler enqueues nothing for it
before `not_before` (`ready_accounts`), so the reconciler, dramatiq's retries and the
connector's own retries no longer multiply.

Times here are wall-clock (`service.db.utcnow`), like Retry-After itself and like the sync
lease: they pace real requests, not the product's notion of "now".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, update
from sqlalchemy.orm import Session

from service.accounts.models import Account, AccountStatus
from service.db import utcnow

MAX_REASON = 300


def hold_account(session: Session, *, account_id: int, seconds: float, reason: str) -> None:
    """No provider call for this account for `seconds` (a later hold already set wins)."""
    until = utcnow() + timedelta(seconds=seconds)
    session.execute(
        update(Account)
        .where(Account.id == account_id,
               or_(Account.not_before.is_(None), Account.not_before < until))
        .values(not_before=until, not_before_reason=reason[:MAX_REASON])
        .execution_options(synchronize_session=False))


@dataclass(frozen=True)
class AccountPace:
    """What an actor needs before it calls the provider for an account."""

    provider: str
    wait: timedelta | None  # still to wait before the next call; None: call now


def pace_of(provider: str, not_before: datetime | None) -> AccountPace:
    """The pace of an account from its columns, against the wall clock now."""
    now = utcnow()
    return AccountPace(provider, None if not_before is None or not_before <= now
                       else not_before - now)


@dataclass(frozen=True)
class ActingAccount:
    """The active account a message acts for, read in the same statement as its pace
    columns, so the actor's `account_of` lookup costs no second read for the pace."""

    id: int
    provider: str
    not_before: datetime | None

    def pace(self) -> AccountPace:
        return pace_of(self.provider, self.not_before)


ACTING_COLUMNS = (Account.id, Account.provider, Account.not_before)
"""What an `ActingAccount` is made of: select these, then `acting_account(row)`."""


def acting_account(row: Sequence[Any] | None) -> ActingAccount | None:
    """The `ActingAccount` of a row of `ACTING_COLUMNS` (None: no row)."""
    if row is None:
        return None
    account_id, provider, not_before = row
    return ActingAccount(account_id, provider, not_before)


def ready_accounts() -> ColumnElement[bool]:
    """SQL condition: the account is active and not asked to wait (what may be queued now)."""
    now = utcnow()
    return and_(Account.status == AccountStatus.ACTIVE,
                or_(Account.not_before.is_(None), Account.not_before <= now))
