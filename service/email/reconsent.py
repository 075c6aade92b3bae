"""One email per revocation episode: "Rapport lost access to your calendar, sign in again".

An account that needs re-consent gets a row keyed by the account and the moment it started
waiting (`status_changed_at`, kept while it stays flagged), so however many syncs fail in the
meantime, and however often the reconciler looks, the person hears once. Reconnecting makes
the account active; a later revocation is a new episode and a new email. Accounts reached
through a company grant are left out: their admin fixes the grant, not the person.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.accounts.models import Account, AccountStatus
from service.accounts.signing import link_expiry, links_version, reconnect_url
from service.email.models import OutboxMessage
from service.email.outbox import enqueue
from service.email.render import render_email
from service.people.models import Person
from service.settings import Settings

KIND = "reconsent"
PROVIDER_NAMES = {"google": "Google", "microsoft": "Microsoft 365"}


def reconsent_key(account: Account) -> str:
    """The dedupe key of the account's current revocation episode."""
    since = account.status_changed_at or account.created_at
    return f"{KIND}:{account.id}:{since.isoformat()}"


def queue_reconsent_emails(session: Session, *, settings: Settings, now: datetime) -> list[int]:
    """Queue the email of every flagged personal account that has not had its one yet;
    returns the outbox ids queued by this call (none on a repeat)."""
    accounts = session.scalars(select(Account).where(
        Account.status == AccountStatus.NEEDS_RECONSENT, Account.grant_id.is_(None),
        Account.person_id.is_not(None)).order_by(Account.id)).all()
    queued: list[int] = []
    for account in accounts:
        key = reconsent_key(account)
        version = links_version(session, person_id=account.person_id or 0)
        if version is None or _already(session, key):
            continue
        person = session.get(Person, account.person_id)
        provider = PROVIDER_NAMES.get(account.provider, account.provider)
        rendered = render_email(template="reconsent", context={
            "name": (person.display_name if person is not None else None) or account.email,
            "email": account.email, "provider": provider,
            "url": reconnect_url(settings, account_id=account.id, provider=account.provider,
                                 version=version, now=now),
            "expires": link_expiry(settings, now=now).strftime("%d %B %Y")})
        row = enqueue(session, kind=KIND, dedupe_key=key, recipient=account.email,
                      rendered=rendered)
        queued.append(row.id)
    return queued


def _already(session: Session, key: str) -> bool:
    return session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == key)) \
        is not None
