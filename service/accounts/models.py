"""Connected calendar accounts and the people Rapport knows."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime, utcnow


class AccountStatus(enum.StrEnum):
    ACTIVE = "active"
    NEEDS_RECONSENT = "needs_reconsent"
    DISABLED = "disabled"



class Account(Base):
    """One OAuth grant at one provider; credentials are encrypted at rest."""

    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("provider", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    email: Mapped[str] = mapped_column(String(320))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    credentials_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[AccountStatus] = mapped_column(String(20), default=AccountStatus.ACTIVE,
                                                  index=True)
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # since when
    # the revocation episode (its `status_changed_at`) whose re-consent email is queued:
    # the reconciler reads only flagged accounts whose episode has not had its email
    reconsent_emailed_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the provider asked us to wait (Retry-After): no call for this account before then
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    not_before_reason: Mapped[str | None] = mapped_column(Text)
    # set for a person reached through a company grant (domain-wide delegation / app-only
    # access): the grant's credentials act as this person, `credentials_encrypted` then holds
    # only who to act as (the subject's address, the Graph user id)
    grant_id: Mapped[int | None] = mapped_column(
        ForeignKey("directory_grants.id", ondelete="CASCADE"), index=True)


class AccessToken(Base):
    """An account's current provider access token, shared by every worker process
    (`service.calendars.access_tokens`); kept apart from `Account.credentials_encrypted`,
    whose content identifies the grant. `token_encrypted` holds the token and the grant it
    was obtained with, encrypted like the credentials."""

    __tablename__ = "access_tokens"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"),
                                            primary_key=True)
    token_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DirectoryGrant(Base):
    """One company-wide grant: a Google Workspace service account with domain-wide
    delegation, or a Microsoft 365 app registration with application permissions.

    `scope` holds what narrows the directory (Google: admin, domain, org unit or group;
    Microsoft: tenant, client id); `credentials_encrypted` the key file or client secret /
    certificate, encrypted like every grant. The directory sync keeps the people current.
    """

    __tablename__ = "directory_grants"
    __table_args__ = (UniqueConstraint("provider", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))  # google | microsoft
    name: Mapped[str] = mapped_column(String(320))  # the domain or the tenant id
    scope: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    credentials_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[AccountStatus] = mapped_column(String(20), default=AccountStatus.ACTIVE)
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_directory_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)  # why the last directory sync failed
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the directory pass under way (or last completed), numbered, and the next page it reads,
    # so a page that fails resumes there on the next run (see `service.directory.sync`)
    directory_pass: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    directory_page_token: Mapped[str | None] = mapped_column(Text)
