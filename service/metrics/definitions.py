"""Every metric Rapport reports, defined once, as pure functions over plain facts.

Nothing here touches the database or the clock: `queries.py` loads `OccurrenceFact`s and
`AgendaFact`s for a window and hands them in, so each definition can be tested on a history
written by hand.

Which occurrences count
-----------------------
An occurrence belongs to the window (and to the ISO week) of its **original start**: the slot
the series planned, read in the manager's time zone. A meeting that was moved from Friday to
the next Monday still counts for the week it was planned in, so moving never creates an empty
week. Occurrences whose outcome is still open (`None`: in the future, or inside the grace
period before the cancellations check decides) are **pending** and count nowhere.

Outcomes (`Outcome` of `service/outcomes/state.py`, stored in `Occurrence.outcome`):

=========================== ============ ===================================================
outcome                     bucket       meaning
=========================== ============ ===================================================
held                        took place   happened at the planned time
moved                       took place   happened, at another time of the series
rescheduled                 took place   cancelled, and a replacement meeting was found
cancelled_no_reschedule     dropped      cancelled and nothing replaced it
declined_by_report          dropped      the report declined and it did not happen
declined_by_manager         dropped      the manager declined and it did not happen
series_ended                excluded     the series was ended or replaced (e.g. moved to
                                         the other provider); not a dropped 1:1
unknown                     excluded     Rapport could not tell (data missing)
=========================== ============ ===================================================

Consistency rate (written down once, here)::

    consistency = (held + moved + rescheduled) / (scheduled - series_ended - unknown)

where *scheduled* is every decided occurrence in the window. Slots lost to an ended series and
slots we cannot judge neither help nor hurt; a moved meeting counts as held because it took
place, and a rescheduled one counts because rescheduling is exactly the behaviour the product
asks for ("never cancel, always reschedule"). With no eligible slot the rate is `None`
(not 0 and not 1: there is nothing to judge).
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

from service.agenda.questions import Area, Kind
from service.pairs.models import Outcome

OUTCOMES = tuple(Outcome)
TOOK_PLACE = frozenset({Outcome.HELD, Outcome.MOVED, Outcome.RESCHEDULED})
DROPPED = frozenset({Outcome.CANCELLED_NO_RESCHEDULE, Outcome.DECLINED_BY_REPORT,
                     Outcome.DECLINED_BY_MANAGER})
EXCLUDED = frozenset({Outcome.SERIES_ENDED, Outcome.UNKNOWN})

AREAS = tuple(Area)
KINDS = tuple(Kind)

DEFAULT_WEEKS = 12  # the window of the digest and the page, in ISO weeks
DEFAULT_CADENCE_DAYS = 7
ATTENTION_CONSISTENCY = 0.75  # below this share of slots taking place, a pair needs attention
ATTENTION_GAP_RATIO = 2.0  # an open gap of two planned intervals or more needs attention
MIN_AGENDAS_FOR_BALANCE = 3  # judge Balance coverage only over this many agendas


@dataclass(frozen=True)
class OccurrenceFact:
    """What the metrics need of one occurrence (all datetimes aware)."""

    series_id: int
    original_start: datetime
    scheduled_start: datetime
    outcome: str | None
    cadence_days: int | None = None  # the planned cadence of the occurrence's series

    @property
    def met_at(self) -> datetime:
        """When the meeting took place: its scheduled start (where a move put it)."""
        return self.scheduled_start


def planned_order(fact: OccurrenceFact) -> tuple[datetime, int]:
    """Facts in planned order; two series planned at the same instant go by series id, so the
    order never depends on how rows came out of the database (or a snapshot)."""
    return fact.original_start, fact.series_id


def met_order(fact: OccurrenceFact) -> tuple[datetime, int]:
    """Meetings in the order they took place, ties by series id (see `planned_order`)."""
    return fact.met_at, fact.series_id


@dataclass(frozen=True)
class AgendaFact:
    """One agenda Rapport planned: the kind of 1:1 and the Balance areas it covered."""

    original_start: datetime
    kind: str
    areas: tuple[str, ...]


@dataclass(frozen=True)
class Counts:
    """Occurrence counts by outcome bucket; adding two gives the roll-up."""

    scheduled: int = 0
    held: int = 0
    moved: int = 0
    rescheduled: int = 0
    cancelled: int = 0
    declined_by_report: int = 0
    declined_by_manager: int = 0
    series_ended: int = 0
    unknown: int = 0
    pending: int = 0

    @property
    def declined(self) -> int:
        """Occurrences that did not happen because one side declined."""
        return self.declined_by_report + self.declined_by_manager

    @property
    def took_place(self) -> int:
        """Occurrences that happened: held, moved or rescheduled."""
        return self.held + self.moved + self.rescheduled

    @property
    def dropped(self) -> int:
        """Occurrences that did not happen and were not replaced."""
        return self.cancelled + self.declined

    @property
    def eligible(self) -> int:
        """The consistency denominator: scheduled minus series_ended minus unknown."""
        return self.scheduled - self.series_ended - self.unknown

    def __add__(self, other: Counts) -> Counts:
        return Counts(**{name: getattr(self, name) + getattr(other, name)
                         for name in self.__dataclass_fields__})


def count_outcomes(facts: Iterable[OccurrenceFact]) -> Counts:
    """Count occurrences per outcome; *scheduled* is every decided one, pending ones apart.

    An outcome outside the vocabulary is counted as unknown, so a newer writer never makes
    the metrics fail.
    """
    tally: Counter[str | None] = Counter()
    for fact in facts:
        tally[fact.outcome if fact.outcome in OUTCOMES or fact.outcome is None
          else Outcome.UNKNOWN] += 1
    pending = tally.pop(None, 0)
    return Counts(
        scheduled=sum(tally.values()),
        held=tally[Outcome.HELD],
        moved=tally[Outcome.MOVED],
        rescheduled=tally[Outcome.RESCHEDULED],
        cancelled=tally[Outcome.CANCELLED_NO_RESCHEDULE],
        declined_by_report=tally[Outcome.DECLINED_BY_REPORT],
        declined_by_manager=tally[Outcome.DECLINED_BY_MANAGER],
        series_ended=tally[Outcome.SERIES_ENDED],
        unknown=tally[Outcome.UNKNOWN],
        pending=pending,
    )


def consistency_rate(counts: Counts) -> float | None:
    """(held + moved + rescheduled) / (scheduled - series_ended - unknown); None when 0/0."""
    if counts.eligible <= 0:
        return None
    return counts.took_place / counts.eligible


def _judged(facts: Iterable[OccurrenceFact]) -> list[OccurrenceFact]:
    """Decided occurrences that count for streaks, in planned order (excluded ones skipped)."""
    return sorted((f for f in facts if f.outcome is not None and f.outcome not in EXCLUDED
                   and (f.outcome in TOOK_PLACE or f.outcome in DROPPED)),
                  key=planned_order)


def streaks(facts: Iterable[OccurrenceFact]) -> tuple[int, int]:
    """(current, longest) run of consecutive planned occurrences that took place.

    Held, moved and rescheduled extend a run; cancelled-without-reschedule and declined end
    it; series_ended, unknown and pending are skipped (they neither extend nor end a run).
    *Current* is the run that reaches the most recent decided occurrence.
    """
    current = longest = 0
    for fact in _judged(facts):
        current = current + 1 if fact.outcome in TOOK_PLACE else 0
        longest = max(longest, current)
    return current, longest


@dataclass(frozen=True)
class Gap:
    """The longest stretch without a 1:1, in local calendar days, against the plan."""

    days: int | None  # longest gap in days (None: the pair never met in the window)
    ratio: float | None  # the worst gap / planned cadence (1.0 = on plan)
    open_days: int | None  # days since the last meeting, up to `as_of`
    cadence_days: int | None  # the planned cadence in force at the end of the window


def local_days(a: datetime, b: datetime, tz: tzinfo) -> int:
    """Calendar days from a to b as seen in `tz`: DST never turns a week into 6.96 days."""
    return (b.astimezone(tz).date() - a.astimezone(tz).date()).days


def planned_cadence(facts: Sequence[OccurrenceFact]) -> int:
    """The cadence of the series of the latest fact, else the spacing of planned slots, else 7."""
    ordered = sorted(facts, key=planned_order)
    for fact in reversed(ordered):
        if fact.cadence_days:
            return fact.cadence_days
    starts = [f.original_start for f in ordered]
    spacing = [round((b - a).total_seconds() / 86400) for a, b in itertools.pairwise(starts)]
    spacing = [s for s in spacing if s > 0]
    return int(statistics.median(spacing)) if spacing else DEFAULT_CADENCE_DAYS


def longest_gap(facts: Sequence[OccurrenceFact], *, as_of: datetime,
                tz: tzinfo = UTC) -> Gap:
    """Longest gap between meetings that took place, and the worst gap against the cadence.

    Gaps run between consecutive meetings that took place (at `met_at`), plus the open gap
    from the last one to `as_of`. `facts` may start with the last meeting before the window
    (see `pair_metrics`), so a stretch that runs into the window counts in full: the number
    does not depend on where a window happens to start. A gap between two meetings is
    compared with the cadence of their series (the longer one when the gap spans a change of
    series: a pair that went from weekly to fortnightly is on plan with a 14-day gap at the
    switch); the open gap with the cadence in force now. Providers split a series whose
    cadence changes, so each series has one cadence. Days are local calendar days in `tz`.
    """
    cadence_now = planned_cadence(facts) if facts else None
    met = sorted((f for f in facts if f.outcome in TOOK_PLACE), key=met_order)
    if not met:
        return Gap(days=None, ratio=None, open_days=None, cadence_days=cadence_now)
    worst_days = 0
    worst_ratio = 0.0
    fallback = cadence_now or DEFAULT_CADENCE_DAYS
    for before, after in itertools.pairwise(met):
        days = local_days(before.met_at, after.met_at, tz)
        plan = max(before.cadence_days or fallback, after.cadence_days or fallback)
        worst_days = max(worst_days, days)
        worst_ratio = max(worst_ratio, days / plan)
    open_days = max(local_days(met[-1].met_at, as_of, tz), 0)
    worst_days = max(worst_days, open_days)
    worst_ratio = max(worst_ratio, open_days / fallback)
    return Gap(days=worst_days, ratio=round(worst_ratio, 2), open_days=open_days,
               cadence_days=cadence_now)


@dataclass(frozen=True)
class Balance:
    """How often each Balance area and each kind of 1:1 came up in the agendas written."""

    agendas: int
    areas: dict[str, int]
    kinds: dict[str, int]

    @property
    def missing_areas(self) -> list[str]:
        """Areas no agenda covered (judged only over enough agendas)."""
        if self.agendas < MIN_AGENDAS_FOR_BALANCE:
            return []
        return [a for a in AREAS if not self.areas.get(a)]

    def share(self, area: str) -> float | None:
        """The share of agendas that covered `area`."""
        return self.areas.get(area, 0) / self.agendas if self.agendas else None


def balance_coverage(agendas: Iterable[AgendaFact]) -> Balance:
    """Per area: agendas that covered it (at most once per agenda); per kind: agendas of it."""
    areas: dict[str, int] = dict.fromkeys(AREAS, 0)  # an area outside `Area` still counts
    kinds: dict[str, int] = dict.fromkeys(KINDS, 0)
    total = 0
    for agenda in agendas:
        total += 1
        for area in set(a.lower() for a in agenda.areas):
            areas[area] = areas.get(area, 0) + 1
        kind = agenda.kind.lower()
        kinds[kind] = kinds.get(kind, 0) + 1
    return Balance(agendas=total, areas=areas, kinds=kinds)


def action_items_closed(closed_at: Iterable[datetime | None], *, start: datetime,
                        end: datetime) -> int:
    """Action items closed inside [start, end) (open ones, with no `closed_at`, do not count)."""
    return sum(1 for at in closed_at if at is not None and start <= at < end)


# -- weeks -------------------------------------------------------------------------------


def iso_week_of(moment: datetime, tz: tzinfo) -> str:
    """The ISO week ("2026-W48") `moment` falls in, in time zone `tz`."""
    year, week, _ = moment.astimezone(tz).isocalendar()
    return f"{year}-W{week:02d}"


def parse_iso_week(text: str) -> tuple[int, int]:
    """("2026-W48") -> (2026, 48); a clear ValueError for anything else."""
    try:
        year_text, week_text = text.strip().upper().split("-W")
        year, week = int(year_text), int(week_text)
        date.fromisocalendar(year, week, 1)
    except ValueError as err:
        raise ValueError(f"not an ISO week like 2026-W48: {text!r}") from err
    return year, week


def week_monday(iso_week: str) -> date:
    """The Monday (local date) of an ISO week."""
    year, week = parse_iso_week(iso_week)
    return date.fromisocalendar(year, week, 1)


def shift_week(iso_week: str, weeks: int) -> str:
    """The ISO week `weeks` after (or before, when negative) `iso_week`."""
    monday = week_monday(iso_week) + timedelta(weeks=weeks)
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def week_bounds(iso_week: str, tz: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) of an ISO week in `tz`, as UTC instants (DST weeks are 167 or 169 hours)."""
    monday = week_monday(iso_week)
    start = datetime(monday.year, monday.month, monday.day, tzinfo=tz)
    nxt = monday + timedelta(days=7)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def weeks_ending(last_week: str, count: int) -> list[str]:
    """`count` ISO weeks, oldest first, ending with `last_week`."""
    return [shift_week(last_week, -i) for i in range(count - 1, -1, -1)]


# -- the weekly strip --------------------------------------------------------------------

STRIP_HELD = "held"
STRIP_RESCHEDULED = "rescheduled"
STRIP_DROPPED = "dropped"
STRIP_NONE = "none"  # nothing planned that week (fortnightly, holiday) or nothing to judge
STRIP_PENDING = "pending"


def week_state(counts: Counts) -> str:
    """One word per week for the strip: any drop wins, then any reschedule, then held."""
    if counts.dropped:
        return STRIP_DROPPED
    if counts.rescheduled:
        return STRIP_RESCHEDULED
    if counts.held or counts.moved:
        return STRIP_HELD
    if counts.pending:
        return STRIP_PENDING
    return STRIP_NONE


def counts_by_week(facts: Iterable[OccurrenceFact], weeks: Sequence[str],
                   tz: tzinfo) -> dict[str, Counts]:
    """Counts per ISO week (by original start in `tz`) for the given weeks, empty ones too."""
    grouped: dict[str, list[OccurrenceFact]] = {w: [] for w in weeks}
    for fact in facts:
        week = iso_week_of(fact.original_start, tz)
        if week in grouped:
            grouped[week].append(fact)
    return {w: count_outcomes(items) for w, items in grouped.items()}


# -- one pair, all together --------------------------------------------------------------


@dataclass(frozen=True)
class PairMetrics:
    """Every metric of one pair over one window."""

    counts: Counts
    consistency: float | None
    streak_current: int
    streak_longest: int
    gap: Gap
    balance: Balance
    action_items_closed: int
    weekly: dict[str, Counts] = field(default_factory=dict)
    last_outcome: str | None = None  # outcome of the most recent judged occurrence

    @property
    def strip(self) -> list[tuple[str, str]]:
        """(ISO week, state) per week, oldest first."""
        return [(w, week_state(c)) for w, c in self.weekly.items()]


def pair_metrics(
    facts: Sequence[OccurrenceFact],
    agendas: Iterable[AgendaFact],
    closed_at: Iterable[datetime | None],
    *,
    weeks: Sequence[str],
    tz: tzinfo,
    as_of: datetime,
) -> PairMetrics:
    """All metrics of one pair over the ISO `weeks` (oldest first) in time zone `tz`.

    `facts` may reach outside the weeks; only those planned inside count, except that the
    last meeting that took place before the window starts the longest gap (one definition
    of "longest gap", the same over any window that holds the stretch: digest, page, CLI).
    """
    start, _ = week_bounds(weeks[0], tz)
    _, end = week_bounds(weeks[-1], tz)
    return metrics_of(facts, balance_coverage(a for a in agendas
                                              if start <= a.original_start < end),
                      action_items_closed(closed_at, start=start, end=end),
                      weeks=weeks, tz=tz, as_of=as_of)


def metrics_of(facts: Sequence[OccurrenceFact], balance: Balance, closed: int, *,
               weeks: Sequence[str], tz: tzinfo, as_of: datetime) -> PairMetrics:
    """`pair_metrics` with the window's Balance and closed items already added up: what the
    snapshot read uses, summing weekly rows (see `service.metrics.snapshots`)."""
    start, _ = week_bounds(weeks[0], tz)
    _, end = week_bounds(weeks[-1], tz)
    inside = [f for f in facts if start <= f.original_start < end]
    earlier = [f for f in facts if f.original_start < start and f.outcome in TOOK_PLACE]
    anchor = [max(earlier, key=met_order)] if earlier else []
    counts = count_outcomes(inside)
    current, longest = streaks(inside)
    judged = _judged(inside)
    return PairMetrics(
        counts=counts,
        consistency=consistency_rate(counts),
        streak_current=current,
        streak_longest=longest,
        gap=longest_gap(anchor + inside, as_of=min(as_of, end), tz=tz),
        balance=balance,
        action_items_closed=closed,
        weekly=counts_by_week(inside, weeks, tz),
        last_outcome=judged[-1].outcome if judged else None,
    )


def add_balances(balances: Iterable[Balance]) -> Balance:
    """The Balance over several stretches (weeks, pairs): agendas, areas and kinds added up
    (a key appears when one of the stretches has it)."""
    agendas = 0
    areas: dict[str, int] = {}
    kinds: dict[str, int] = {}
    for b in balances:
        agendas += b.agendas
        for k, v in b.areas.items():
            areas[k] = areas.get(k, 0) + v
        for k, v in b.kinds.items():
            kinds[k] = kinds.get(k, 0) + v
    return Balance(agendas, areas, kinds)


# -- needs attention ---------------------------------------------------------------------


def attention_reasons(m: PairMetrics) -> list[str]:
    """Why a pair needs attention, most pressing first; empty when all is well.

    - ``no_meetings``: nothing took place in the window although slots were planned;
    - ``long_gap``: the open gap since the last meeting is two planned intervals or more;
    - ``dropped_last``: the most recent occurrence was dropped and not replaced;
    - ``low_consistency``: fewer than 75 % of eligible slots took place;
    - ``missing_area``: a Balance area never came up over at least three agendas.
    """
    reasons: list[str] = []
    if m.counts.eligible and not m.counts.took_place:
        reasons.append("no_meetings")
    cadence = m.gap.cadence_days or DEFAULT_CADENCE_DAYS
    if m.gap.open_days is not None and m.gap.open_days / cadence >= ATTENTION_GAP_RATIO:
        reasons.append("long_gap")
    if m.last_outcome in DROPPED:
        reasons.append("dropped_last")
    if m.consistency is not None and m.consistency < ATTENTION_CONSISTENCY \
            and "no_meetings" not in reasons:
        reasons.append("low_consistency")
    if m.balance.missing_areas:
        reasons.append("missing_area")
    return reasons


def attention_key(m: PairMetrics) -> tuple[int, float, float]:
    """Sort key, "needs attention first": more reasons, then lower consistency, longer gap."""
    reasons = attention_reasons(m)
    return (
        -len(reasons),
        m.consistency if m.consistency is not None else 2.0,  # nothing to judge sorts last
        -(m.gap.ratio or 0.0),
    )
