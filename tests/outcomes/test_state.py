"""Every edge of the outcome state machine, on plain facts (no database, no clock)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from service.outcomes.state import DROPS, Decision, Facts, Phase, arm, decide
from service.pairs.models import Outcome

GRACE = timedelta(hours=24)
START = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
NOW = START - timedelta(days=3)


def facts(**changes: object) -> Facts:
    base = Facts(original_start=START, scheduled_start=START,
                 scheduled_end=START + timedelta(minutes=30), cancelled=False,
                 manager_response="accepted", report_response="accepted")
    return replace(base, **changes)  # type: ignore[arg-type]


def in_grace(**changes: object) -> Facts:
    return facts(check_due_at=NOW + GRACE, **changes)


def test_a_confirmed_future_occurrence_needs_nothing() -> None:
    assert decide(facts(), now=NOW, grace=GRACE) == Decision(reason="nothing to do")
    assert facts().phase is Phase.SCHEDULED


def test_a_cancellation_starts_the_grace_period() -> None:
    decision = decide(facts(cancelled=True), now=NOW, grace=GRACE)
    assert decision.check_due_at == NOW + GRACE and decision.outcome is None
    assert not decision.alert


@pytest.mark.parametrize("who", ["manager_response", "report_response"])
def test_a_decline_starts_the_grace_period(who: str) -> None:
    decision = arm(facts(**{who: "declined"}), noticed_at=NOW, grace=GRACE)
    assert decision.check_due_at == NOW + GRACE


def test_confirmed_again_during_grace_goes_back_to_scheduled() -> None:
    decision = decide(in_grace(), now=NOW, grace=GRACE)
    assert decision.clear_check and decision.outcome is None and not decision.alert


def test_nothing_is_decided_before_the_grace_period_is_over() -> None:
    assert not decide(in_grace(cancelled=True), now=NOW + GRACE / 2,
                      grace=GRACE).changes_anything


def test_grace_over_on_a_cancellation_alerts_once() -> None:
    decision = decide(in_grace(cancelled=True), now=NOW + GRACE, grace=GRACE)
    assert decision.outcome is Outcome.CANCELLED_NO_RESCHEDULE and decision.alert
    assert decision.clear_check
    after = facts(cancelled=True, outcome=decision.outcome)
    assert decide(after, now=NOW + 2 * GRACE, grace=GRACE).changes_anything is False


@pytest.mark.parametrize(("who", "outcome"), [
    ("manager_response", Outcome.DECLINED_BY_MANAGER),
    ("report_response", Outcome.DECLINED_BY_REPORT),
])
def test_grace_over_on_a_decline_names_who_declined(who: str, outcome: Outcome) -> None:
    decision = decide(in_grace(**{who: "declined"}), now=NOW + GRACE, grace=GRACE)
    assert decision.outcome is outcome and decision.alert


def test_a_cancellation_wins_over_a_decline() -> None:
    decision = decide(in_grace(cancelled=True, report_response="declined"), now=NOW + GRACE,
                      grace=GRACE)
    assert decision.outcome is Outcome.CANCELLED_NO_RESCHEDULE


def test_a_replacement_during_grace_cancels_the_alert() -> None:
    decision = decide(in_grace(cancelled=True, replacement=True), now=NOW + GRACE / 2,
                      grace=GRACE)
    assert decision.outcome is Outcome.RESCHEDULED and not decision.alert


def test_an_ended_series_closes_its_occurrences_without_alert() -> None:
    decision = decide(in_grace(cancelled=True, series_ended=True), now=NOW, grace=GRACE)
    assert decision.outcome is Outcome.SERIES_ENDED and not decision.alert


def test_a_muted_pair_gets_the_outcome_but_no_alert() -> None:
    decision = decide(in_grace(cancelled=True, muted=True), now=NOW + GRACE, grace=GRACE)
    assert decision.outcome is Outcome.CANCELLED_NO_RESCHEDULE and not decision.alert


def test_a_drop_noticed_long_after_the_meeting_is_recorded_without_alert() -> None:
    late = START + timedelta(days=10)
    decision = decide(facts(cancelled=True, check_due_at=late + GRACE), now=late + GRACE,
                      grace=GRACE)
    assert decision.outcome is Outcome.CANCELLED_NO_RESCHEDULE and not decision.alert


@pytest.mark.parametrize("drop", sorted(DROPS))
def test_a_reschedule_after_the_alert_is_recorded_without_a_second_alert(drop: Outcome) -> None:
    decided = facts(cancelled=True, outcome=drop, replacement=True)
    decision = decide(decided, now=NOW + 3 * GRACE, grace=GRACE)
    assert decision.outcome is Outcome.RESCHEDULED and not decision.alert


def test_putting_the_occurrence_itself_back_after_the_alert_counts_as_rescheduled() -> None:
    decided = facts(outcome=Outcome.CANCELLED_NO_RESCHEDULE)  # confirmed again
    assert decide(decided, now=NOW + 3 * GRACE, grace=GRACE).outcome is Outcome.RESCHEDULED


@pytest.mark.parametrize("final", sorted(set(Outcome) - DROPS))
def test_final_outcomes_never_change(final: Outcome) -> None:
    decided = facts(cancelled=True, outcome=final, replacement=True)
    assert not decide(decided, now=NOW + 30 * GRACE, grace=GRACE).changes_anything


def test_an_occurrence_that_took_place_is_held() -> None:
    over = START + timedelta(hours=1)
    assert decide(facts(), now=over, grace=GRACE).outcome is Outcome.HELD


def test_an_occurrence_that_took_place_at_another_time_is_moved() -> None:
    moved = facts(scheduled_start=START + timedelta(days=1),
                  scheduled_end=START + timedelta(days=1, minutes=30))
    assert decide(moved, now=START + timedelta(days=2), grace=GRACE).outcome is Outcome.MOVED
    assert decide(moved, now=START + timedelta(hours=1), grace=GRACE).outcome is None


def test_an_occurrence_without_any_response_data_is_unknown() -> None:
    blind = facts(manager_response=None, report_response=None)
    assert decide(blind, now=START + timedelta(hours=1), grace=GRACE).outcome is Outcome.UNKNOWN


def test_outcome_values_are_stable_strings() -> None:
    assert {o.value for o in Outcome} == {
        "held", "moved", "rescheduled", "cancelled_no_reschedule", "declined_by_report",
        "declined_by_manager", "series_ended", "unknown"}
