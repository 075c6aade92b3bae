"""Push channels: subscribe calendars where a public URL exists, renew them, authenticate
notifications.

A notification only says "something changed": it triggers the same incremental sync the
poller would, so a lost or forged notification can cost at most one cheap list call, never a
wrong state. Channel tokens (Google) and clientState (Graph) are random per channel, stored
encrypted, and compared in constant time.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import Subscription
from connectors.errors import ConnectorError
from service.accounts.crypto import Vault
from service.accounts.models import Account, AccountStatus
from service.accounts.pace import ready_accounts
from service.calendars.models import Calendar
from service.db import utcnow
from service.settings import Settings

log = logging.getLogger(__name__)

CHANNEL_TTL = timedelta(days=6)  # under Graph's ~7-day cap for calendar events
RENEW_BEFORE = timedelta(days=1)
RETRY_AFTER_FAILURE = timedelta(hours=1)


def webhook_address(settings: Settings, provider: str) -> str:
    """Where a provider posts notifications for this installation."""
    assert settings.public_url
    return f"{settings.public_url.rstrip('/')}/webhooks/{provider}"


def lifecycle_address(settings: Settings, provider: str) -> str | None:
    """Where Graph posts lifecycle notifications; Google channels have none."""
    return webhook_address(settings, provider) + "/lifecycle" if provider == "microsoft" else None


def calendars_needing_channels(session: Session, *, now: datetime) -> list[int]:
    """Calendars of ready accounts (`ready_accounts`) with no channel, or one that expires
    soon."""
    return list(session.scalars(
        select(Calendar.id).join(Account, Account.id == Calendar.account_id)
        .where(ready_accounts(),
               or_(Calendar.subscription_expires_at.is_(None),
                   Calendar.subscription_expires_at < now + RENEW_BEFORE))))


def renew_channel(factory: sessionmaker[Session], *, calendar_id: int, connector: object,
                  settings: Settings, vault: Vault, now: datetime) -> bool:
    """Open a fresh channel for the calendar (closing the old one); False when not possible."""
    if not settings.public_url:
        return False
    with factory() as session:
        calendar = session.get(Calendar, calendar_id)
        account = session.get(Account, calendar.account_id) if calendar else None
        if calendar is None or account is None:
            return False
        provider, provider_calendar_id = account.provider, calendar.provider_calendar_id
        old = (Subscription(calendar.subscription_id, calendar.subscription_resource_id,
                            calendar.subscription_expires_at or now)
               if calendar.subscription_id else None)
    token = secrets.token_urlsafe(32)
    try:
        sub = connector.subscribe(provider_calendar_id,  # type: ignore[attr-defined]
                                  address=webhook_address(settings, provider), token=token,
                                  ttl_seconds=int(CHANNEL_TTL.total_seconds()),
                                  lifecycle_address=lifecycle_address(settings, provider))
    except ConnectorError as err:
        log.warning("calendar %s: could not open a push channel (%s); polling goes on, "
                    "next try in %s", calendar_id, err.__class__.__name__, RETRY_AFTER_FAILURE)
        with factory.begin() as session:
            calendar = session.get(Calendar, calendar_id)
            if calendar is not None and calendar.subscription_id is None:
                calendar.subscription_expires_at = now + RENEW_BEFORE + RETRY_AFTER_FAILURE
        return False
    with factory.begin() as session:
        calendar = session.get(Calendar, calendar_id)
        assert calendar is not None
        calendar.subscription_id = sub.id
        calendar.subscription_resource_id = sub.resource_id
        calendar.subscription_token_encrypted = vault.encrypt(token)
        calendar.subscription_expires_at = sub.expires_at
    if old is not None:
        try:
            connector.unsubscribe(old)  # type: ignore[attr-defined]
        except ConnectorError:
            log.info("calendar %s: old channel already gone", calendar_id)
    log.info("calendar %s: push channel open until %s", calendar_id, sub.expires_at)
    return True


def calendars_of_stopped_accounts(session: Session) -> list[int]:
    """Calendars whose account is DISABLED (the person left or was suspended) but whose
    channel is still open: the reconciler stops them."""
    return list(session.scalars(
        select(Calendar.id).join(Account, Account.id == Calendar.account_id)
        .where(Account.status == AccountStatus.DISABLED, Calendar.subscription_id.is_not(None))))


def stop_channel(factory: sessionmaker[Session], *, calendar_id: int,
                 connector_for: Callable[[int], object]) -> bool:
    """Close the calendar's channel and forget it; False when it had none.

    The columns are cleared even when the provider refuses the stop: a channel nobody
    renews ends by itself at its expiry (at most CHANNEL_TTL), and its notifications no
    longer match a stored channel, so they are refused.
    """
    with factory() as session:
        calendar = session.get(Calendar, calendar_id)
        if calendar is None or calendar.subscription_id is None:
            return False
        old = Subscription(calendar.subscription_id, calendar.subscription_resource_id,
                           calendar.subscription_expires_at or utcnow())
    try:
        connector_for(calendar_id).unsubscribe(old)  # type: ignore[attr-defined]
    except (ConnectorError, LookupError) as err:
        log.info("calendar %s: channel not stopped at the provider (%s); it runs out by "
                 "itself", calendar_id, err.__class__.__name__)
    with factory.begin() as session:
        calendar = session.get(Calendar, calendar_id)
        if calendar is not None and calendar.subscription_id == old.id:
            calendar.subscription_id = calendar.subscription_resource_id = None
            calendar.subscription_token_encrypted = calendar.subscription_expires_at = None
    log.info("calendar %s: push channel stopped, its account is disabled", calendar_id)
    return True


def calendar_for_notification(session: Session, *, vault: Vault, subscription_id: str,
                              token: str | None) -> int | None:
    """The calendar a notification is about, only when its token is the one we issued."""
    calendar = session.scalar(select(Calendar).where(
        Calendar.subscription_id == subscription_id))
    if calendar is None or calendar.subscription_token_encrypted is None or token is None:
        return None
    expected = vault.decrypt(calendar.subscription_token_encrypted)
    if not hmac.compare_digest(expected.encode(), token.encode()):
        log.warning("calendar %s: notification with a wrong token refused", calendar.id)
        return None
    return calendar.id
