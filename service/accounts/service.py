"""Accounts: stored credentials (encrypted) and status."""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.accounts.crypto import Vault
from service.accounts.models import Account, AccountStatus, DirectoryGrant
from service.db import utcnow
from service.people.service import ensure_person

log = logging.getLogger(__name__)

# The command that (re)connects a company grant, per provider.
COMPANY_CONNECT = {"google": "google-workspace", "microsoft": "microsoft-tenant"}


def save_account(session: Session, *, vault: Vault, provider: str, email: str,
                 credentials: dict[str, Any], display_name: str | None = None,
                 time_zone: str | None = None) -> Account:
    """Create or update the account for (provider, email) with fresh, encrypted credentials."""
    email = email.lower()
    person = ensure_person(session, email=email, display_name=display_name, time_zone=time_zone)
    account = session.scalar(select(Account).where(Account.provider == provider,
                                                   Account.email == email))
    blob = vault.encrypt(json.dumps(credentials))
    if account is None:
        account = Account(provider=provider, email=email, person_id=person.id,
                          credentials_encrypted=blob)
        session.add(account)
    else:
        account.credentials_encrypted = blob
    if account.status not in (None, AccountStatus.ACTIVE):
        account.status_changed_at = utcnow()  # a reconnect ends the revocation episode
    account.status = AccountStatus.ACTIVE
    account.status_reason = None
    session.flush()
    log.info("account %s saved (%s, domain %s)", account.id, provider, email.split("@")[-1])
    return account


def save_grant(session: Session, *, vault: Vault, provider: str, name: str,
               scope: dict[str, str], credentials: dict[str, Any]) -> DirectoryGrant:
    """Create or update the company grant for (provider, domain or tenant), encrypted; a
    reconnected grant is active again. The people it reaches come from the directory sync."""
    grant = session.scalar(select(DirectoryGrant).where(DirectoryGrant.provider == provider,
                                                        DirectoryGrant.name == name))
    blob = vault.encrypt(json.dumps(credentials))
    if grant is None:
        grant = DirectoryGrant(provider=provider, name=name, scope=scope,
                               credentials_encrypted=blob)
        session.add(grant)
    else:
        grant.scope, grant.credentials_encrypted = scope, blob
    if grant.status != AccountStatus.ACTIVE:
        grant.status_changed_at = utcnow()
    grant.status, grant.status_reason = AccountStatus.ACTIVE, None
    session.flush()
    log.info("company grant %s saved (%s, %s)", grant.id, provider, name)
    return grant


def mark_grant_needs_reconsent(session: Session, *, grant_id: int, reason: str) -> None:
    """Flag a company grant the provider no longer honours (revoked key, removed consent);
    the people it reaches keep their data, nothing is read for them until it is fixed."""
    grant = session.get(DirectoryGrant, grant_id)
    if grant is None:
        return
    if grant.status != AccountStatus.NEEDS_RECONSENT:
        grant.status_changed_at = utcnow()
    grant.status = AccountStatus.NEEDS_RECONSENT
    grant.status_reason = (f"the company grant was revoked or has expired; connect it again "
                           f"(re-consent needed: {reason})")
    log.warning("company grant %s (%s) needs re-consent: %s", grant.id, grant.provider, reason)


def read_grant_credentials(grant: DirectoryGrant, *, vault: Vault) -> dict[str, Any]:
    """The decrypted key file / client secret of a company grant (never logged)."""
    data: dict[str, Any] = json.loads(vault.decrypt(grant.credentials_encrypted))
    return data


def read_credentials(account: Account, *, vault: Vault) -> dict[str, Any]:
    """The decrypted credentials of an account (never logged)."""
    data: dict[str, Any] = json.loads(vault.decrypt(account.credentials_encrypted))
    return data


def store_credentials(account: Account, *, vault: Vault, credentials: dict[str, Any]) -> None:
    """Replace an account's credentials (e.g. a rotated refresh token or MSAL cache)."""
    account.credentials_encrypted = vault.encrypt(json.dumps(credentials))


def mark_needs_reconsent(session: Session, *, account_id: int, reason: str) -> None:
    """Flag an account whose grant is gone, saying how to fix it; other accounts go on.

    The provider's own wording ("401 InvalidAuthenticationToken", "invalid_grant") is kept
    in brackets; the first words tell an operator what to do.
    """
    account = session.get(Account, account_id)
    if account is None:
        return
    if account.status != AccountStatus.NEEDS_RECONSENT:
        account.status_changed_at = utcnow()  # since when it waits: kept on a repeat
    account.status = AccountStatus.NEEDS_RECONSENT
    if account.grant_id is not None:  # reached through a company grant: the admin fixes it
        account.status_reason = (
            f"the company grant no longer lets Rapport act for this person; check it in the "
            f"provider's admin console, or reconnect it with `rapport connect "
            f"{COMPANY_CONNECT.get(account.provider, account.provider)}` ({reason})")
    else:
        account.status_reason = (f"access was revoked or has expired; sign in again with "
                                 f"`rapport connect {account.provider}` "
                                 f"(re-consent needed: {reason})")
    log.warning("account %s (%s) needs re-consent: %s", account.id, account.provider, reason)


def ensure_grant_accounts(session: Session, *, vault: Vault, grant: DirectoryGrant,
                          people: list[tuple[int, str, str]]) -> int:
    """The accounts through which a company grant acts as each of `people` (person id,
    address, provider user id); returns how many were created (their calendars are then
    discovered like any new account's). One query for the lot.

    A person who connected their own account at the same provider keeps it (the unique
    provider + email): their own grant already does the work.
    """
    emails = [email.lower() for _, email, _ in people]
    have = set(session.scalars(select(Account.email).where(Account.provider == grant.provider,
                                                           Account.email.in_(emails))))
    created = 0
    for person_id, email, user_id in people:
        email = email.lower()
        if email in have:
            continue
        have.add(email)
        session.add(Account(provider=grant.provider, email=email, person_id=person_id,
                            grant_id=grant.id, credentials_encrypted=vault.encrypt(
                                json.dumps({"subject": email, "user_id": user_id}))))
        created += 1
    return created


def set_accounts_status(session: Session, *, person_id: int, status: AccountStatus,
                        reason: str | None, only_reason: str | None = None) -> int:
    """Move every account of a person to `status` (e.g. DISABLED: no sync, no writes);
    with `only_reason`, only those whose status reason is that one. Returns how many."""
    changed = 0
    for account in session.scalars(select(Account).where(Account.person_id == person_id)):
        if account.status == status or (only_reason is not None
                                        and account.status_reason != only_reason):
            continue
        account.status, account.status_reason = status, reason
        account.status_changed_at = utcnow()
        changed += 1
    return changed
