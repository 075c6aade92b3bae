"""Seed N 1:1 series straight into a migrated database, as a year of syncing leaves it.

    seed(engine, series=1600)  # people, accounts, calendars, pairs, series, occurrences...

Eight reports per manager; each manager has a Google account and a calendar (the organizer's,
where the agendas are written). Per series: `weeks_past` weeks of weekly occurrences that were
held (an agenda record each, with areas and questions) and `weeks_ahead` weeks to come, each
with the organizer's copy; two topics discussed in past meetings, one closed and one open
action item. Rows go in with Core bulk inserts in chunks of series (bounded memory), ids
given, so 50,000 series (3 M occurrences) take minutes, not hours.

Times are chosen so that nothing is due "now": meetings start on the hour, `NOW` is at half
past, so no occurrence enters the horizon or starts within a reconcile interval of it. Used by
`bench_reconcile.py` and by `tests/agenda/test_planning_pass.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, text

from service.accounts.models import Account
from service.agenda.models import ActionItem, AgendaRecord, PairTopic
from service.calendars.models import Calendar
from service.pairs.models import Occurrence, OccurrenceCopy, Pair, Series, SeriesSource
from service.people.models import Person

NOW = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)  # a Wednesday, half past
REPORTS_PER_MANAGER = 8
SERIES_PER_CHUNK = 500
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC"]
AREAS = [["growth", "productivity"], ["communication", "motivation"], ["growth"],
         ["productivity", "motivation"]]
KINDS = ["regular", "regular", "development", "regular", "regular", "core"]


@dataclass(frozen=True)
class Seeded:
    series: int
    occurrences: int
    rows: int


def seed(engine: Engine, *, series: int, weeks_past: int = 52, weeks_ahead: int = 8,
         now: datetime = NOW) -> Seeded:
    """Insert `series` series (and all they hang on) into an empty, migrated database."""
    rows = occurrences = 0
    for first in range(0, series, SERIES_PER_CHUNK):
        chunk = _chunk(range(first, min(first + SERIES_PER_CHUNK, series)),
                       weeks_past=weeks_past, weeks_ahead=weeks_ahead, now=now)
        with engine.begin() as conn:
            for table, batch in chunk.items():
                if batch:
                    conn.execute(insert(table), batch)
                    rows += len(batch)
        occurrences += len(chunk[Occurrence])
    return Seeded(series=series, occurrences=occurrences, rows=rows)


def settle_writes(engine: Engine) -> None:
    """Make every invite hold its planned agenda (what the writes leave): nothing owed."""
    with engine.begin() as conn:
        conn.execute(text(
            "UPDATE occurrence_copies SET block_hash = (SELECT a.content_hash FROM agendas a"
            " WHERE a.occurrence_id = occurrence_copies.occurrence_id)"
            " WHERE occurrence_id IN (SELECT occurrence_id FROM agendas)"))
        conn.execute(text("UPDATE agendas SET written_hash = content_hash,"
                          " needs_write = false WHERE needs_write OR written_hash IS NULL"))


def _ids(s: int) -> tuple[int, int, int]:
    """(manager person id, report person id, manager index) of series index `s`."""
    manager = s // REPORTS_PER_MANAGER
    return manager * (REPORTS_PER_MANAGER + 1) + 1, s + s // REPORTS_PER_MANAGER + 2, manager


def _chunk(indexes: range, *, weeks_past: int, weeks_ahead: int,
           now: datetime) -> dict[type, list[dict[str, Any]]]:
    out: dict[type, list[dict[str, Any]]] = {t: [] for t in (
        Person, Account, Calendar, Pair, Series, SeriesSource, Occurrence, OccurrenceCopy,
        AgendaRecord, PairTopic, ActionItem)}
    weeks = weeks_past + weeks_ahead
    start = now.replace(minute=0) - timedelta(weeks=weeks_past)
    for s in indexes:
        manager_id, report_id, manager = _ids(s)
        pair_id = series_id = s + 1
        if s % REPORTS_PER_MANAGER == 0:
            email = f"m{manager}@bench.test"
            out[Person].append({"id": manager_id, "email": email,
                                "display_name": f"Manager {manager}",
                                "time_zone": ZONES[manager % len(ZONES)], "opted_out": False,
                                "manager_id": None})
            out[Account].append({"id": manager + 1, "provider": "google", "email": email,
                                 "person_id": manager_id, "credentials_encrypted": b"x",
                                 "status": "active", "created_at": start,
                                 "last_sync_at": now})
            out[Calendar].append({"id": manager + 1, "account_id": manager + 1,
                                  "provider_calendar_id": "primary", "owner_email": email,
                                  "time_zone": ZONES[manager % len(ZONES)],
                                  "last_sync_at": now, "cursor": "c"})
        out[Person].append({"id": report_id, "email": f"r{s}@bench.test",
                            "display_name": f"Report {s}", "time_zone": "Europe/Berlin",
                            "opted_out": False, "manager_id": manager_id})
        out[Pair].append({"id": pair_id, "manager_id": manager_id, "report_id": report_id,
                          "muted": False, "created_at": start})
        out[Series].append({"id": series_id, "series_key": f"s{s}@bench", "pair_id": pair_id,
                            "title": "1:1", "organizer_email": f"m{manager}@bench.test",
                            "other_email": f"r{s}@bench.test", "human_count": 2,
                            "confidence": 1.0, "detection_reason": "title", "cadence_days": 7,
                            "time_zone": "UTC", "status": "active", "first_seen_at": start})
        out[SeriesSource].append({"id": series_id, "series_id": series_id,
                                  "calendar_id": manager + 1, "provider_series_id": f"e{s}",
                                  "is_organizer_copy": True})
        first = start + timedelta(days=s % 5, hours=1 + (s // 5) % 8)  # on the hour
        for week, at in _weekly(first, weeks):
            occurrence_id = s * weeks + week + 1
            past = at < now
            end = at + timedelta(minutes=30)
            out[Occurrence].append({
                "id": occurrence_id, "series_id": series_id, "original_start": at,
                "scheduled_start": at, "scheduled_end": end, "status": "confirmed",
                "outcome": "held" if end < now else None,
                "outcome_decided_at": end + timedelta(hours=1) if end < now else None,
                "updated_at": at})
            out[OccurrenceCopy].append({
                "id": occurrence_id, "occurrence_id": occurrence_id, "calendar_id": manager + 1,
                "provider_event_id": f"e{s}_{week}", "is_organizer_copy": True, "etag": "1",
                "description": "Weekly 1:1", "description_is_html": False, "removed": False,
                "seen_at": at})
            if past:
                out[AgendaRecord].append({
                    "id": occurrence_id, "occurrence_id": occurrence_id, "pair_id": pair_id,
                    "kind": KINDS[week % len(KINDS)], "areas": AREAS[week % len(AREAS)],
                    "question_ids": [f"q{(week * 3 + k) % 90}" for k in range(4)],
                    "content_hash": f"h{occurrence_id}", "written_hash": f"h{occurrence_id}",
                    "written_text": "", "dismissed": [], "needs_write": False,
                    "created_at": at})
        last_past = s * weeks + weeks_past
        for k, (text_, used) in enumerate((("Career plans", last_past - 2),
                                           ("Feedback on the launch", last_past - 1))):
            out[PairTopic].append({"id": s * 2 + k + 1, "pair_id": pair_id, "text": text_,
                                   "added_by": "report", "created_at": start,
                                   "used_in_occurrence_id": used, "private": False})
        for k, closed in enumerate((now - timedelta(weeks=2), None)):
            out[ActionItem].append({"id": s * 2 + k + 1, "pair_id": pair_id,
                                    "text": f"Follow-up {k}", "owner": "report",
                                    "source_occurrence_id": last_past - 3, "created_at": start,
                                    "closed_at": closed, "closed_by": None})
    return out


def _weekly(first: datetime, weeks: int) -> Iterator[tuple[int, datetime]]:
    for week in range(weeks):
        yield week, first + timedelta(weeks=week)
