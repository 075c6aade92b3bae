"""The people Rapport knows: anyone who appears in a 1:1, connected or not."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime


class Person(Base):
    """Someone who appears in a 1:1, connected or not; the time zone drives their emails."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    # Signed links carry this; `rapport people revoke-links` bumps it to refuse older ones.
    links_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    # From a company directory (see `service.directory`): the manager the org chart names,
    # the provider's user id, and whether the directory has them suspended or no longer
    # lists them (`left_at`); people outside any directory keep these empty.
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"),
                                                   index=True)
    directory_grant_id: Mapped[int | None] = mapped_column(
        ForeignKey("directory_grants.id", ondelete="SET NULL"), index=True)
    directory_id: Mapped[str | None] = mapped_column(String(200))
    suspended: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the directory sync's bookkeeping: how the directory names this person's manager
    # ("id:<user id>" or "email:<address>"), resolved once a pass is complete, and when a
    # pass last listed them (`DirectoryGrant.directory_pass`; people of the grant not listed
    # by a completed pass have left)
    directory_manager_ref: Mapped[str | None] = mapped_column(String(400))
    directory_seen_pass: Mapped[int | None] = mapped_column(Integer)
