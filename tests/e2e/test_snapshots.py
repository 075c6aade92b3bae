"""Weekly snapshots on the production parts: the triggers of migration 0022 log what a real
sync and backfill write, the reconciler's pass applies the log, and the digest and the page
read the snapshots with the figures of a full recompute (PostgreSQL + Redis in CI)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from service.metrics.models import MetricChange, MetricSnapshot
from service.metrics.queries import manager_ids
from service.pairs.models import Occurrence, Series
from service.sync.backfill import backfill
from tests.metrics.conftest import History
from tests.metrics.test_snapshots import NOW, _catch_up, _same, _seed
from workers import actors

from .conftest import Harness, ProviderCase


def test_synced_history_is_snapshotted_and_read_back(harness: Harness,
                                                     case: ProviderCase) -> None:
    harness.connect(case.manager)
    harness.sync()
    now = harness.clock()
    backfill(harness.runtime.factory, connectors=harness.runtime.connectors,
             since=(now - timedelta(weeks=14)).date(), now=now)
    factory = harness.runtime.factory
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(MetricChange))  # logged
        managers = manager_ids(session)
    actors.reconcile_snapshots()  # the reconciler's share, on the runtime's database
    _catch_up(factory, now=now)
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(MetricSnapshot))
    _same(factory, managers, now=now)
    with factory.begin() as session:  # a late change into a past week
        occurrence = session.scalars(
            select(Occurrence).join(Series, Series.id == Occurrence.series_id)
            .where(Series.other_email == case.report,
                   Occurrence.original_start < now - timedelta(weeks=2),
                   Occurrence.original_start > now - timedelta(weeks=8))).first()
        assert occurrence is not None
        occurrence.outcome = "cancelled_no_reschedule"
    _same(factory, managers, now=now)
    _catch_up(factory, now=now)
    _same(factory, managers, now=now)


def test_varied_history_matches_full_recompute(harness: Harness) -> None:
    factory = harness.runtime.factory
    ids = _seed(History(factory))
    managers = [ids[n] for n in ("berlin", "ny", "akl", "utc")]
    _catch_up(factory, now=NOW)
    _same(factory, managers, now=NOW)
    _catch_up(factory, now=NOW + timedelta(days=5))
    _same(factory, managers, now=NOW + timedelta(days=5))
