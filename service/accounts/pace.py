"""When an account may call its provider again, kept in the database across messages.

A provider that throttles one account says how long to wait (``Retry-After``: Graph,
https://learn.microsoft.com/en-us/graph/throttling; Google, 429/403 rateLimitExceeded,
https://developers.google.com/calendar/api/guides/errors). The wait belongs to the account,
not to the message that heard it: every actor acting for the account checks `account_pace`
first and the reconciler enqueues nothing for it before `not_before` (`ready_accounts`), so
the reconciler, dramatiq's retries and the connector's own retries no longer multiply.

Times here are wall-clock (`service.db.utcnow`), like Retry-After itself and like the sync
lease: they pace real requests, not the product's notion of "now".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
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


def account_pace(session: Session, *, account_id: int) -> AccountPace | None:
    """The account's provider and how long it must still wait; None when it is gone."""
    now = utcnow()
    row = session.execute(select(Account.provider, Account.not_before)
                          .where(Account.id == account_id)).first()
    if row is None:
        return None
    provider, not_before = row
    return AccountPace(provider, None if not_before is None or not_before <= now
                       else not_before - now)


def ready_accounts() -> ColumnElement[bool]:
    """SQL condition: the account is active and not asked to wait (what may be queued now)."""
    now = utcnow()
    return and_(Account.status == AccountStatus.ACTIVE,
                or_(Account.not_before.is_(None), Account.not_before <= now))
