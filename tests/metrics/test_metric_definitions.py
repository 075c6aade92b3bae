"""Each metric on hand-made histories: pure functions, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from service.metrics import definitions as d
from service.metrics.definitions import AgendaFact, OccurrenceFact

NY = ZoneInfo("America/New_York")


def weekly(first: datetime, outcomes: list[str | None], *, series: int = 1,
           cadence: int | None = 7, every_days: int = 7) -> list[OccurrenceFact]:
    return [OccurrenceFact(series, first + timedelta(days=i * every_days),
                           first + timedelta(days=i * every_days), o, cadence)
            for i, o in enumerate(outcomes)]


def local_weekly(first_local: datetime, outcomes: list[str | None]) -> list[OccurrenceFact]:
    """Weekly at the same local wall time: UTC starts shift by an hour across DST."""
    facts = []
    for i, o in enumerate(outcomes):
        start = (first_local + timedelta(days=7 * i)).astimezone(UTC)
        facts.append(OccurrenceFact(1, start, start, o, 7))
    return facts


def test_counts_put_every_outcome_in_its_bucket_and_pending_apart() -> None:
    facts = weekly(datetime(2026, 1, 5, 9, tzinfo=UTC), [
        "held", "moved", "rescheduled", "cancelled_no_reschedule", "declined_by_report",
        "declined_by_manager", "series_ended", "unknown", None])
    c = d.count_outcomes(facts)
    assert (c.scheduled, c.held, c.moved, c.rescheduled, c.cancelled) == (8, 1, 1, 1, 1)
    assert (c.declined, c.declined_by_report, c.declined_by_manager) == (2, 1, 1)
    assert (c.series_ended, c.unknown, c.pending) == (1, 1, 1)
    assert (c.took_place, c.dropped, c.eligible) == (3, 3, 6)


def test_an_outcome_outside_the_vocabulary_counts_as_unknown() -> None:
    c = d.count_outcomes(weekly(datetime(2026, 1, 5, tzinfo=UTC), ["held", "teleported"]))
    assert (c.scheduled, c.held, c.unknown) == (2, 1, 1)


def test_consistency_leaves_out_ended_series_and_unknown_slots() -> None:
    c = d.count_outcomes(weekly(datetime(2026, 1, 5, tzinfo=UTC), [
        "held", "moved", "rescheduled", "cancelled_no_reschedule", "series_ended", "unknown"]))
    assert d.consistency_rate(c) == 3 / 4


def test_consistency_is_none_when_nothing_could_be_judged() -> None:
    assert d.consistency_rate(d.count_outcomes([])) is None
    only_ended = weekly(datetime(2026, 1, 5, tzinfo=UTC), ["series_ended", "unknown", None])
    assert d.consistency_rate(d.count_outcomes(only_ended)) is None


def test_streaks_count_runs_that_took_place_and_skip_unjudged_slots() -> None:
    facts = weekly(datetime(2026, 1, 5, tzinfo=UTC), [
        "held", "moved", "rescheduled", "held", "declined_by_manager", "held", "unknown",
        "series_ended", "held", None])
    assert d.streaks(facts) == (2, 4)


def test_current_streak_is_zero_right_after_a_drop() -> None:
    facts = weekly(datetime(2026, 1, 5, tzinfo=UTC),
                   ["held", "held", "cancelled_no_reschedule"])
    assert d.streaks(facts) == (0, 2)


def test_streaks_follow_planned_order_not_insertion_order() -> None:
    facts = weekly(datetime(2026, 1, 5, tzinfo=UTC), ["held", "cancelled_no_reschedule", "held"])
    assert d.streaks(list(reversed(facts))) == (1, 1)


def test_gap_on_a_steady_weekly_history_matches_the_cadence() -> None:
    first = datetime(2026, 1, 5, 9, tzinfo=UTC)
    facts = weekly(first, ["held"] * 4)
    gap = d.longest_gap(facts, as_of=first + timedelta(days=22))
    assert (gap.days, gap.ratio, gap.open_days, gap.cadence_days) == (7, 1.0, 1, 7)


def test_gap_across_a_dropped_week_is_two_intervals() -> None:
    first = datetime(2026, 1, 5, 9, tzinfo=UTC)
    facts = weekly(first, ["held", "cancelled_no_reschedule", "held"])
    gap = d.longest_gap(facts, as_of=first + timedelta(days=14, hours=2))
    assert (gap.days, gap.ratio) == (14, 2.0)


def test_the_open_gap_since_the_last_meeting_counts() -> None:
    first = datetime(2026, 1, 5, 9, tzinfo=UTC)
    facts = weekly(first, ["held", "cancelled_no_reschedule", "cancelled_no_reschedule"])
    gap = d.longest_gap(facts, as_of=first + timedelta(days=28))
    assert (gap.days, gap.open_days, gap.ratio) == (28, 28, 4.0)


def test_gap_uses_local_days_so_dst_weeks_are_still_seven_days() -> None:
    # 09:00 New York every Monday across the March 2026 spring-forward (8 March).
    facts = local_weekly(datetime(2026, 2, 23, 9, tzinfo=NY), ["held"] * 4)
    utc_hours = (facts[2].original_start - facts[1].original_start).total_seconds() / 3600
    assert utc_hours == 167  # one hour short in UTC ...
    gap = d.longest_gap(facts, as_of=facts[-1].original_start + timedelta(hours=1), tz=NY)
    assert (gap.days, gap.ratio) == (7, 1.0)  # ... but a week in the manager's calendar


def test_dst_weeks_keep_each_meeting_in_its_own_local_week() -> None:
    # Autumn: 2 November 2026 in New York; a Monday 00:30 meeting stays on Monday.
    facts = local_weekly(datetime(2026, 10, 26, 0, 30, tzinfo=NY), ["held", "held", "held"])
    weeks = d.weeks_ending("2026-W46", 3)
    by_week = d.counts_by_week(facts, weeks, NY)
    assert [by_week[w].held for w in weeks] == [1, 1, 1]
    start, end = d.week_bounds("2026-W45", NY)  # the week that starts on the DST change day
    assert (end - start) == timedelta(days=7)
    start, end = d.week_bounds("2026-W44", NY)  # the week that contains 1 November 02:00
    assert (end - start) == timedelta(days=7, hours=1)


def test_gap_is_judged_by_the_cadence_of_the_series_it_started_in() -> None:
    # Weekly for four weeks, then the series was split into a fortnightly one.
    first = datetime(2026, 1, 5, 9, tzinfo=UTC)
    facts = weekly(first, ["held"] * 4, series=1, cadence=7)
    facts += weekly(first + timedelta(days=35), ["held"] * 4, series=2, cadence=14,
                    every_days=14)
    gap = d.longest_gap(facts, as_of=facts[-1].original_start)
    assert gap.days == 14  # the fortnightly stretches are the longest in days ...
    assert gap.ratio == 1.0  # ... and exactly on plan
    assert gap.cadence_days == 14
    assert d.planned_cadence(facts) == 14


def test_cadence_falls_back_to_the_spacing_of_planned_slots() -> None:
    facts = weekly(datetime(2026, 1, 5, tzinfo=UTC), ["held"] * 3, cadence=None, every_days=14)
    assert d.planned_cadence(facts) == 14


def test_a_pair_that_moved_provider_keeps_one_history_over_two_series() -> None:
    first = datetime(2026, 1, 5, 9, tzinfo=UTC)
    google = weekly(first, ["held", "held", "held", "series_ended", "series_ended"], series=1)
    graph = weekly(first + timedelta(days=22), ["held", "held", "held"], series=2)
    facts = google + graph
    counts = d.count_outcomes(facts)
    assert (counts.scheduled, counts.took_place, counts.series_ended) == (8, 6, 2)
    assert d.consistency_rate(counts) == 1.0
    assert d.streaks(facts) == (6, 6)


def test_balance_counts_each_area_once_per_agenda_and_each_kind() -> None:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    agendas = [AgendaFact(start, "regular", ("growth", "motivation", "growth")),
               AgendaFact(start, "core", ("Productivity",)),
               AgendaFact(start, "regular", ("communication", "growth"))]
    b = d.balance_coverage(agendas)
    assert b.agendas == 3
    assert b.areas == {"growth": 2, "communication": 1, "productivity": 1, "motivation": 1}
    assert b.kinds == {"core": 1, "development": 0, "regular": 2}
    assert b.share("growth") == 2 / 3
    assert b.missing_areas == []


def test_a_missing_area_is_only_reported_over_enough_agendas() -> None:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    two = [AgendaFact(start, "regular", ("growth",))] * 2
    assert d.balance_coverage(two).missing_areas == []
    three = two + [AgendaFact(start, "core", ("productivity",))]
    assert d.balance_coverage(three).missing_areas == ["communication", "motivation"]


def test_action_items_closed_counts_only_inside_the_window() -> None:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    end = start + timedelta(days=7)
    closed = [start, end - timedelta(seconds=1), end, start - timedelta(seconds=1), None]
    assert d.action_items_closed(closed, start=start, end=end) == 2


def test_iso_weeks_shift_across_year_ends() -> None:
    assert d.shift_week("2026-W01", -1) == "2025-W52"
    assert d.shift_week("2026-W53", 1) == "2027-W01"
    assert d.weeks_ending("2026-W02", 3) == ["2025-W52", "2026-W01", "2026-W02"]


def test_a_bad_iso_week_is_a_clear_error() -> None:
    for text in ("2026-48", "2026-W54", "nonsense"):
        try:
            d.parse_iso_week(text)
        except ValueError as err:
            assert "ISO week" in str(err)
        else:
            raise AssertionError(text)


def test_week_strip_prefers_drop_then_reschedule_then_held() -> None:
    C = d.Counts
    assert d.week_state(C(scheduled=2, held=1, cancelled=1)) == "dropped"
    assert d.week_state(C(scheduled=2, held=1, rescheduled=1)) == "rescheduled"
    assert d.week_state(C(scheduled=1, moved=1)) == "held"
    assert d.week_state(C(scheduled=1, series_ended=1)) == "none"
    assert d.week_state(C(pending=1)) == "pending"
    assert d.week_state(C()) == "none"


def test_pair_metrics_put_a_moved_meeting_in_the_week_it_was_planned() -> None:
    first = datetime(2026, 1, 9, 15, tzinfo=UTC)  # Fridays
    facts = weekly(first, ["held", "moved", "held"])
    moved = facts[1]
    facts[1] = OccurrenceFact(1, moved.original_start,
                              moved.original_start + timedelta(days=3), "moved", 7)
    weeks = d.weeks_ending("2026-W04", 3)
    m = d.pair_metrics(facts, [], [], weeks=weeks, tz=UTC,
                       as_of=datetime(2026, 1, 26, tzinfo=UTC))
    assert [s for _, s in m.strip] == ["held", "held", "held"]
    assert m.gap.days == 10  # Friday 9th to the moved meeting on Monday 19th


def test_attention_reasons_and_ordering() -> None:
    weeks = d.weeks_ending("2026-W12", 12)
    first = datetime(2026, 1, 5, 9, tzinfo=UTC)  # W02 Monday
    as_of = datetime(2026, 3, 22, tzinfo=UTC)
    steady = d.pair_metrics(weekly(first, ["held"] * 11), [], [], weeks=weeks, tz=UTC,
                            as_of=as_of)
    shaky = d.pair_metrics(weekly(first, ["held", "cancelled_no_reschedule"] * 5 + ["held"]),
                           [], [], weeks=weeks, tz=UTC, as_of=as_of)
    gone = d.pair_metrics(weekly(first, ["held"] * 3 + ["cancelled_no_reschedule"] * 8), [],
                          [], weeks=weeks, tz=UTC, as_of=as_of)
    assert d.attention_reasons(steady) == []
    assert d.attention_reasons(shaky) == ["low_consistency"]
    assert d.attention_reasons(gone) == ["long_gap", "dropped_last", "low_consistency"]
    ordered = sorted([steady, shaky, gone], key=d.attention_key)
    assert ordered == [gone, shaky, steady]
