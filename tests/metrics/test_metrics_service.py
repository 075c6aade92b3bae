"""Metrics over the database: windows in the manager's zone, roll-up, snapshots, JSON."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.metrics.models import MetricSnapshot
from service.metrics.reports import compute_manager
from service.metrics.serialisers import report_json
from service.metrics.snapshots import recompute_snapshots
from tests.metrics.conftest import History, utc

NOW = utc(2026, 3, 23, 12)  # Monday of 2026-W13


def _team(history: History) -> tuple[int, int, int]:
    manager = history.person("maya@example.com", tz="Europe/Berlin", name="Maya Chen")
    steady = history.person("sam@example.com", name="Sam Ortiz")
    shaky = history.person("lee@example.com", name="Lee Park")
    p1 = history.pair(manager, steady)
    p2 = history.pair(manager, shaky)
    s1 = history.series(p1, key="s1")
    history.occurrences(s1, utc(2025, 12, 30, 9), ["held"] * 12 + [None])
    # Lee's pair moved from Google to Microsoft: two series, one history.
    g = history.series(p2, key="google-lee")
    m = history.series(p2, key="graph-lee")
    history.occurrences(g, utc(2025, 12, 31, 15),
                        ["held", "cancelled_no_reschedule", "held", "series_ended"])
    history.occurrences(m, utc(2026, 1, 28, 15), ["held", "declined_by_report",
                                                  "cancelled_no_reschedule", "rescheduled",
                                                  "held", "cancelled_no_reschedule",
                                                  "cancelled_no_reschedule",
                                                  "cancelled_no_reschedule"])
    return manager, p1, p2


def test_manager_report_rolls_up_pairs_and_puts_attention_first(
        factory: sessionmaker[Session], history: History) -> None:
    manager, p1, p2 = _team(history)
    with factory() as session:
        report = compute_manager(session, manager_id=manager, now=NOW, weeks=12)
    assert report.weeks[-1] == "2026-W13" and len(report.weeks) == 12
    assert [p.pair_id for p in report.pairs] == [p2, p1]
    lee, sam = report.pairs
    assert lee.needs_attention and not sam.needs_attention
    assert lee.reasons[0] == "long_gap"
    assert "Lee Park" in (lee.suggestion or "")
    assert sam.metrics.counts.pending == 1
    total = lee.metrics.counts + sam.metrics.counts
    assert report.counts == total
    assert report.consistency == total.took_place / total.eligible


def test_json_is_stable_and_documented(factory: sessionmaker[Session],
                                       history: History) -> None:
    manager, _, p2 = _team(history)
    with factory() as session:
        data = report_json(compute_manager(session, manager_id=manager, now=NOW))
    assert data["version"] == 1
    assert set(data) == {"version", "manager", "weeks", "totals", "pairs"}
    first = data["pairs"][0]
    assert first["pair_id"] == p2
    assert set(first) >= {"counts", "consistency", "streak", "gap", "balance", "strip",
                          "needs_attention", "reasons", "suggestion", "action_items_closed"}
    assert len(first["strip"]) == 12
    assert {s["state"] for s in first["strip"]} <= {"held", "rescheduled", "dropped", "none",
                                                     "pending"}


def test_balance_and_action_items_come_from_agendas_and_items(
        factory: sessionmaker[Session], history: History) -> None:
    manager = history.person("m@example.com")
    report = history.person("r@example.com")
    pair = history.pair(manager, report)
    series = history.series(pair, key="s")
    occ = history.occurrences(series, utc(2026, 3, 2, 9), ["held", "held", "held"])
    history.agenda(pair, occ[0], kind="regular", areas=["growth", "productivity"])
    history.agenda(pair, occ[1], kind="core", areas=["growth"])
    history.agenda(pair, occ[2], kind="regular", areas=["motivation"])
    history.action_item(pair, closed_at=utc(2026, 3, 10))
    history.action_item(pair, closed_at=None)
    history.action_item(pair, closed_at=utc(2024, 1, 1))
    with factory() as session:
        m = compute_manager(session, manager_id=manager, now=NOW).pairs[0]
    assert m.metrics.balance.areas == {"growth": 2, "communication": 0, "productivity": 1,
                                       "motivation": 1}
    assert m.metrics.balance.kinds["regular"] == 2
    assert m.metrics.action_items_closed == 1
    assert m.reasons == ("missing_area",)


def test_snapshot_recompute_is_idempotent(factory: sessionmaker[Session],
                                          history: History) -> None:
    manager, p1, _ = _team(history)
    with factory.begin() as session:
        first = recompute_snapshots(session, now=NOW, since=utc(2025, 12, 29).date())
    with factory.begin() as session:
        again = recompute_snapshots(session, now=NOW, since=utc(2025, 12, 29).date())
    assert first == again == 2 * 13
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(MetricSnapshot)) == 26
        rows = session.scalars(select(MetricSnapshot).where(MetricSnapshot.pair_id == p1)
                               .order_by(MetricSnapshot.week_start)).all()
    assert rows[0].iso_week == "2026-W01" and rows[0].time_zone == "Europe/Berlin"
    assert sum(r.held for r in rows) == 12 and rows[-1].pending == 1
    # A changed outcome is picked up by the next recompute, still one row per week.
    from service.pairs.models import Occurrence
    with factory.begin() as session:
        occ = session.scalars(select(Occurrence).order_by(Occurrence.original_start)).first()
        assert occ is not None
        occ.outcome = "cancelled_no_reschedule"
        recompute_snapshots(session, now=NOW, since=(NOW - timedelta(weeks=12)).date())
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(MetricSnapshot)) == 26
