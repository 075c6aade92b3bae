"""The question bank: enough questions, stable ids, and productivity without status updates."""

from __future__ import annotations

import re

import pytest

from service.agenda.questions import BY_AREA, CHECK_INS, Area, Kind

ALL_QUESTIONS = [q for questions in BY_AREA.values() for q in questions]
PREFIX = {
    Area.GROWTH: "gro",
    Area.COMMUNICATION: "com",
    Area.PRODUCTIVITY: "pro",
    Area.MOTIVATION: "mot",
}


@pytest.mark.parametrize("area", list(Area))
def test_every_area_has_at_least_twenty_questions(area: Area) -> None:
    assert len(BY_AREA[area]) >= 20


@pytest.mark.parametrize("area", list(Area))
@pytest.mark.parametrize("kind", list(Kind))
def test_every_area_offers_questions_for_every_kind_of_one_on_one(area: Area, kind: Kind) -> None:
    assert sum(kind in q.kinds for q in BY_AREA[area]) >= 5


def test_there_are_at_least_twelve_personal_check_ins() -> None:
    assert len(CHECK_INS) >= 12


def test_question_ids_are_unique_and_name_their_area() -> None:
    ids = [q.id for q in ALL_QUESTIONS] + [c.id for c in CHECK_INS]
    assert len(ids) == len(set(ids))
    for question in ALL_QUESTIONS:
        assert re.fullmatch(rf"{PREFIX[question.area]}-\d\d", question.id), question.id
    for check_in in CHECK_INS:
        assert re.fullmatch(r"chk-\d\d", check_in.id), check_in.id


def test_no_two_questions_share_a_text() -> None:
    texts = [q.text.casefold() for q in ALL_QUESTIONS] + [c.text.casefold() for c in CHECK_INS]
    assert len(texts) == len(set(texts))


def test_every_prompt_is_a_question() -> None:
    assert all(q.text.endswith("?") for q in ALL_QUESTIONS)
    assert all(c.text.endswith("?") for c in CHECK_INS)


def test_productivity_questions_never_ask_for_a_status_update() -> None:
    for question in BY_AREA[Area.PRODUCTIVITY]:
        assert not re.search(r"status|update|progress report", question.text, re.I), question.id
