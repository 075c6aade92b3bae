"""The people Rapport knows: anyone who appears in a 1:1, connected or not."""

from __future__ import annotations

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base


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

