"""Which time zone a person's day is read in: one place, so every module agrees.

Weeks for the metrics, working hours for free slots and quiet hours for alerts all read a
person's stored IANA zone. A zone that is unset (the provider never said) or unknown to the
tz database is read as UTC: logged, never fatal, and the same everywhere.
"""

from __future__ import annotations

import logging
from datetime import tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger(__name__)

UTC_ZONE = ZoneInfo("UTC")


class Zoned(Protocol):
    """Anything with a stored IANA time zone name (a `Person`)."""

    time_zone: str | None


def zone_of(name: str | None) -> ZoneInfo:
    """The IANA zone `name`, or UTC when it is unset or unknown (logged, never fatal)."""
    if not name:
        return UTC_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America" is a folder
        log.warning("unknown time zone %r; using UTC", name)
        return UTC_ZONE


def person_zone(person: Zoned) -> ZoneInfo:
    """The zone a person's day is read in: their own when Rapport knows it, else UTC."""
    return zone_of(person.time_zone)


def zone_name(tz: tzinfo) -> str:
    """The printable IANA name of a zone ("UTC" for a zone without one)."""
    return getattr(tz, "key", None) or "UTC"
