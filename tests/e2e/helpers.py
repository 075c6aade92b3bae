"""What the behaviour suite reads back: database rows, sandbox requests, counts.

Plain functions over the `Harness` so each test states its scenario and its expectations,
not the queries behind them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from connectors.text import looks_like_html
from sandbox.admin import RecordedRequest, SandboxAdmin
from service.accounts.models import Account
from service.agenda.block import START_MARKER, extract_block
from service.agenda.htmltext import visible_text
from service.agenda.items import add_topic as queue_topic
from service.agenda.models import AgendaRecord
from service.calendars.models import Calendar, QuarantinedItem
from service.pairs.models import (
    Occurrence,
    OccurrenceCopy,
    Pair,
    Series,
    SeriesSource,
)

from .conftest import Harness, ProviderCase

# A second report per provider, with no seeded series with the case's manager.
NEW_REPORT = {"google": "kim@acme.test", "microsoft": "jordan@acme.test"}


def connect_pair(harness: Harness, case: ProviderCase) -> None:
    """Connect the case's manager and report."""
    harness.connect(case.manager)
    harness.connect(case.report)


def upcoming(harness: Harness, case: ProviderCase, series_key: str | None = None
             ) -> list[datetime]:
    """Original starts of the series' occurrences still ahead, within the agenda horizon."""
    sandbox = harness.sandbox(case.provider)
    starts = sandbox.occurrence_starts(series_key or case.series_key,
                                       until=harness.horizon_end())
    return [s for s in starts if s > harness.clock()]


def later(harness: Harness, case: ProviderCase, *, weeks: int = 6) -> list[datetime]:
    """Original starts ahead of now up to `weeks` weeks out."""
    sandbox = harness.sandbox(case.provider)
    until = harness.clock() + timedelta(weeks=weeks)
    return [s for s in sandbox.occurrence_starts(case.series_key, until=until)
            if s > harness.clock()]


def visible(description: str) -> str:
    """What a person sees of a description (HTML or plain)."""
    if not looks_like_html(description):
        return description
    return visible_text(description).replace("\xa0", " ")


def block_count(description: str) -> int:
    """How many agenda blocks a description holds, as a person would see them."""
    return visible(description).count(START_MARKER)


def series_of(harness: Harness, *, manager: str, report: str | None = None,
              title: str | None = None) -> Series:
    """The one series with this organizer (and other person / title)."""
    with harness.session() as session:
        query = select(Series).where(Series.organizer_email == manager)
        if report is not None:
            query = query.where(Series.other_email == report)
        if title is not None:
            query = query.where(Series.title == title)
        rows = session.scalars(query).all()
        assert len(rows) == 1, f"expected one series, found {[r.title for r in rows]}"
        session.expunge_all()
        return rows[0]


def case_series(harness: Harness, case: ProviderCase) -> Series:
    """The case's seeded 1:1 series as stored."""
    return series_of(harness, manager=case.manager, report=case.report)


def occurrence_at(harness: Harness, series_id: int, original_start: datetime) -> Occurrence:
    """The occurrence row of a series at its original start."""
    with harness.session() as session:
        row = session.scalar(select(Occurrence).where(
            Occurrence.series_id == series_id, Occurrence.original_start == original_start))
        assert row is not None, f"no occurrence at {original_start.isoformat()}"
        session.expunge_all()
        return row


def agenda_of(harness: Harness, occurrence_id: int) -> AgendaRecord | None:
    """The agenda planned for an occurrence, if any."""
    with harness.session() as session:
        row = session.scalar(select(AgendaRecord).where(
            AgendaRecord.occurrence_id == occurrence_id))
        session.expunge_all()
        return row


def add_topic(harness: Harness, case: ProviderCase, text: str) -> None:
    """The report queues a topic for the pair's next 1:1 (changes the planned agenda), the way
    the CLI and the page do: the pair is marked for planning."""
    pair_id = case_series(harness, case).pair_id
    assert pair_id is not None
    with harness.runtime.factory.begin() as session:
        queue_topic(session, pair_id=pair_id, text=text, added_by="report")


COUNTED = (Account, Calendar, Pair, Series, SeriesSource, Occurrence, OccurrenceCopy,
           AgendaRecord, QuarantinedItem)


def row_counts(harness: Harness) -> dict[str, int]:
    """Rows per table that must never grow from replaying the same provider state."""
    with harness.session() as session:
        return {model.__tablename__: session.scalar(
            select(func.count()).select_from(model)) or 0 for model in COUNTED}


def snapshot(harness: Harness) -> dict[str, object]:
    """The state that matters, by natural keys (ids and timestamps of writes left out)."""
    with harness.session() as session:
        series = sorted(
            (s.series_key, s.organizer_email, s.other_email, s.pair_id is not None, str(s.status))
            for s in session.scalars(select(Series)))
        occurrences = sorted(
            (s.series_key, o.original_start, o.scheduled_start, str(o.status))
            for o, s in session.execute(
                select(Occurrence, Series).join(Series, Series.id == Occurrence.series_id)))
        copies = sorted((c.calendar_id, c.provider_event_id, c.removed, c.block_hash)
                        for c in session.scalars(select(OccurrenceCopy)))
        agendas = sorted((a.occurrence_id, a.content_hash, a.written_hash)
                         for a in session.scalars(select(AgendaRecord)))
    return {"series": series, "occurrences": occurrences, "copies": copies,
            "agendas": agendas, "rows": row_counts(harness)}


def written_agendas(harness: Harness) -> int:
    """Agendas whose invite holds what was planned."""
    with harness.session() as session:
        return session.scalar(select(func.count()).select_from(AgendaRecord).where(
            AgendaRecord.written_hash == AgendaRecord.content_hash)) or 0


API_ROOTS = ("/calendar/v3/", "/v1.0/")  # Google Calendar v3, Microsoft Graph v1.0


@dataclass(frozen=True)
class Calls:
    """API requests a sandbox served, by kind (token requests left out)."""

    requests: list[RecordedRequest]

    @property
    def api(self) -> list[RecordedRequest]:
        """Calendar API requests (sign-in and token endpoints left out)."""
        return [r for r in self.requests if r.path.startswith(API_ROOTS)]

    @property
    def lists(self) -> list[RecordedRequest]:
        """events.list (Google) / calendarView delta (Graph): one per calendar per round
        (Graph's list of series masters, GET /v1.0/.../events, is not one of them)."""
        return [r for r in self.api if r.method == "GET" and (
            (r.path.startswith("/calendar/v3/") and r.path.endswith("/events"))
            or "delta" in r.path)]

    @property
    def writes(self) -> list[RecordedRequest]:
        """events.patch (Google) / PATCH event (Graph)."""
        return [r for r in self.api if r.method in ("PATCH", "PUT", "POST", "DELETE")
                and not r.path.endswith("/subscriptions")]

    def status(self, code: int) -> list[RecordedRequest]:
        return [r for r in self.api if r.status == code]


def calls(sandbox: SandboxAdmin) -> Calls:
    """What the sandbox served since it was last cleared."""
    return Calls(sandbox.requests())



def outside_block(description: str) -> tuple[str, str]:
    """The text before and after the agenda block, byte for byte."""
    block = extract_block(description)
    assert block is not None, "no agenda block in the description"
    before, _, after = description.partition(block)
    return before, after


def agenda_for_next(harness: Harness, case: ProviderCase) -> tuple[int, datetime]:
    """(agenda id, original start) of the case's next occurrence."""
    start = upcoming(harness, case)[0]
    occurrence = occurrence_at(harness, case_series(harness, case).id, start)
    agenda = agenda_of(harness, occurrence.id)
    assert agenda is not None
    return agenda.id, start
