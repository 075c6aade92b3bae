"""Metrics over the database: per pair, per manager, weekly snapshots and the backfill.

Every read here is one short session the caller owns; nothing holds a transaction across
provider HTTP (the backfill commits per page, like the sync does). Weeks are ISO weeks in
the manager's own time zone: a pair's week is the manager's week.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from service.accounts.models import Account, AccountStatus, Person
from service.accounts.names import display_name, name_or_address
from service.agenda.models import ActionItem, AgendaRecord
from service.metrics import definitions as d
from service.metrics.models import MetricSnapshot
from service.pairs.models import Occurrence, Pair, Series

log = logging.getLogger(__name__)

DEFAULT_WEEKS = 12
JSON_VERSION = 1


def zone_of(name: str | None) -> tzinfo:
    """The IANA zone `name`, or UTC when it is unset or unknown (logged, never fatal)."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone %r; using UTC", name)
        return UTC


def zone_name(tz: tzinfo) -> str:
    """A printable name for a zone."""
    return getattr(tz, "key", None) or "UTC"


def current_week(now: datetime, tz: tzinfo) -> str:
    """The ISO week `now` falls in, locally."""
    return d.iso_week_of(now, tz)


# -- loading facts -----------------------------------------------------------------------


def load_facts(session: Session, *, pair_ids: Sequence[int], start: datetime,
               end: datetime) -> dict[int, list[d.OccurrenceFact]]:
    """Occurrences of every series of the pairs planned in [start, end), grouped by pair.

    Every series counts, whichever provider or calendar it came from: a pair that moved
    provider, or whose series was split, keeps one history.
    """
    out: dict[int, list[d.OccurrenceFact]] = {p: [] for p in pair_ids}
    if not pair_ids:
        return out
    rows = session.execute(
        select(Series.pair_id, Occurrence.series_id, Occurrence.original_start,
               Occurrence.scheduled_start, Occurrence.outcome, Series.cadence_days,
               Occurrence.actual_start)
        .join(Series, Series.id == Occurrence.series_id)
        .where(Series.pair_id.in_(pair_ids), Occurrence.original_start >= start,
               Occurrence.original_start < end)
    )
    for pair_id, series_id, original, scheduled, outcome, cadence, actual in rows:
        assert pair_id is not None  # selected by pair
        out[pair_id].append(d.OccurrenceFact(series_id, original, scheduled, outcome, cadence,
                                             actual))
    return out


def load_last_meetings(session: Session, *, pair_ids: Sequence[int],
                       before: datetime) -> dict[int, d.OccurrenceFact]:
    """Per pair, the last occurrence planned before `before` that took place: where the gap
    running into a window starts (one grouped query and one lookup, whatever the history)."""
    if not pair_ids:
        return {}
    took_place = sorted(d.TOOK_PLACE)
    latest = (
        select(Series.pair_id.label("pair_id"),
               func.max(Occurrence.original_start).label("original_start"))
        .join(Series, Series.id == Occurrence.series_id)
        .where(Series.pair_id.in_(pair_ids), Occurrence.original_start < before,
               Occurrence.outcome.in_(took_place))
        .group_by(Series.pair_id).subquery())
    rows = session.execute(
        select(Series.pair_id, Occurrence.series_id, Occurrence.original_start,
               Occurrence.scheduled_start, Occurrence.outcome, Series.cadence_days,
               Occurrence.actual_start)
        .join(Series, Series.id == Occurrence.series_id)
        .join(latest, (latest.c.pair_id == Series.pair_id)
              & (latest.c.original_start == Occurrence.original_start))
        .where(Occurrence.outcome.in_(took_place)))
    out: dict[int, d.OccurrenceFact] = {}
    for pair_id, series_id, original, scheduled, outcome, cadence, actual in rows:
        assert pair_id is not None  # joined by pair
        out.setdefault(pair_id, d.OccurrenceFact(series_id, original, scheduled, outcome,
                                                 cadence, actual))
    return out


def load_agendas(session: Session, *, pair_ids: Sequence[int], start: datetime,
                 end: datetime) -> dict[int, list[d.AgendaFact]]:
    """Agendas planned for the pairs' occurrences in [start, end), grouped by pair."""
    out: dict[int, list[d.AgendaFact]] = {p: [] for p in pair_ids}
    if not pair_ids:
        return out
    rows = session.execute(
        select(AgendaRecord.pair_id, Occurrence.original_start, AgendaRecord.kind,
               AgendaRecord.areas)
        .join(Occurrence, Occurrence.id == AgendaRecord.occurrence_id)
        .where(AgendaRecord.pair_id.in_(pair_ids), Occurrence.original_start >= start,
               Occurrence.original_start < end)
    )
    for pair_id, original, kind, areas in rows:
        out[pair_id].append(d.AgendaFact(original, kind or "", tuple(areas or ())))
    return out


def load_closed_items(session: Session, *, pair_ids: Sequence[int], start: datetime,
                      end: datetime) -> dict[int, list[datetime]]:
    """`closed_at` of the pairs' action items closed in [start, end)."""
    out: dict[int, list[datetime]] = {p: [] for p in pair_ids}
    if not pair_ids:
        return out
    rows = session.execute(
        select(ActionItem.pair_id, ActionItem.closed_at)
        .where(ActionItem.pair_id.in_(pair_ids), ActionItem.closed_at >= start,
               ActionItem.closed_at < end)
    )
    for pair_id, closed in rows:
        assert closed is not None  # filtered on closed_at
        out[pair_id].append(closed)
    return out


# -- per pair and per manager ------------------------------------------------------------


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


def _manager_pairs(session: Session, manager_id: int) -> list[tuple[Pair, Person]]:
    rows = session.execute(
        select(Pair, Person).join(Person, Person.id == Pair.report_id)
        .where(Pair.manager_id == manager_id).order_by(Person.email))
    return [(pair, person) for pair, person in rows]


def compute_manager(session: Session, *, manager_id: int, now: datetime,
                    weeks: int = DEFAULT_WEEKS, last_week: str | None = None) -> ManagerReport:
    """Metrics of every pair of one manager over `weeks` ISO weeks ending with `last_week`.

    `last_week` defaults to the manager's current local week (open occurrences in it are
    pending and count nowhere). Pairs come back needs-attention first.
    """
    manager = session.get(Person, manager_id)
    if manager is None:
        raise LookupError(f"no person with id {manager_id}")
    tz = zone_of(manager.time_zone)
    last = last_week or current_week(now, tz)
    window = d.weeks_ending(last, max(weeks, 1))
    start, _ = d.week_bounds(window[0], tz)
    _, end = d.week_bounds(window[-1], tz)
    pairs = _manager_pairs(session, manager_id)
    ids = [p.id for p, _ in pairs]
    facts = load_facts(session, pair_ids=ids, start=start, end=end)
    before = load_last_meetings(session, pair_ids=ids, before=start)
    agendas = load_agendas(session, pair_ids=ids, start=start, end=end)
    closed = load_closed_items(session, pair_ids=ids, start=start, end=end)
    reports = []
    for pair, person in pairs:
        history = facts[pair.id] + ([before[pair.id]] if pair.id in before else [])
        m = d.pair_metrics(history, agendas[pair.id], closed[pair.id], weeks=window,
                           tz=tz, as_of=now)
        name = name_or_address(person, person.email)
        reasons = tuple(d.attention_reasons(m))
        reports.append(PairReport(pair.id, person.id, person.email, name, pair.muted, m,
                                  reasons, suggestion_for(name, m, reasons)))
    reports.sort(key=lambda r: (d.attention_key(r.metrics), r.report_email))
    return _roll_up(manager, tz, window, reports)


def _roll_up(manager: Person, tz: tzinfo, window: Sequence[str],
             reports: Sequence[PairReport]) -> ManagerReport:
    counts = sum((r.metrics.counts for r in reports), d.Counts())
    areas: dict[str, int] = defaultdict(int)
    kinds: dict[str, int] = defaultdict(int)
    for r in reports:
        for k, v in r.metrics.balance.areas.items():
            areas[k] += v
        for k, v in r.metrics.balance.kinds.items():
            kinds[k] += v
    balance = d.Balance(sum(r.metrics.balance.agendas for r in reports), dict(areas),
                        dict(kinds))
    return ManagerReport(
        manager_id=manager.id, email=manager.email,
        name=name_or_address(manager, manager.email), display_name=display_name(manager),
        time_zone=zone_name(tz),
        weeks=tuple(window), pairs=tuple(reports), counts=counts,
        consistency=d.consistency_rate(counts), balance=balance,
        action_items_closed=sum(r.metrics.action_items_closed for r in reports),
    )


def manager_ids(session: Session, *, email: str | None = None) -> list[int]:
    """Every person who manages at least one pair (or the one with `email`)."""
    query = select(Pair.manager_id).distinct()
    if email:
        query = query.join(Person, Person.id == Pair.manager_id).where(
            func.lower(Person.email) == email.strip().lower())
    return sorted(session.scalars(query))


def compute_all(session: Session, *, now: datetime, weeks: int = DEFAULT_WEEKS,
                manager_email: str | None = None) -> list[ManagerReport]:
    """Reports of every manager (or one), each over their own local weeks."""
    return [compute_manager(session, manager_id=m, now=now, weeks=weeks)
            for m in manager_ids(session, email=manager_email)]


# -- stable JSON -------------------------------------------------------------------------


def _counts_json(c: d.Counts) -> dict[str, int]:
    return {"scheduled": c.scheduled, "held": c.held, "moved": c.moved,
            "rescheduled": c.rescheduled, "cancelled_no_reschedule": c.cancelled,
            "declined": c.declined, "declined_by_report": c.declined_by_report,
            "declined_by_manager": c.declined_by_manager, "series_ended": c.series_ended,
            "unknown": c.unknown, "pending": c.pending}


def _rate(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def report_json(report: ManagerReport) -> dict[str, Any]:
    """The documented, stable JSON of one manager (version 1; fields are only ever added).

    ``{"version", "manager": {"id", "email", "name", "time_zone"}, "weeks": [...],
    "totals": {counts..., "consistency", "action_items_closed", "balance"},
    "pairs": [{"pair_id", "report": {...}, "counts", "consistency", "streak": {"current",
    "longest"}, "gap": {"longest_days", "worst_vs_cadence", "open_days", "cadence_days"},
    "balance": {"agendas", "areas", "kinds"}, "action_items_closed", "strip": [{"week",
    "state"}], "needs_attention", "reasons", "suggestion"}]}``. Rates are 0..1 or null.
    """
    def balance(b: d.Balance) -> dict[str, Any]:
        return {"agendas": b.agendas, "areas": dict(sorted(b.areas.items())),
                "kinds": dict(sorted(b.kinds.items()))}

    return {
        "version": JSON_VERSION,
        "manager": {"id": report.manager_id, "email": report.email, "name": report.name,
                    "time_zone": report.time_zone},
        "weeks": list(report.weeks),
        "totals": {**_counts_json(report.counts), "consistency": _rate(report.consistency),
                   "action_items_closed": report.action_items_closed,
                   "balance": balance(report.balance)},
        "pairs": [{
            "pair_id": p.pair_id,
            "report": {"id": p.report_id, "email": p.report_email, "name": p.report_name},
            "muted": p.muted,
            "counts": _counts_json(p.metrics.counts),
            "consistency": _rate(p.metrics.consistency),
            "streak": {"current": p.metrics.streak_current,
                       "longest": p.metrics.streak_longest},
            "gap": {"longest_days": p.metrics.gap.days,
                    "worst_vs_cadence": p.metrics.gap.ratio,
                    "open_days": p.metrics.gap.open_days,
                    "cadence_days": p.metrics.gap.cadence_days},
            "balance": balance(p.metrics.balance),
            "action_items_closed": p.metrics.action_items_closed,
            "strip": [{"week": w, "state": s} for w, s in p.metrics.strip],
            "needs_attention": p.needs_attention,
            "reasons": list(p.reasons),
            "suggestion": p.suggestion,
        } for p in report.pairs],
    }


# -- weekly snapshots --------------------------------------------------------------------


def _upsert_for(dialect: str) -> Any:
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"snapshots need SQLite or PostgreSQL, not {dialect}")


def recompute_snapshots(session: Session, *, now: datetime, since: date | None = None,
                        until_week: str | None = None, manager_id: int | None = None,
                        weeks: int = DEFAULT_WEEKS) -> int:
    """Write (or overwrite) one snapshot per pair and ISO week; returns rows written.

    Idempotent: the same history gives the same rows (INSERT ... ON CONFLICT (pair, week)
    DO UPDATE). Weeks run from `since` (or `weeks` back) to `until_week` (default: the
    manager's current week), in each manager's time zone. The caller commits.
    """
    insert = _upsert_for(session.get_bind().dialect.name)
    written = 0
    for mid in ([manager_id] if manager_id else manager_ids(session)):
        manager = session.get(Person, mid)
        if manager is None:
            continue
        tz = zone_of(manager.time_zone)
        last = until_week or current_week(now, tz)
        if since is not None:
            first = d.iso_week_of(datetime(since.year, since.month, since.day, tzinfo=tz), tz)
            count = (d.week_monday(last) - d.week_monday(first)).days // 7 + 1
        else:
            count = weeks
        if count <= 0:
            continue
        window = d.weeks_ending(last, count)
        start, _ = d.week_bounds(window[0], tz)
        _, end = d.week_bounds(window[-1], tz)
        ids = [p.id for p, _ in _manager_pairs(session, mid)]
        facts = load_facts(session, pair_ids=ids, start=start, end=end)
        agendas = load_agendas(session, pair_ids=ids, start=start, end=end)
        closed = load_closed_items(session, pair_ids=ids, start=start, end=end)
        rows = []
        for pair_id in ids:
            weekly = d.counts_by_week(facts[pair_id], window, tz)
            agendas_by_week: dict[str, list[d.AgendaFact]] = defaultdict(list)
            for a in agendas[pair_id]:
                agendas_by_week[d.iso_week_of(a.original_start, tz)].append(a)
            closed_by_week: dict[str, int] = defaultdict(int)
            for at in closed[pair_id]:
                closed_by_week[d.iso_week_of(at, tz)] += 1
            for week in window:
                c = weekly[week]
                b = d.balance_coverage(agendas_by_week.get(week, ()))
                rows.append({
                    "pair_id": pair_id, "iso_week": week,
                    "week_start": d.week_bounds(week, tz)[0], "time_zone": zone_name(tz),
                    "scheduled": c.scheduled, "held": c.held, "moved": c.moved,
                    "rescheduled": c.rescheduled, "cancelled": c.cancelled,
                    "declined_by_report": c.declined_by_report,
                    "declined_by_manager": c.declined_by_manager,
                    "series_ended": c.series_ended, "unknown": c.unknown,
                    "pending": c.pending, "agendas": b.agendas, "areas": b.areas,
                    "kinds": b.kinds, "action_items_closed": closed_by_week.get(week, 0),
                    "computed_at": now,
                })
        for chunk_start in range(0, len(rows), 500):
            chunk = rows[chunk_start:chunk_start + 500]
            stmt = insert(MetricSnapshot).values(chunk)
            updated = {k: getattr(stmt.excluded, k) for k in chunk[0]
                       if k not in ("pair_id", "iso_week")}
            session.execute(stmt.on_conflict_do_update(
                index_elements=[MetricSnapshot.pair_id, MetricSnapshot.iso_week],
                set_=updated))
        written += len(rows)
    return written


def snapshot_trend(session: Session, *, pair_id: int, since_week: str | None = None
                   ) -> list[tuple[str, d.Counts]]:
    """Stored weekly counts of one pair, oldest first: the long trend without a recompute."""
    query = select(MetricSnapshot).where(MetricSnapshot.pair_id == pair_id)
    if since_week:
        query = query.where(MetricSnapshot.iso_week >= since_week)
    return [(s.iso_week, d.Counts(
        scheduled=s.scheduled, held=s.held, moved=s.moved, rescheduled=s.rescheduled,
        cancelled=s.cancelled, declined_by_report=s.declined_by_report,
        declined_by_manager=s.declined_by_manager, series_ended=s.series_ended,
        unknown=s.unknown, pending=s.pending))
        for s in session.scalars(query.order_by(MetricSnapshot.week_start))]


# -- backfill ----------------------------------------------------------------------------


@dataclass
class BackfillResult:
    """What a backfill read and recorded."""

    calendars: int = 0
    events: int = 0
    skipped: int = 0
    outcomes_set: int = 0
    snapshots: int = 0
    failed_calendars: tuple[str, ...] = ()


def historical_outcome(occurrence: Occurrence) -> str:
    """A conservative outcome for an old occurrence the outcomes module never judged.

    A confirmed occurrence that a side declined counts as declined by that side; otherwise
    a confirmed one counts as held. A cancelled one is `unknown`: without the
    reschedule search of that time we cannot tell a reschedule from a drop, and guessing
    "dropped" would blame a manager for history we cannot see.
    """
    if occurrence.status == "cancelled":
        return d.UNKNOWN
    if (occurrence.report_response or "").lower() == "declined":
        return d.DECLINED_BY_REPORT
    if (occurrence.manager_response or "").lower() == "declined":
        return d.DECLINED_BY_MANAGER
    return d.HELD


def backfill(factory: sessionmaker[Session], *, connectors: Any, since: date,
             now: datetime, grace: timedelta = timedelta(days=14)) -> BackfillResult:
    """Read past occurrences from the providers back to `since`, then rebuild snapshots.

    Goes through the normal sync path with a wider window: each active calendar's
    connector `list_changes(cursor=None, window_start=since, window_end=now)`, every page
    applied by `CalendarApplier` and committed (no transaction across HTTP). The calendar's
    own sync cursor and window are left alone, so incremental sync carries on unchanged.
    Outcomes are the outcomes module's job; only occurrences that ended more than `grace`
    ago and that it still left undecided get `historical_outcome`, so recent ones keep their
    proper reschedule check. Then snapshots are recomputed from `since`.
    """
    from service.calendars.apply import ApplyResult
    from service.calendars.models import Calendar
    from service.calendars.sync import apply_page, settle_series

    result = BackfillResult()
    window_start = datetime(since.year, since.month, since.day, tzinfo=UTC)
    with factory() as session:
        calendars = [(cid, pcid) for cid, pcid in session.execute(
            select(Calendar.id, Calendar.provider_calendar_id)
            .join(Account, Account.id == Calendar.account_id)
            .where(Account.status == AccountStatus.ACTIVE).order_by(Calendar.id))]
    failed = []
    touched: set[int] = set()
    for calendar_id, provider_calendar_id in calendars:
        connector = connectors.for_calendar(calendar_id)
        applied = ApplyResult()
        try:
            pages = connector.list_changes(provider_calendar_id, None,
                                           window_start=window_start, window_end=now)
            for page in pages:
                with factory() as session:
                    cal = session.get(Calendar, calendar_id)
                    assert cal is not None
                    apply_page(session, cal, page, result=applied, now=now)
                    session.commit()
        except Exception as err:  # noqa: BLE001 - one calendar failing must not stop the rest
            log.warning("backfill: calendar %s failed: %s", calendar_id,
                        err.__class__.__name__)
            failed.append(str(calendar_id))
            continue
        result.calendars += 1
        result.events += applied.events
        result.skipped += applied.skipped
        touched |= applied.series_touched
    with factory.begin() as session:
        settle_series(session, touched, now)
        undecided = session.scalars(
            select(Occurrence).join(Series, Series.id == Occurrence.series_id)
            .where(Series.pair_id.is_not(None), Occurrence.outcome.is_(None),
                   Occurrence.original_start >= window_start,
                   Occurrence.scheduled_end < now - grace))
        for occurrence in undecided:
            occurrence.outcome = historical_outcome(occurrence)
            occurrence.outcome_decided_at = now
            result.outcomes_set += 1
    with factory.begin() as session:
        result.snapshots = recompute_snapshots(session, now=now, since=since)
    result.failed_calendars = tuple(failed)
    return result


def iter_reports(factory: sessionmaker[Session], *, now: datetime, weeks: int = DEFAULT_WEEKS,
                 manager_email: str | None = None) -> Iterable[ManagerReport]:
    """Reports one manager at a time, each in its own short session (bounded memory)."""
    with factory() as session:
        ids = manager_ids(session, email=manager_email)
    for mid in ids:
        with factory() as session:
            yield compute_manager(session, manager_id=mid, now=now, weeks=weeks)
