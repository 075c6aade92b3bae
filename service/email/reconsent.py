"""One email per revocation episode: "Rapport lost access to your calendar, sign in again".

An account that needs re-consent gets a row keyed by the account and the moment it started
waiting (`status_changed_at`, kept while it stays flagged), so however many syncs fail in the
meantime, and however often the reconciler looks, the person hears once. Reconnecting makes
the account active; a later revocation is a new episode and a new email. Accounts reached
through a company grant are left out: their admin fixes the grant, not the person.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from service.accounts.models import Account, AccountStatus
from service.accounts.signing import link_expiry, reconnect_url
from service.email.outbox import enqueue, used_keys
from service.email.render import render_email
from service.people.models import Person
from service.settings import Settings

KIND = "reconsent"
PROVIDER_NAMES = {"google": "Google", "microsoft": "Microsoft 365"}


def _episode(account: Account) -> datetime:
    return account.status_changed_at or account.created_at


def reconsent_key(account: Account) -> str:
    """The dedupe key of the account's current revocation episode."""
    return f"{KIND}:{account.id}:{_episode(account).isoformat()}"


def queue_reconsent_emails(session: Session, *, settings: Settings, now: datetime) -> list[int]:
    """Queue the email of every flagged personal account that has not had its one yet;
    returns the outbox ids queued by this call (none on a repeat).

    One query (indexed by status) for the flagged accounts whose episode has not had its
    email (`Account.reconsent_emailed_for`), one for the keys those already used: a pass
    with nothing new costs one query however many accounts wait for their owner."""
    episode = func.coalesce(Account.status_changed_at, Account.created_at)
    accounts = session.execute(select(Account, Person).join(
        Person, Person.id == Account.person_id).where(
        Account.status == AccountStatus.NEEDS_RECONSENT, Account.grant_id.is_(None),
        or_(Account.reconsent_emailed_for.is_(None), Account.reconsent_emailed_for != episode))
        .order_by(Account.id)).all()
    used = used_keys(session, (reconsent_key(account) for account, _ in accounts))
    queued: list[int] = []
    for account, person in accounts:
        account.reconsent_emailed_for = _episode(account)
        if reconsent_key(account) in used:
            continue
        provider = PROVIDER_NAMES.get(account.provider, account.provider)
        rendered = render_email(template="reconsent", context={
            "name": person.display_name or account.email,
            "email": account.email, "provider": provider,
            "url": reconnect_url(settings, account_id=account.id, provider=account.provider,
                                 version=person.links_version, now=now),
            "expires": link_expiry(settings, now=now).strftime("%d %B %Y")})
        row = enqueue(session, kind=KIND, dedupe_key=reconsent_key(account),
                      recipient=account.email, rendered=rendered)
        queued.append(row.id)
    return queued
