"""Incremental weekly snapshots: the digest and the page read them and give the figures a full
recompute gives, on a varied history and after late changes to past weeks."""

from __future__ import annotations

import importlib
from datetime import datetime, timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from service.agenda.models import ActionItem, AgendaRecord
from service.metrics import definitions as d
from service.metrics.models import MetricChange, MetricSnapshot
from service.metrics.reports import ManagerReport, compute_manager
from service.metrics.snapshots import HORIZON_WEEKS, Refreshed, refresh_snapshots
from service.pairs.models import Occurrence, Series
from service.people.models import Person
from service.people.zones import zone_of
from tests.metrics.conftest import History, utc
from tests.statements import statements

# Thursday after both DST ends (Berlin 25 Oct, New York 1 Nov): the windows span them
NOW = utc(2026, 11, 5, 15)
OUTCOMES = ["held", "moved", "rescheduled", "cancelled_no_reschedule", "held",
            "declined_by_report", "held", "declined_by_manager", "series_ended", "unknown",
            "held", "held", None, "held", None]


def _seed(history: History) -> dict[str, int]:
    """Four managers in four zones; moves across week boundaries, a split series whose
    cadence goes from weekly to fortnightly, pending outcomes, agendas and closed items."""
    ids: dict[str, int] = {}
    zones = {"berlin": "Europe/Berlin", "ny": "America/New_York",
             "akl": "Pacific/Auckland", "utc": "UTC"}
    for m, (name, tz) in enumerate(zones.items()):
        manager = history.person(f"{name}@acme.test", tz=tz, name=name.title())
        ids[name] = manager
        for r in range(3):
            report = history.person(f"{name}-r{r}@acme.test")
            pair = history.pair(manager, report)
            ids[f"{name}-pair{r}"] = pair
            series = history.series(pair, key=f"{name}-{r}")
            first = NOW - timedelta(weeks=14, hours=7 * m + 5 * r)
            outcomes = OUTCOMES[r:] + OUTCOMES[:r]
            occ = history.occurrences(series, first, outcomes, moved_by={
                1: timedelta(days=4), 4: timedelta(days=-3), 7: timedelta(hours=20)})
            for i, occurrence_id in enumerate(occ):
                if i % 3 != 2:
                    history.agenda(pair, occurrence_id, kind=["core", "regular"][i % 2],
                                   areas=[["growth"], ["motivation", "productivity"]][i % 2])
            for weeks_ago in (2, 5, 9, 20):
                history.action_item(pair, closed_at=NOW - timedelta(weeks=weeks_ago, hours=r))
            history.action_item(pair, closed_at=None)
        split = history.series(ids[f"{name}-pair0"], key=f"{name}-split", cadence_days=14)
        history.occurrences(split, NOW - timedelta(weeks=3, hours=2), ["held", "held", None],
                            every=timedelta(days=14))
    return ids


def _same(factory: sessionmaker[Session], managers: list[int], *, now: datetime) -> None:
    """The snapshot read equals the full recompute, for the page and the digest windows."""
    with factory() as session:
        for mid in managers:
            tz = zone_of(session.get(Person, mid).time_zone)  # type: ignore[union-attr]
            for last_week in (None, d.shift_week(d.iso_week_of(now, tz), -1)):
                full = compute_manager(session, manager_id=mid, now=now, last_week=last_week,
                                       snapshots=False)
                read = compute_manager(session, manager_id=mid, now=now, last_week=last_week)
                assert _figures(read) == _figures(full), (mid, last_week)


def _figures(report: ManagerReport) -> object:
    return (report.weeks, report.counts, report.consistency, report.balance,
            report.action_items_closed,
            [(p.pair_id, p.metrics, p.reasons, p.suggestion) for p in report.pairs])


def _catch_up(factory: sessionmaker[Session], *, now: datetime) -> int:
    """Reconciler passes until one finds the change log empty; rows written."""
    written = 0
    for _ in range(20):
        step = refresh_snapshots(factory, now=now)
        written += step.rows
        if step.changes == 0:
            with factory() as session:
                assert session.scalar(select(func.count()).select_from(MetricChange)) == 0
            return written
    raise AssertionError("the change log never drained")


def test_every_trigger_is_in_place_at_head(factory: sessionmaker[Session]) -> None:
    """A later migration that recreates a table (SQLite batch mode) would drop its triggers
    silently and the snapshots would go stale: this fails first."""
    migration = importlib.import_module("service.migrations.versions.0022_incremental_snapshots")
    with factory() as session:
        present = set(session.scalars(text("SELECT name FROM sqlite_master WHERE type='trigger'")))
    assert {f"metric_{name}" for name, *_ in migration.TRIGGERS} <= present


def test_snapshot_read_matches_full_recompute_through_late_changes(
        factory: sessionmaker[Session], history: History) -> None:
    ids = _seed(history)
    managers = [ids[n] for n in ("berlin", "ny", "akl", "utc")]
    _same(factory, managers, now=NOW)  # no rows yet: read from occurrences
    assert _catch_up(factory, now=NOW) == 12 * HORIZON_WEEKS
    with factory() as session:
        stored = session.scalar(select(func.count()).select_from(MetricSnapshot))
    assert stored == 12 * HORIZON_WEEKS
    _same(factory, managers, now=NOW)

    window = (Occurrence.original_start > NOW - timedelta(weeks=10),
              Occurrence.original_start < NOW - timedelta(weeks=1))  # ended weeks, in the window
    with factory.begin() as session:
        past = session.scalars(select(Occurrence).join(Series).where(
            Series.pair_id == ids["berlin-pair1"], *window,
            Occurrence.outcome.in_(sorted(d.DROPPED)))).first()
        assert past is not None
        past.outcome = "rescheduled"  # a late reschedule recorded into a past week
        held = session.scalars(select(Occurrence).join(Series).where(
            Series.pair_id == ids["ny-pair2"], *window, Occurrence.outcome == "held")).first()
        assert held is not None
        held.scheduled_start += timedelta(days=2)  # moved after the fact
        held.outcome = "moved"
        agenda = session.scalars(select(AgendaRecord).join(Occurrence).where(
            AgendaRecord.pair_id == ids["akl-pair0"], *window)).first()
        assert agenda is not None
        agenda.areas = ["communication"]
        session.execute(update(ActionItem).where(ActionItem.pair_id == ids["utc-pair1"],
                                                 ActionItem.closed_at.is_(None))
                        .values(closed_at=NOW - timedelta(weeks=4)))
    _same(factory, managers, now=NOW)  # logged, not applied yet: those pairs read live
    assert 0 < _catch_up(factory, now=NOW) < 4 * HORIZON_WEEKS  # only the weeks that changed
    _same(factory, managers, now=NOW)

    with factory.begin() as session:
        berlin = session.get(Person, ids["berlin"])
        assert berlin is not None
        berlin.time_zone = "Pacific/Honolulu"  # every week of the manager's pairs moves
        split = session.scalars(select(Series).where(Series.series_key == "ny-split")).one()
        split.cadence_days = 21
    _same(factory, managers, now=NOW)
    _catch_up(factory, now=NOW)
    with factory() as session:  # rewritten in the new zone (rows of the old one are not read)
        moved = session.scalar(select(func.count()).select_from(MetricSnapshot).where(
            MetricSnapshot.time_zone == "Pacific/Honolulu"))
    assert moved == 3 * HORIZON_WEEKS
    _same(factory, managers, now=NOW)

    later = NOW + timedelta(days=5)  # Tuesday: the week of NOW has ended everywhere
    _catch_up(factory, now=later)
    with factory() as session:
        weeks = set(session.scalars(select(MetricSnapshot.iso_week).where(
            MetricSnapshot.pair_id == ids["utc-pair0"])))
    assert d.iso_week_of(NOW, zone_of("UTC")) in weeks
    _same(factory, managers, now=later)


def test_digest_window_reads_no_occurrence_rows_once_snapshots_exist(
        factory: sessionmaker[Session], history: History) -> None:
    ids = _seed(history)
    _catch_up(factory, now=NOW)
    last_week = d.shift_week(d.iso_week_of(NOW, zone_of("UTC")), -1)
    with factory() as session, statements(factory) as seen:
        compute_manager(session, manager_id=ids["utc"], now=NOW, last_week=last_week)
    assert seen and not [s for s in seen if "FROM agendas" in s.sql or "FROM action_items" in s.sql]
    # the one statement that reads occurrences is the last meeting before the window
    assert len([s for s in seen if "occurrences" in s.sql]) == 1


def test_a_pass_with_nothing_changed_reads_two_rows_whatever_the_size(
        factory: sessionmaker[Session], history: History) -> None:
    counts: list[list[str]] = []
    for size in (1, 4):
        for _ in range(size):
            _seed_one(history, f"m{len(counts)}-{_}")
        _catch_up(factory, now=NOW)
        with statements(factory) as seen:
            assert refresh_snapshots(factory, now=NOW + timedelta(minutes=1)) == Refreshed(0, 0)
        counts.append([s.sql for s in seen if not s.sql.startswith(("BEGIN", "PRAGMA"))])
    assert len(counts[0]) == len(counts[1]) == 2
    assert all(s.lstrip().startswith("SELECT") for s in counts[1])


def _seed_one(history: History, name: str) -> int:
    """A Berlin pair with 13 weeks of held meetings; its series id."""
    manager = history.person(f"{name}@acme.test", tz="Europe/Berlin")
    pair = history.pair(manager, history.person(f"{name}-r@acme.test"))
    series = history.series(pair, key=name)
    history.occurrences(series, NOW - timedelta(weeks=13), ["held"] * 13)
    return series


def _logged(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(MetricChange)) or 0


def test_changes_naming_no_ended_week_are_consumed_by_the_pass_that_reads_them(
        factory: sessionmaker[Session], history: History) -> None:
    """Most of the log names weeks that have no row to recompute (upcoming meetings synced,
    agendas planned ahead): the pass that reads them consumes them, even after its budget of
    rows went on an earlier change, so none is read twice and a drain ends at an empty log
    (before: they stayed behind the budget, and a drain stopped at the first pass that wrote
    no row, leaving them for every later pass)."""
    series = _seed_one(history, "ahead")
    _catch_up(factory, now=NOW)
    with factory.begin() as session:  # every week of the pair is stale (old and new row)
        session.execute(update(Series).where(Series.id == series).values(cadence_days=14))
    history.occurrences(series, NOW + timedelta(days=1), [None] * 8)  # eight weeks ahead
    assert _logged(factory) == 10
    step = refresh_snapshots(factory, now=NOW, max_rows=HORIZON_WEEKS)
    assert _logged(factory) == 0
    assert step == Refreshed(rows=HORIZON_WEEKS, changes=10)
    assert refresh_snapshots(factory, now=NOW + timedelta(minutes=1)) == Refreshed(0, 0)


def test_changes_to_upcoming_weeks_cost_no_lookup_whatever_their_number(
        factory: sessionmaker[Session], history: History) -> None:
    """A change whose instant is still to come names a week that has not ended (when it
    ends, the pass logs every pair anyway): consuming it reads neither pairs nor rows."""
    seen_by_size = []
    for size in (1, 8):
        series = _seed_one(history, f"s{size}")
        _catch_up(factory, now=NOW)
        history.occurrences(series, NOW + timedelta(days=1), [None] * size)
        with statements(factory) as seen:
            assert refresh_snapshots(factory, now=NOW) == Refreshed(0, size)
        seen_by_size.append([s.sql for s in seen if not s.sql.startswith(("BEGIN", "PRAGMA"))])
    assert len(seen_by_size[0]) == len(seen_by_size[1])
    assert not [s for s in seen_by_size[1] if "pairs" in s or "metric_snapshots" in s]


def test_the_last_meeting_before_a_window_is_found_through_the_pairs_series(
        factory: sessionmaker[Session], history: History) -> None:
    """The gap running into a window starts at the pair's last meeting before it: that read
    goes pair -> series -> (series, start), never through the index of every occurrence by
    outcome (which read every meeting ever held, of every pair: 2.2 s per manager at 1,600
    series)."""
    from service.metrics.queries import load_last_meetings

    series = [_seed_one(history, f"p{i}") for i in range(3)]
    with factory() as session:
        pairs = list(session.scalars(select(Series.pair_id).where(Series.id.in_(series))))
        with statements(factory) as seen:
            last = load_last_meetings(session, pair_ids=pairs, before=NOW)
        assert sorted(last) == sorted(pairs)
        raw = session.connection().connection.driver_connection
        assert raw is not None
        plans = [row[-1] for s in seen if s.sql.lstrip().startswith("SELECT")
                 for row in raw.execute("EXPLAIN QUERY PLAN " + s.sql, s.parameters)]
    reads = [p for p in plans if " occurrences" in p or p.startswith("SEARCH o")]
    assert reads and all("(series_id=?" in p for p in reads), plans
