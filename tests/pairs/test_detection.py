"""1:1 detection: structure decides, the title adjusts, the override wins."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.base import Attendee, CalendarEvent
from service.pairs.detection import THRESHOLD, detect, is_one_on_one
from service.pairs.models import Override

START = datetime(2026, 11, 24, 15, tzinfo=UTC)


def occurrence(title: str, *attendees: Attendee, organizer: str = "maya@acme.test",
               recurring: bool = True) -> CalendarEvent:
    return CalendarEvent(id="e1", calendar_id="c", title=title, organizer=organizer,
                         attendees=attendees, start=START, end=START,
                         series_id="s1" if recurring else None,
                         original_start=START if recurring else None)


MAYA = Attendee("maya@acme.test", "Maya Chen", is_organizer=True, is_self=True)
SAM = Attendee("sam@acme.test", "Sam Rivera")
ALEX = Attendee("alex@acme.test", "Alex Becker")
ROOM = Attendee("boardroom@resource.acme.test", "Boardroom", is_resource=True)


@pytest.mark.parametrize("title", ["Maya / Sam 1:1", "1-1 Sam", "one on one", "Sam <> Maya",
                                   "1on1", "Weekly check-in"])
def test_two_people_with_a_telling_title_are_a_one_on_one(title: str) -> None:
    verdict = detect(occurrence(title, MAYA, SAM))
    assert verdict.structurally_one_on_one
    assert verdict.confidence >= THRESHOLD
    assert (verdict.organizer, verdict.other) == ("maya@acme.test", "sam@acme.test")


def test_a_room_is_not_counted_as_a_person() -> None:
    verdict = detect(occurrence("1:1", MAYA, SAM, ROOM))
    assert verdict.human_count == 2 and verdict.other == "sam@acme.test"


def test_a_google_resource_address_is_a_room_even_without_the_flag() -> None:
    room = Attendee("c_188abc@resource.calendar.google.com", "Room 4")
    assert detect(occurrence("1:1", MAYA, SAM, room)).human_count == 2


def test_three_people_are_never_a_one_on_one() -> None:
    verdict = detect(occurrence("1:1 sync", MAYA, SAM, ALEX))
    assert verdict.human_count == 3 and verdict.confidence == 0.0
    assert not is_one_on_one(confidence=1.0, human_count=3, override=Override.INCLUDE)


def test_the_organizer_counts_once_when_graph_leaves_them_out_of_attendees() -> None:
    verdict = detect(occurrence("Dana/Lee 1:1", Attendee("lee@acme.test"),
                                organizer="dana@acme.test"))
    assert verdict.human_count == 2 and verdict.other == "lee@acme.test"


def test_a_one_off_meeting_is_not_a_series() -> None:
    assert detect(occurrence("1:1", MAYA, SAM, recurring=False)).confidence == 0.0


def test_working_session_titles_lower_confidence_below_the_threshold() -> None:
    assert detect(occurrence("Project Atlas pairing", MAYA, SAM)).confidence < THRESHOLD


def test_the_override_always_wins_over_detection() -> None:
    assert not is_one_on_one(confidence=1.0, human_count=2, override=Override.EXCLUDE)
    assert is_one_on_one(confidence=0.0, human_count=2, override=Override.INCLUDE)
