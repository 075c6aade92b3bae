"""Composing agendas: order, balance, no repeats, determinism, kind rotation."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import date, timedelta

import pytest

from service.agenda.generator import Agenda, FollowUp, Source, compose_agenda, kind_for
from service.agenda.questions import BY_AREA, CHECK_INS, Area, Kind

MONDAY = date(2026, 1, 5)


def compose(**overrides: object) -> Agenda:
    arguments: dict[str, object] = {
        "series_key": "pair-1",
        "occurrence_date": MONDAY,
        "kind": Kind.REGULAR,
        "report_topics": [],
        "manager_topics": [],
        "open_action_items": [],
        "recent_area_counts": {},
        "recently_asked": set(),
    }
    arguments.update(overrides)
    return compose_agenda(**arguments)  # type: ignore[arg-type]


def test_report_topics_come_first_then_manager_topics_then_follow_ups_then_balance() -> None:
    agenda = compose(
        report_topics=["my promotion case"],
        manager_topics=["team offsite"],
        open_action_items=[FollowUp("share the draft")],
    )
    sources = [item.source for item in agenda.items]
    assert sources[:3] == [Source.REPORT, Source.MANAGER, Source.FOLLOW_UP]
    kind_count = sources.count(Source.KIND)
    assert kind_count >= 2 and sources[3:3 + kind_count] == [Source.KIND] * kind_count
    assert set(sources[3 + kind_count:]) == {Source.BALANCE}
    assert [item.text for item in agenda.items[:3]] == [
        "my promotion case",
        "team offsite",
        "share the draft",
    ]


def test_check_in_is_a_personal_opener_recorded_first() -> None:
    agenda = compose()
    assert agenda.check_in in CHECK_INS
    assert agenda.question_ids[0] == agenda.check_in.id


def test_least_covered_area_is_chosen() -> None:
    counts = {Area.GROWTH: 5, Area.COMMUNICATION: 1, Area.PRODUCTIVITY: 4, Area.MOTIVATION: 3}
    agenda = compose(recent_area_counts=counts)
    assert agenda.areas == (Area.COMMUNICATION, Area.MOTIVATION)
    balance = [item for item in agenda.items if item.source is Source.BALANCE]
    assert [item.area for item in balance] == list(agenda.areas)
    assert [item.question_id for item in balance] == list(agenda.question_ids[1:])


def test_a_busy_agenda_gets_one_balance_prompt() -> None:
    agenda = compose(
        report_topics=["a", "b"],
        manager_topics=["c"],
        recent_area_counts={
            Area.GROWTH: 0,
            Area.COMMUNICATION: 2,
            Area.PRODUCTIVITY: 2,
            Area.MOTIVATION: 2,
        },
    )
    assert agenda.areas == (Area.GROWTH,)


def test_ties_between_areas_are_broken_the_same_way_each_time_but_vary_by_date() -> None:
    first_areas = {compose(occurrence_date=MONDAY + timedelta(weeks=w)).areas[0] for w in range(12)}
    assert compose().areas == compose().areas
    assert len(first_areas) > 1


def test_questions_suit_the_kind_of_one_on_one() -> None:
    for kind in Kind:
        for week in range(8):
            agenda = compose(kind=kind, occurrence_date=MONDAY + timedelta(weeks=week))
            questions = {q.id: q for qs in BY_AREA.values() for q in qs}
            assert all(kind in questions[qid].kinds for qid in agenda.question_ids[1:])


def test_same_inputs_give_the_same_agenda() -> None:
    inputs = {
        "report_topics": ["x"],
        "recent_area_counts": {Area.GROWTH: 2},
        "recently_asked": {"mot-01", "chk-02"},
    }
    assert compose(**inputs) == compose(**inputs)


def test_other_pairs_and_dates_get_other_questions() -> None:
    by_pair = {compose(series_key=f"pair-{n}").question_ids for n in range(8)}
    by_date = {compose(occurrence_date=MONDAY + timedelta(days=n)).question_ids for n in range(8)}
    assert len(by_pair) > 1
    assert len(by_date) > 1


def test_agenda_does_not_depend_on_python_hash_randomisation() -> None:
    script = (
        "from datetime import date;"
        "from service.agenda.generator import compose_agenda;"
        "from service.agenda.questions import Kind;"
        "a = compose_agenda(series_key='pair-9', occurrence_date=date(2026, 3, 2),"
        " kind=Kind.CORE, report_topics=[], manager_topics=[], open_action_items=[],"
        " recent_area_counts={}, recently_asked={'gro-01', 'com-01', 'chk-01'});"
        "print(a.question_ids)"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PYTHONPATH": "."},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1


REPEAT_WINDOW = 16  # meetings whose questions the planner passes as recently asked


def simulate(weeks: int) -> list[Agenda]:
    """Weekly 1:1s fed with the history a planner would pass in."""
    history: list[Agenda] = []
    for week in range(weeks):
        recent = history[-6:]
        counts = Counter(area for agenda in recent for area in agenda.areas)
        window = history[-REPEAT_WINDOW:]
        asked = [qid for agenda in reversed(window) for qid in agenda.question_ids]
        history.append(
            compose(
                occurrence_date=MONDAY + timedelta(weeks=week),
                kind=kind_for(
                    cadence=["regular", "regular", "development", "core"], occurrence_index=week
                ),
                recent_area_counts=counts,
                recently_asked=asked,
            )
        )
    return history


def test_no_balance_question_repeats_within_the_window_over_twenty_weeks() -> None:
    last_week: dict[str, int] = {}
    for week, agenda in enumerate(simulate(20)):
        for qid in agenda.question_ids[1:]:
            assert week - last_week.get(qid, -REPEAT_WINDOW - 1) > REPEAT_WINDOW, qid
            last_week[qid] = week


def test_check_ins_do_not_repeat_until_all_have_been_used() -> None:
    check_ins = [agenda.check_in.id for agenda in simulate(20)]
    assert len(set(check_ins[: len(CHECK_INS)])) == len(CHECK_INS)


def test_areas_stay_balanced_over_twenty_weeks() -> None:
    totals = Counter(area for agenda in simulate(20) for area in agenda.areas)
    assert set(totals) == set(Area)
    assert max(totals.values()) - min(totals.values()) <= 2


def test_exhausted_area_brings_back_the_question_asked_longest_ago() -> None:
    motivation = [q.id for q in BY_AREA[Area.MOTIVATION]]
    most_recent_first = motivation[5:] + motivation[:5]
    agenda = compose(
        report_topics=["a", "b", "c"],
        recent_area_counts={Area.GROWTH: 3, Area.COMMUNICATION: 3, Area.PRODUCTIVITY: 3},
        recently_asked=most_recent_first,
    )
    assert agenda.question_ids[1:] == (motivation[4],)


def test_blank_and_repeated_topics_are_dropped_keeping_the_reports_copy() -> None:
    agenda = compose(
        report_topics=["  Budget\n review ", ""],
        manager_topics=["budget review"],
        open_action_items=[FollowUp("   ")],
    )
    people = [item for item in agenda.items
              if item.source not in (Source.BALANCE, Source.KIND)]
    assert [(item.source, item.text) for item in people] == [(Source.REPORT, "Budget review")]


def test_kind_rotation_follows_the_cadence_and_wraps_around() -> None:
    cadence = ["regular", "Regular ", "development", "core"]
    kinds = [kind_for(cadence=cadence, occurrence_index=i) for i in range(6)]
    assert kinds == [
        Kind.REGULAR,
        Kind.REGULAR,
        Kind.DEVELOPMENT,
        Kind.CORE,
        Kind.REGULAR,
        Kind.REGULAR,
    ]


@pytest.mark.parametrize(("cadence", "index"), [([], 0), (["regular"], -1), (["weekly"], 0)])
def test_kind_rotation_rejects_a_bad_cadence_or_index(cadence: list[str], index: int) -> None:
    with pytest.raises(ValueError):
        kind_for(cadence=cadence, occurrence_index=index)
