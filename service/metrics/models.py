"""Weekly metric snapshots: one row per pair and ISO week, so trends need no full recompute,
and the change log that says which rows are stale (filled by database triggers, 0022)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime, utcnow


class MetricSnapshot(Base):
    """The counts of one pair in one ISO week (weeks read in the manager's time zone).

    Recomputing a week overwrites its row (unique pair + week), so a recompute is idempotent.
    """

    __tablename__ = "metric_snapshots"
    __table_args__ = (UniqueConstraint("pair_id", "iso_week"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"))
    iso_week: Mapped[str] = mapped_column(String(8))  # "2026-W48"
    week_start: Mapped[datetime] = mapped_column(UTCDateTime)  # local Monday 00:00, as UTC
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    scheduled: Mapped[int] = mapped_column(Integer, default=0)
    held: Mapped[int] = mapped_column(Integer, default=0)
    moved: Mapped[int] = mapped_column(Integer, default=0)
    rescheduled: Mapped[int] = mapped_column(Integer, default=0)
    cancelled: Mapped[int] = mapped_column(Integer, default=0)
    declined_by_report: Mapped[int] = mapped_column(Integer, default=0)
    declined_by_manager: Mapped[int] = mapped_column(Integer, default=0)
    series_ended: Mapped[int] = mapped_column(Integer, default=0)
    unknown: Mapped[int] = mapped_column(Integer, default=0)
    pending: Mapped[int] = mapped_column(Integer, default=0)
    agendas: Mapped[int] = mapped_column(Integer, default=0)
    areas: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    kinds: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    action_items_closed: Mapped[int] = mapped_column(Integer, default=0)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # every occurrence planned in the week, [original start, scheduled start, outcome,
    # cadence days, series id]: what streaks, gaps and the latest outcome need (see
    # `service.metrics.snapshots.facts_json`), so a read never goes back to occurrences
    facts: Mapped[list[list[Any]]] = mapped_column(JSON, default=list, server_default="[]")


class MetricChange(Base):
    """One input of a pair's snapshots changed: `at` is the instant whose week is stale
    (an occurrence's original start, an item's closing time), None for every week of the pair
    (its manager, time zone or a series cadence changed; a new pair; a week that ended).

    Database triggers on occurrences, agendas, action items, series, pairs and people write
    these rows (migration 0022), whoever writes the inputs (ORM, Core, psql); the reconciler's
    `refresh_snapshots` recomputes the weeks they name and deletes exactly the rows it read.
    No foreign key: a trigger must never fail because a pair is being deleted.
    """

    __tablename__ = "metric_changes"
    __table_args__ = (Index("ix_metric_changes_pair_id", "pair_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pair_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MetricSnapshotState(Base):
    """The one row (id 1) that says up to when ended weeks were queued for snapshots and when
    the next week ends in any manager's zone, so a pass with nothing to do reads one row."""

    __tablename__ = "metric_snapshot_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    weeks_through: Mapped[datetime] = mapped_column(UTCDateTime)
    next_check: Mapped[datetime] = mapped_column(UTCDateTime)


class CoverageMention(Base):
    """When the digest last told a manager that one direct report has no (or too rare a)
    1:1: the digest says it once, not every week (see `service.metrics.coverage`)."""

    __tablename__ = "coverage_mentions"
    __table_args__ = (UniqueConstraint("manager_id", "report_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    manager_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    report_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    mentioned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DigestZone(Base):
    """One time zone of the managers, as `people.time_zone` spells it ("" when unset), and
    the ISO week whose digests were all queued when a pass last walked its managers.

    Why: the send time depends only on the zone, so the reconciler's `digest_due` reads
    these few rows each minute instead of every manager; it walks a zone's managers only
    while its send window is open and the week is not marked done (or the mark is older
    than `service.metrics.digest.RECHECK`), and reads the zones of the managers again at
    the same pace.
    """

    __tablename__ = "digest_zones"

    zone: Mapped[str] = mapped_column(String(64), primary_key=True)
    iso_week: Mapped[str | None] = mapped_column(String(8))
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
