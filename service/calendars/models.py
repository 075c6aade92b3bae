"""Calendars with their provider cursors, the provider call log and quarantined items."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime, utcnow


class Calendar(Base):
    """A calendar we sync; `cursor` is the provider's own opaque sync token / delta link."""

    __tablename__ = "calendars"
    __table_args__ = (UniqueConstraint("account_id", "provider_calendar_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    provider_calendar_id: Mapped[str] = mapped_column(String(500))
    owner_email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(300))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    cursor: Mapped[str | None] = mapped_column(Text)
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_full_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sync_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sync_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # wall clock
    sync_lease_holder: Mapped[str | None] = mapped_column(String(36))  # who holds the lease
    last_error: Mapped[str | None] = mapped_column(Text)  # why the last sync failed
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None once it works
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # in a row
    retry_not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)  # failing: backoff
    subscription_id: Mapped[str | None] = mapped_column(String(300))
    subscription_resource_id: Mapped[str | None] = mapped_column(String(300))
    subscription_token_encrypted: Mapped[bytes | None] = mapped_column()
    subscription_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ProviderCallLog(Base):
    """Every HTTP call made to a provider: what benchmarks and operators count."""

    __tablename__ = "provider_calls"
    __table_args__ = (Index("ix_provider_calls_account_at", "account_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    provider: Mapped[str] = mapped_column(String(20))
    operation: Mapped[str] = mapped_column(String(60))
    status: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuarantinedItem(Base):
    """A provider item we could not use: kept with its id and reason, the sync went on."""

    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("calendar_id", "provider_event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    provider_event_id: Mapped[str] = mapped_column(String(500))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GraphSeriesUid(Base):
    """A Graph series master's iCalUId, read once per mailbox and kept (`series_uids`).

    Graph's calendarView delta carries occurrences with their master's id but not the master,
    and an occurrence's own iCalUId differs per occurrence; the series' shared iCalUId (what
    Rapport matches copies across calendars and providers by) is the master's."""

    __tablename__ = "graph_series_uids"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"),
                                            primary_key=True)
    master_id: Mapped[str] = mapped_column(String(500), primary_key=True)
    ical_uid: Mapped[str] = mapped_column(Text)
