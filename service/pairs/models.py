"""Pairs, their 1:1 series (from any provider, any side) and the occurrences they hold.

A pair (manager, report) outlives any one series: history, agenda rotation, action items and
metrics hang off the pair, so a recreated, split or provider-moved series changes nothing.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime, utcnow


class Override(enum.StrEnum):
    INCLUDE = "include"
    EXCLUDE = "exclude"


class SeriesStatus(enum.StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class OccurrenceStatus(enum.StrEnum):
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


class Outcome(enum.StrEnum):
    """What became of one planned occurrence."""

    HELD = "held"  # took place at its planned time
    MOVED = "moved"  # the occurrence itself was moved to another time and took place
    RESCHEDULED = "rescheduled"  # dropped, but a replacement exists (or it was put back)
    CANCELLED_NO_RESCHEDULE = "cancelled_no_reschedule"
    DECLINED_BY_REPORT = "declined_by_report"
    DECLINED_BY_MANAGER = "declined_by_manager"
    SERIES_ENDED = "series_ended"  # the whole series was deleted or cut short
    UNKNOWN = "unknown"  # over, but the data to tell is missing


class Pair(Base):
    """A manager and one report; muted pairs get no alerts."""

    __tablename__ = "pairs"
    __table_args__ = (UniqueConstraint("manager_id", "report_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    manager_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    report_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    muted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Series(Base):
    """A recurring meeting, deduplicated across calendars by its series key (iCalendar UID).

    `confidence` comes from detection; `override` (include / exclude) always wins.
    """

    __tablename__ = "series"

    id: Mapped[int] = mapped_column(primary_key=True)
    series_key: Mapped[str] = mapped_column(String(500), unique=True)
    pair_id: Mapped[int | None] = mapped_column(ForeignKey("pairs.id"), index=True)
    title: Mapped[str] = mapped_column(String(500), default="")
    organizer_email: Mapped[str | None] = mapped_column(String(320))
    other_email: Mapped[str | None] = mapped_column(String(320))
    human_count: Mapped[int] = mapped_column(Integer, default=0)
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    detection_reason: Mapped[str] = mapped_column(Text, default="")
    override: Mapped[Override | None] = mapped_column(String(10))
    # `rapport series manager ID EMAIL`: who manages in this series, beating the org chart
    # and the organizer rule (see `service.pairs.service.manager_of`)
    manager_override: Mapped[str | None] = mapped_column(String(320))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    cadence_days: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[SeriesStatus] = mapped_column(String(10), default=SeriesStatus.ACTIVE)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SeriesSource(Base):
    """Where a series was seen: one row per calendar copy (manager's, report's, any provider)."""

    __tablename__ = "series_sources"
    __table_args__ = (UniqueConstraint("calendar_id", "provider_series_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    provider_series_id: Mapped[str] = mapped_column(String(500))
    is_organizer_copy: Mapped[bool] = mapped_column(Boolean, default=False)


# A drop no grace period was started for yet: the reconciler's repair of a lost sync
# follow-up reads only these rows (`service.outcomes.service.arm_checks`). The queries
# repeat this condition term for term, so SQLite and PostgreSQL can use the partial index.
UNARMED_DROP = ("outcome IS NULL AND check_due_at IS NULL AND (status = 'cancelled'"
                " OR manager_response = 'declined' OR report_response = 'declined')")


class Occurrence(Base):
    """One planned meeting of a series, keyed by its original start; outcome comes later."""

    __tablename__ = "occurrences"
    __table_args__ = (
        UniqueConstraint("series_id", "original_start"),
        Index("ix_occurrences_start", "scheduled_start"),
        # the reconciler's due work, found without scanning (migration 0021)
        Index("ix_occurrences_undecided_end", "outcome", "check_due_at", "scheduled_end"),
        Index("ix_occurrences_outcome_start", "outcome", "original_start"),
        Index("ix_occurrences_prep_due", "prep_nudged_at", "prep_due_at"),
        Index("ix_occurrences_prep_window", "prep_nudged_at", "scheduled_start", "prep_due_for"),
        Index("ix_occurrences_unarmed_drops", "id", sqlite_where=text(UNARMED_DROP),
              postgresql_where=text(UNARMED_DROP)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"))
    original_start: Mapped[datetime] = mapped_column(UTCDateTime)
    scheduled_start: Mapped[datetime] = mapped_column(UTCDateTime)
    scheduled_end: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[OccurrenceStatus] = mapped_column(String(10), default=OccurrenceStatus.CONFIRMED)
    manager_response: Mapped[str | None] = mapped_column(String(20))
    report_response: Mapped[str | None] = mapped_column(String(20))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # when it was dropped (cancelled, or declined by one of the two): the provider's time of
    # that change when it says, else when we noticed; a reschedule is booked after this
    dropped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(30))  # an `Outcome` value
    # indexed: the agenda planner reads the occurrences settled since its last pass
    outcome_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    check_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # the prep nudges (`service.prep.nudge`): when both were queued (or the meeting began),
    # the earliest send time of the two and the start it was worked out for
    prep_nudged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    prep_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    prep_due_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class OccurrenceCopy(Base):
    """An occurrence as one calendar holds it: the provider id and etag we write against."""

    __tablename__ = "occurrence_copies"
    __table_args__ = (UniqueConstraint("calendar_id", "provider_event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    occurrence_id: Mapped[int] = mapped_column(
        ForeignKey("occurrences.id", ondelete="CASCADE"), index=True
    )
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    provider_event_id: Mapped[str] = mapped_column(String(500))
    is_organizer_copy: Mapped[bool] = mapped_column(Boolean, default=False)
    etag: Mapped[str | None] = mapped_column(String(200))
    block_hash: Mapped[str | None] = mapped_column(String(64))  # hash of our block as read back
    description: Mapped[str | None] = mapped_column(Text)  # as last read or written; merge base
    description_is_html: Mapped[bool] = mapped_column(Boolean, default=False)
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AdHocMeeting(Base):
    """A one-off meeting of exactly two people: a possible reschedule of a dropped 1:1."""

    __tablename__ = "adhoc_meetings"
    __table_args__ = (
        UniqueConstraint("calendar_id", "provider_event_id"),
        Index("ix_adhoc_people_start", "people_key", "start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    provider_event_id: Mapped[str] = mapped_column(String(500))
    people_key: Mapped[str] = mapped_column(String(700))  # the two emails, sorted, "a|b"
    title: Mapped[str] = mapped_column(String(500), default="")
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    # when it was booked (provider's created time, else first seen) and when its time last
    # changed: only a meeting booked or moved after a drop can be that drop's reschedule
    booked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    moved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
