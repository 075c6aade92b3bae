"""Graph time zone names (Windows or IANA) as IANA names, through a maintained table.

Graph accepts and returns either form
(https://learn.microsoft.com/en-us/graph/api/resources/datetimetimezone); mailbox settings
return the Windows form unless an administrator chose IANA
(https://learn.microsoft.com/en-us/graph/api/user-get-mailboxsettings). The Windows-to-IANA
table is CLDR's windowsZones as shipped by tzlocal (`tzlocal.windows_tz.win_tz`), so it
follows Microsoft's list instead of a copy we would have to keep up by hand.
"""

from __future__ import annotations

from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import tz_win, win_tz

# Windows names Graph uses that are not Windows registry keys (so not in CLDR's table).
_GRAPH_ALIASES = {"Coordinated Universal Time": "UTC", "tzone://Microsoft/Utc": "UTC"}


def iana_name(name: str | None) -> str | None:
    """The IANA name for a Windows or IANA zone name; None when unknown."""
    if not name:
        return None
    name = name.strip()
    candidate = _GRAPH_ALIASES.get(name) or win_tz.get(name, name)
    if candidate == "Etc/UTC":
        candidate = "UTC"
    try:
        ZoneInfo(candidate)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return candidate


def windows_name(iana: str) -> str | None:
    """The Windows name of an IANA zone (what Graph reports by default), None when unmapped."""
    return "UTC" if iana in ("UTC", "Etc/UTC") else tz_win.get(iana)


def zone(name: str | None) -> tzinfo:
    """The tzinfo for a Graph zone name; raises ValueError when unknown."""
    resolved = iana_name(name or "UTC")
    if resolved is None:
        raise ValueError(f"unknown time zone {name!r}")
    return UTC if resolved == "UTC" else ZoneInfo(resolved)
