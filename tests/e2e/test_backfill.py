"""`metrics backfill`: history older than the sync window is read from the provider."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from service.pairs.models import Occurrence, Series
from service.sync.backfill import backfill

from .conftest import Harness, ProviderCase


def test_backfill_reads_past_occurrences_and_gives_them_outcomes(harness: Harness,
                                                                 case: ProviderCase) -> None:
    harness.connect(case.manager)
    harness.sync()
    now = harness.clock()
    lookback = now - timedelta(days=harness.settings.sync_lookback_days)

    def stored_before(moment):  # type: ignore[no-untyped-def]
        with harness.session() as session:
            return session.scalar(
                select(func.count()).select_from(Occurrence)
                .join(Series, Series.id == Occurrence.series_id)
                .where(Series.other_email == case.report,
                       Occurrence.original_start < moment)) or 0

    assert stored_before(lookback - timedelta(days=1)) == 0  # the normal sync stops there
    since = (now - timedelta(weeks=9)).date()
    result = backfill(harness.runtime.factory, connectors=harness.runtime.connectors,
                      since=since, now=now)
    assert result.calendars == 1 and not result.failed_calendars
    sandbox = harness.sandbox(case.provider)
    expected = [s for s in sandbox.occurrence_starts(case.series_key, until=lookback)
                if s.date() >= since]
    assert expected and stored_before(lookback) == len(expected)
    with harness.session() as session:
        outcomes = set(session.scalars(
            select(Occurrence.outcome).join(Series, Series.id == Occurrence.series_id)
            .where(Series.other_email == case.report, Occurrence.original_start < lookback)))
    assert outcomes == {"held"}
    again = backfill(harness.runtime.factory, connectors=harness.runtime.connectors,
                     since=since, now=now)
    assert again.outcomes_set == 0 and stored_before(lookback) == len(expected)  # idempotent
