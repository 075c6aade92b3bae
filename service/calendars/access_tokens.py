"""Access tokens kept in the database, for the Google connector's credentials.

A worker process keeps one connector, so one access token, per account; but an account's
messages land on any worker (its calendar's sync on one, its agenda writes on another), so
without sharing each worker asks the token endpoint for its own token, every hour: N workers
cost up to N token requests per account per hour. Kept here, per account, the token one
process obtained serves every other until it expires (`connectors.google.auth.SerializedRefresh`
reads it only when it would otherwise refresh). The connector never sees the database; it
gets this store (its `SharedToken`) from `AccountConnectors`.

The token is encrypted with the account vault, with the fingerprint of the grant it came
from: a reconnected account (another grant) never adopts the old grant's token.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from service.accounts.crypto import Vault
from service.accounts.models import AccessToken
from service.db import dialect_insert, read_session

log = logging.getLogger(__name__)


def grant_fingerprint(grant: str) -> str:
    """A digest of the grant's credentials (as `AccountConnectors` identifies a grant), kept
    inside the encrypted token so the token is only ever used with its own grant."""
    return hashlib.sha256(grant.encode()).hexdigest()


class StoredAccessToken:
    """The `SharedToken` of one account's grant, in its own short transactions.

    Sharing only saves token requests: a database error is logged (never the token) and the
    connector then asks the token endpoint as it would alone."""

    def __init__(self, factory: sessionmaker[Session], vault: Vault, account_id: int,
                 grant: str) -> None:
        self.factory = factory
        self.vault = vault
        self.account_id = account_id
        self.fingerprint = grant_fingerprint(grant)

    def load(self) -> tuple[str, datetime] | None:
        """The stored token of this grant and its expiry (naive UTC, as google-auth keeps
        ``expiry``), or None."""
        try:
            with read_session(self.factory) as session:
                row = session.execute(select(AccessToken.token_encrypted, AccessToken.expires_at)
                                      .where(AccessToken.account_id == self.account_id)).first()
        except SQLAlchemyError as err:
            log.warning("account %s: shared access token not read (%s)", self.account_id,
                        type(err).__name__)
            return None
        if row is None:
            return None
        payload = json.loads(self.vault.decrypt(row.token_encrypted))
        if payload.get("grant") != self.fingerprint:  # obtained with an earlier grant
            return None
        return str(payload["token"]), row.expires_at.astimezone(UTC).replace(tzinfo=None)

    def save(self, token: str, expiry: datetime) -> None:
        """Replace the account's stored token with this one (`expiry` naive UTC)."""
        blob = self.vault.encrypt(json.dumps({"grant": self.fingerprint, "token": token}))
        expires_at = expiry.replace(tzinfo=UTC)
        try:
            with self.factory.begin() as session:
                session.execute(
                    dialect_insert(session, AccessToken)
                    .values(account_id=self.account_id, token_encrypted=blob,
                            expires_at=expires_at)
                    .on_conflict_do_update(index_elements=["account_id"],
                                           set_={"token_encrypted": blob,
                                                 "expires_at": expires_at}))
        except SQLAlchemyError as err:
            log.warning("account %s: access token not shared (%s)", self.account_id,
                        type(err).__name__)
