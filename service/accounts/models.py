"""Connected calendar accounts and the people Rapport knows."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, Text, UniqueConstraint
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
    status: Mapped[AccountStatus] = mapped_column(String(20), default=AccountStatus.ACTIVE)
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # since when
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
