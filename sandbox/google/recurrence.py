"""Recurrence expansion for the Google sandbox.

Follows https://developers.google.com/calendar/api/concepts/events-calendars#recurring_events
and https://developers.google.com/calendar/api/guides/recurringevents: a series master
carries RFC 5545 ``RRULE`` lines and a start in its own ``timeZone``; occurrences keep
their wall-clock time in that zone across DST changes. Instance ids are
``{masterId}_{YYYYMMDDTHHMMSSZ}`` of the original start in UTC (``{masterId}_{YYYYMMDD}``
for all-day series), as the real API produces them.

Infinite recurrences are expanded up to a bounded horizon (`HORIZON`, from the sandbox
clock); the real API expands far further, but nothing Rapport does looks that far ahead.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

HORIZON = timedelta(days=400)
_MAX_INSTANCES = 2000


def expand(rrule_lines: list[str], dtstart: datetime, *, until: datetime) -> list[datetime]:
    """Original starts (aware, in dtstart's zone) of a series, up to `until` (inclusive)."""
    rule_text = "\n".join(
        line for line in rrule_lines if line.upper().startswith(("RRULE", "EXDATE", "RDATE"))
    )
    rule = rrulestr(rule_text, dtstart=dtstart, forceset=True)
    starts: list[datetime] = []
    for start in rule:
        if start > until or len(starts) >= _MAX_INSTANCES:
            break
        starts.append(start)
    return starts


def instance_id(master_id: str, original_start: datetime, *, all_day: bool = False) -> str:
    """The id Google gives one instance of a recurring event."""
    if all_day:
        return f"{master_id}_{original_start.strftime('%Y%m%d')}"
    return f"{master_id}_{original_start.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"


def split_instance_id(event_id: str) -> tuple[str, str] | None:
    """(master id, suffix) of an instance id, or None for a plain event id."""
    master, sep, suffix = event_id.rpartition("_")
    if not sep or not master or not (len(suffix) in (8, 16) and suffix[:8].isdigit()):
        return None
    return master, suffix


def parse_suffix(suffix: str, tz: str) -> datetime:
    """The original start encoded in an instance id suffix, aware."""
    if len(suffix) == 8:
        day = date(int(suffix[:4]), int(suffix[4:6]), int(suffix[6:8]))
        return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))
    return datetime.strptime(suffix, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def until_clause(until: datetime) -> str:
    """An RRULE ``UNTIL`` value in UTC form, as RFC 5545 requires with a zoned DTSTART."""
    return until.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def with_until(rrule_lines: list[str], until: datetime) -> list[str]:
    """The same recurrence cut short at `until` (replaces COUNT / UNTIL)."""
    out: list[str] = []
    for line in rrule_lines:
        if line.upper().startswith("RRULE:"):
            parts = [
                p for p in line[6:].split(";") if not p.upper().startswith(("UNTIL=", "COUNT="))
            ]
            parts.append(f"UNTIL={until_clause(until)}")
            line = "RRULE:" + ";".join(parts)
        out.append(line)
    return out
