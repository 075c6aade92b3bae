"""The foundation slice end to end, on both providers."""

from __future__ import annotations

from sqlalchemy import select

from sandbox.team import EXPECTED_PAIRS
from service.agenda.block import START_MARKER
from service.agenda.models import AgendaRecord
from service.pairs.models import Occurrence
from service.pairs.service import list_series

from .conftest import Harness, ProviderCase


def test_first_sync_finds_exactly_the_seeded_pairs_once_across_both_providers(
        harness: Harness) -> None:
    harness.connect_team()
    harness.sync()
    with harness.session() as session:
        rows = list_series(session, now=harness.clock())
    found = [(r.manager, r.report) for r in rows]
    assert sorted(found) == sorted(EXPECTED_PAIRS)  # each pair once, cross-provider included


def test_first_sync_writes_an_agenda_into_the_next_occurrence(harness: Harness,
                                                              case: ProviderCase) -> None:
    harness.connect(case.manager)
    harness.connect(case.report)
    harness.sync()
    sandbox = harness.sandbox(case.provider)
    upcoming = [s for s in sandbox.occurrence_starts(case.series_key, until=harness.horizon_end())
                if s > harness.clock()]
    assert upcoming, "the seeded series has an occurrence within the horizon"
    text = sandbox.description_of(case.manager, case.series_key, upcoming[0])
    assert START_MARKER in text.replace("&nbsp;", " ")
    with harness.session() as session:
        written = session.scalars(
            select(Occurrence.original_start)
            .join(AgendaRecord, AgendaRecord.occurrence_id == Occurrence.id)
            .where(AgendaRecord.written_hash.is_not(None))).all()
    assert upcoming[0] in written
