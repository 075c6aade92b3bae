"""Reports: each manager's pairs with their metrics, the roll-up over them, and the advice.

Weeks are ISO weeks in the manager's own time zone: a pair's week is the manager's week.
Every read is one short session the caller owns; `iter_reports` opens one per manager.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from sqlalchemy.orm import Session, sessionmaker

from service.metrics import definitions as d
from service.metrics.queries import (
    load_agendas,
    load_closed_items,
    load_facts,
    load_last_meetings,
    manager_ids,
    manager_pairs,
)
from service.metrics.snapshots import WeekSnapshot, load_snapshots
from service.people.models import Person
from service.people.names import display_name, name_or_address
from service.people.zones import zone_name, zone_of

DEFAULT_WEEKS = d.DEFAULT_WEEKS


def current_week(now: datetime, tz: tzinfo) -> str:
    """The ISO week `now` falls in, locally."""
    return d.iso_week_of(now, tz)


@dataclass(frozen=True)
class PairReport:
    """One report of a manager, with the pair's metrics and what (if anything) to do."""

    pair_id: int
    report_id: int
    report_email: str
    report_name: str
    muted: bool
    metrics: d.PairMetrics
    reasons: tuple[str, ...]
    suggestion: str | None

    @property
    def needs_attention(self) -> bool:
        """True when at least one attention rule fired."""
        return bool(self.reasons)


@dataclass(frozen=True)
class ManagerReport:
    """A manager's pairs (needs-attention first) and the roll-up over them."""

    manager_id: int
    email: str
    name: str  # the name, else the address (for lists and JSON)
    display_name: str | None  # the name only (None: unknown), for greetings
    time_zone: str
    weeks: tuple[str, ...]
    pairs: tuple[PairReport, ...]
    counts: d.Counts
    consistency: float | None
    balance: d.Balance
    action_items_closed: int

    @property
    def attention(self) -> list[PairReport]:
        """The pairs that need attention, in order."""
        return [p for p in self.pairs if p.needs_attention]


def _weeks_text(days: int | None) -> str:
    if days is None:
        return "a while"
    weeks = round(days / 7)
    return f"{days} days" if weeks < 2 else f"{weeks} weeks"


def suggestion_for(name: str, m: d.PairMetrics, reasons: Sequence[str]) -> str | None:
    """One concrete next step for a pair that needs attention, for its most pressing reason."""
    if not reasons:
        return None
    first = reasons[0]
    if first == "no_meetings":
        return (f"None of the planned 1:1s with {name} took place in this period. Book a short "
                "one this week and ask what would make the time worth keeping.")
    if first == "long_gap":
        return (f"You last met {name} {_weeks_text(m.gap.open_days)} ago. Put the next 1:1 "
                "in the calendar now rather than waiting for the series to come round.")
    if first == "dropped_last":
        return (f"The latest 1:1 with {name} was dropped and never moved. Offer a new slot "
                "before the next one, and next time move it instead of cancelling.")
    if first == "low_consistency":
        return (f"Only {m.counts.took_place} of {m.counts.eligible} planned 1:1s with {name} "
                "happened. When a clash comes up, move the meeting to another day instead "
                "of skipping it.")
    if first == "missing_area":
        missing = ", ".join(a.capitalize() for a in m.balance.missing_areas)
        return (f"Recent agendas with {name} never reached {missing}. Open the next 1:1 with "
                "a question from that area.")
    return None


def compute_manager(session: Session, *, manager_id: int, now: datetime,
                    weeks: int = DEFAULT_WEEKS, last_week: str | None = None,
                    snapshots: bool = True) -> ManagerReport:
    """Metrics of every pair of one manager over `weeks` ISO weeks ending with `last_week`.

    `last_week` defaults to the manager's current local week (open occurrences in it are
    pending and count nowhere). Pairs come back needs-attention first. Weeks that have ended
    are read from the snapshots (`service.metrics.snapshots`) and only weeks still running
    from occurrences; a pair with a change not yet applied, or a week without a row, is read
    from occurrences in full. `snapshots=False` always reads occurrences (the full
    recompute the snapshot read must agree with).
    """
    manager = session.get(Person, manager_id)
    if manager is None:
        raise LookupError(f"no person with id {manager_id}")
    tz = zone_of(manager.time_zone)
    last = last_week or current_week(now, tz)
    window = d.weeks_ending(last, max(weeks, 1))
    start, _ = d.week_bounds(window[0], tz)
    _, end = d.week_bounds(window[-1], tz)
    pairs = manager_pairs(session, manager_id=manager_id)
    ids = [p.id for p, _ in pairs]
    ended = [w for w in window if d.week_bounds(w, tz)[1] <= now] if snapshots else []
    stored = load_snapshots(session, pair_ids=ids, weeks=ended, tz=tz)
    live = [p for p in ids if len(stored[p]) < len(ended)]
    read = [p for p in ids if len(stored[p]) == len(ended)]
    metrics = _live_metrics(session, live, window, tz=tz, now=now)
    if read:
        metrics |= _snapshot_metrics(session, read, window, ended, stored, tz=tz, now=now)
    before = load_last_meetings(session, pair_ids=ids, before=start)
    reports = []
    for pair, person in pairs:
        m = metrics[pair.id](before.get(pair.id))
        name = name_or_address(person, person.email)
        reasons = tuple(d.attention_reasons(m))
        reports.append(PairReport(pair.id, person.id, person.email, name, pair.muted, m,
                                  reasons, suggestion_for(name, m, reasons)))
    reports.sort(key=lambda r: (d.attention_key(r.metrics), r.report_email))
    return _roll_up(manager, tz, window, reports)


PairMetricsOf = Callable[[d.OccurrenceFact | None], d.PairMetrics]
"""A pair's metrics given the last meeting before the window (None: there was none)."""


def _window_facts(session: Session, ids: Sequence[int], weeks: Sequence[str], *,
                  tz: tzinfo) -> tuple[dict[int, list[d.OccurrenceFact]],
                                       dict[int, list[d.AgendaFact]], dict[int, list[datetime]]]:
    start, _ = d.week_bounds(weeks[0], tz)
    _, end = d.week_bounds(weeks[-1], tz)
    return (load_facts(session, pair_ids=ids, start=start, end=end),
            load_agendas(session, pair_ids=ids, start=start, end=end),
            load_closed_items(session, pair_ids=ids, start=start, end=end))


def _live_metrics(session: Session, ids: Sequence[int], window: Sequence[str], *,
                  tz: tzinfo, now: datetime) -> dict[int, PairMetricsOf]:
    """Every week of the window from occurrences (today's full recompute)."""
    if not ids:
        return {}
    facts, agendas, closed = _window_facts(session, ids, window, tz=tz)

    def of(pair_id: int) -> PairMetricsOf:
        return lambda anchor: d.pair_metrics(
            facts[pair_id] + ([anchor] if anchor else []), agendas[pair_id], closed[pair_id],
            weeks=window, tz=tz, as_of=now)
    return {p: of(p) for p in ids}


def _snapshot_metrics(session: Session, ids: Sequence[int], window: Sequence[str],
                      ended: Sequence[str], stored: dict[int, dict[str, WeekSnapshot]], *,
                      tz: tzinfo, now: datetime) -> dict[int, PairMetricsOf]:
    """Ended weeks from their snapshot rows, the weeks still running from occurrences."""
    running = list(window[len(ended):])
    if running:
        facts, agendas, closed = _window_facts(session, ids, running, tz=tz)
    run_start = d.week_bounds(running[0], tz)[0] if running else None
    run_end = d.week_bounds(running[-1], tz)[1] if running else None

    def of(pair_id: int) -> PairMetricsOf:
        weeks = [stored[pair_id][w] for w in ended]
        history = [f for w in weeks for f in w.facts]
        balances = [w.balance for w in weeks]
        closed_count = sum(w.action_items_closed for w in weeks)
        if run_start is not None and run_end is not None:
            history += facts[pair_id]
            balances.append(d.balance_coverage(a for a in agendas[pair_id]
                                               if run_start <= a.original_start < run_end))
            closed_count += d.action_items_closed(closed[pair_id], start=run_start,
                                                  end=run_end)
        balance = d.add_balances(balances)
        return lambda anchor: d.metrics_of(history + ([anchor] if anchor else []), balance,
                                           closed_count, weeks=window, tz=tz, as_of=now)
    return {p: of(p) for p in ids}


def _roll_up(manager: Person, tz: tzinfo, window: Sequence[str],
             reports: Sequence[PairReport]) -> ManagerReport:
    counts = sum((r.metrics.counts for r in reports), d.Counts())
    balance = d.add_balances(r.metrics.balance for r in reports)
    return ManagerReport(
        manager_id=manager.id, email=manager.email,
        name=name_or_address(manager, manager.email), display_name=display_name(manager),
        time_zone=zone_name(tz),
        weeks=tuple(window), pairs=tuple(reports), counts=counts,
        consistency=d.consistency_rate(counts), balance=balance,
        action_items_closed=sum(r.metrics.action_items_closed for r in reports),
    )


def iter_reports(factory: sessionmaker[Session], *, now: datetime, weeks: int = DEFAULT_WEEKS,
                 manager_email: str | None = None) -> Iterable[ManagerReport]:
    """Reports one manager at a time, each in its own short session (bounded memory)."""
    with factory() as session:
        ids = manager_ids(session, email=manager_email)
    for mid in ids:
        with factory() as session:
            yield compute_manager(session, manager_id=mid, now=now, weeks=weeks)
