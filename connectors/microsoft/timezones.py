"""Windows time zone names Graph may return, mapped to IANA (CLDR windowsZones, common ones).

Graph accepts and returns either form (https://learn.microsoft.com/en-us/graph/api/resources/datetimetimezone).
"""

from __future__ import annotations

from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WINDOWS_TO_IANA: dict[str, str] = {
    "UTC": "UTC",
    "Coordinated Universal Time": "UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "E. Europe Standard Time": "Europe/Chisinau",
    "FLE Standard Time": "Europe/Kiev",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "US Mountain Standard Time": "America/Phoenix",
    "Pacific Standard Time": "America/Los_Angeles",
    "Alaskan Standard Time": "America/Anchorage",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "India Standard Time": "Asia/Kolkata",
    "China Standard Time": "Asia/Shanghai",
    "Tokyo Standard Time": "Asia/Tokyo",
    "Singapore Standard Time": "Asia/Singapore",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "E. South America Standard Time": "America/Sao_Paulo",
}


def iana_name(name: str | None) -> str | None:
    """The IANA name for a Windows or IANA zone name; None when unknown."""
    if not name:
        return None
    candidate = WINDOWS_TO_IANA.get(name, name)
    try:
        ZoneInfo(candidate)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return candidate


def zone(name: str | None) -> tzinfo:
    """The tzinfo for a Graph zone name; raises ValueError when unknown."""
    resolved = iana_name(name or "UTC")
    if resolved is None:
        raise ValueError(f"unknown time zone {name!r}")
    return UTC if resolved == "UTC" else ZoneInfo(resolved)
