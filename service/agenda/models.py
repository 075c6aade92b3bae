"""What agenda we wrote into which occurrence, and the action items a pair carries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime, utcnow


class AgendaRecord(Base):
    """The agenda planned for one occurrence; `written_hash` is what the invite holds now.

    Due work is visible here: `needs_write` says the invite's block differs from the plan
    (set when planning, cleared when written), so the reconciler finds the writes still owed
    with one indexed query and enqueues them again. `abandoned_etag` says we came to
    write and the provider showed the occurrence cancelled or gone: it holds the etag of the
    copy as we knew it, so nothing is tried again until a sync brings news of that copy.
    """

    __tablename__ = "agendas"

    id: Mapped[int] = mapped_column(primary_key=True)
    occurrence_id: Mapped[int] = mapped_column(
        ForeignKey("occurrences.id", ondelete="CASCADE"), unique=True
    )
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    areas: Mapped[list[str]] = mapped_column(JSON, default=list)
    question_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    content_hash: Mapped[str] = mapped_column(String(64))
    written_hash: Mapped[str | None] = mapped_column(String(64))
    provider_etag: Mapped[str | None] = mapped_column(String(200))
    written_copy_id: Mapped[int | None] = mapped_column(
        ForeignKey("occurrence_copies.id", ondelete="SET NULL")
    )
    last_error: Mapped[str | None] = mapped_column(Text)  # why the last write failed
    abandoned_etag: Mapped[str | None] = mapped_column(String(200))
    # the visible lines of the block we last wrote: the base people's edits are read against
    written_text: Mapped[str | None] = mapped_column(Text)
    # keys (`block.line_key`) of lines people deleted from this invite: not put back
    dismissed: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    needs_write: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0",
                                              index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    written_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ActionItem(Base):
    """Something agreed in a 1:1; open items carry over into the next agenda."""

    __tablename__ = "action_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(10), default="report")  # report | manager
    source_occurrence_id: Mapped[int | None] = mapped_column(
        ForeignKey("occurrences.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # who closed it, as far as we know: "someone" when ticked in an invite (providers do not
    # say who edited an event), None from the CLI
    closed_by: Mapped[str | None] = mapped_column(String(20))


class PairTopic(Base):
    """A topic someone queued for the pair's next 1:1 (the report's come first).

    `used_in_occurrence_id` is the occurrence it is planned into; it leaves the queue only
    when that meeting took place (see `items.queued_topics`). A `private` topic is the
    manager's own preparation: planned like the others, but never written into the invite
    (which the report sees) nor shown on the report's page.
    """

    __tablename__ = "pair_topics"

    id: Mapped[int] = mapped_column(primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    # report | manager | someone (typed into the invite; the provider does not say who)
    added_by: Mapped[str] = mapped_column(String(10), default="report")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_in_occurrence_id: Mapped[int | None] = mapped_column(
        ForeignKey("occurrences.id", ondelete="SET NULL")
    )
    private: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class PlanWanted(Base):
    """A pair whose agendas must be planned again: one of their inputs changed (a topic, an
    action item, a line deleted in the invite, a sync of one of its series).

    `token` is new at every marking, so a planner that read a mark deletes only that one and
    a change made while it planned stays marked for the next pass."""

    __tablename__ = "plan_wanted"

    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"),
                                         primary_key=True)
    token: Mapped[str] = mapped_column(String(32))


class PlanningWatermark(Base):
    """Where the last planning pass stood (row 1): the horizon end it planned up to and its
    time, so the next pass reads only the occurrences that entered the horizon, started or
    got their outcome since; `settings_key` says which settings it planned with. Row 2 is the
    prep nudges' (`prep.send_times`): only its `settings_key` matters."""

    __tablename__ = "planning_watermark"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    passed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    planned_until: Mapped[datetime] = mapped_column(UTCDateTime)
    settings_key: Mapped[str] = mapped_column(String(64))
