"""Free-slot arithmetic, quiet hours and the rendered alert (escaping, both parts)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from connectors.base import BusyInterval
from service.config_values import parse_span
from service.outcomes.alerts import AlertFacts, quiet_until, render_alert
from service.outcomes.slots import Slot, free_slots, local_day, search_span
from service.pairs.models import Outcome
from service.people.models import Person
from service.people.zones import person_zone

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
MONDAY = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday


def test_slots_fall_inside_both_peoples_working_hours_and_avoid_busy_time() -> None:
    busy = {"a@x": [BusyInterval(MONDAY + timedelta(hours=14), MONDAY + timedelta(hours=16))],
            "b@x": []}
    slots = free_slots(busy, zones={"a@x": NY, "b@x": LONDON}, start=MONDAY,
                       end=MONDAY + timedelta(days=5), duration=timedelta(minutes=30),
                       working_hours=parse_span("09:00-17:00"))
    assert len(slots) == 3
    assert len({s.start.astimezone(NY).date() for s in slots}) == 3  # spread over days
    for slot in slots:
        for tz in (NY, LONDON):
            local_start, local_end = slot.start.astimezone(tz), slot.end.astimezone(tz)
            assert time(9) <= local_start.time() and local_end.time() <= time(17)
        assert not (slot.start < busy["a@x"][0].end and busy["a@x"][0].start < slot.end)
    # New York 09:00 is London 14:00 (both zones on standard time in early March 2026)
    assert slots[0].start == MONDAY + timedelta(hours=16)


def test_no_slots_on_weekends_or_when_nobody_overlaps() -> None:
    saturday = MONDAY + timedelta(days=5)
    assert free_slots({}, zones={"a": NY}, start=saturday, end=saturday + timedelta(days=2),
                      duration=timedelta(minutes=30), working_hours=(time(9), time(17))) == []
    far = ZoneInfo("America/Los_Angeles"), ZoneInfo("Asia/Kolkata")
    assert free_slots({}, zones={"a": far[0], "b": far[1]}, start=MONDAY,
                      end=MONDAY + timedelta(days=3), duration=timedelta(minutes=30),
                      working_hours=(time(9), time(17))) == []


def test_quiet_hours_delay_until_they_end_in_the_managers_zone() -> None:
    late = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)  # 21:00 in New York
    until = quiet_until(late, quiet_hours=parse_span("20:00-07:00"), tz=NY)
    assert until == datetime(2026, 3, 3, 12, 0, tzinfo=UTC)  # 07:00 New York
    assert quiet_until(datetime(2026, 3, 3, 15, 0, tzinfo=UTC),
                       quiet_hours=parse_span("20:00-07:00"), tz=NY) is None


def test_the_alert_escapes_every_value_and_has_both_parts() -> None:
    slot = Slot(MONDAY + timedelta(days=1, hours=15), MONDAY + timedelta(days=1, hours=15,
                                                                          minutes=30))
    facts = AlertFacts(occurrence_id=1, title="<b>1:1</b> & more", manager_name="Maya",
                       manager_email="maya@x.test", report_name="Sam <script>",
                       report_email="sam@x.test", dropped_by="You",
                       outcome=Outcome.CANCELLED_NO_RESCHEDULE,
                       original_start=MONDAY + timedelta(hours=15), duration_minutes=30,
                       manager_zone=NY, provider="google", slots=(slot,))
    rendered = render_alert(facts)
    assert "\n" not in rendered.subject and "Sam <script>" in rendered.subject
    assert "<script>" not in rendered.html and "Sam &lt;script&gt;" in rendered.html
    assert "&lt;b&gt;1:1&lt;/b&gt; &amp; more" in rendered.html
    assert "Tue 3 Mar, 10:00 (America/New_York)" in rendered.text
    assert "calendar.google.com" in rendered.text and "style=" in rendered.html


LEAD = timedelta(hours=1)
HALF_HOUR = timedelta(minutes=30)


def test_a_dropped_occurrence_still_ahead_is_replaced_in_the_days_before_it() -> None:
    now = MONDAY + timedelta(hours=9)  # Mon 2 Mar; the dropped 1:1 is Mon 16 Mar, 15:00 UTC
    dropped = MONDAY + timedelta(days=14, hours=15)
    start, end = search_span(now=now, lead=LEAD, dropped_start=dropped,
                             dropped_end=dropped + HALF_HOUR)
    assert start == dropped - timedelta(days=4) and end == dropped + HALF_HOUR + timedelta(days=3)
    slots = free_slots({}, zones={"a": LONDON, "b": LONDON}, start=start, end=end,
                       duration=HALF_HOUR, working_hours=(time(9), time(17)))
    assert [s.start.date().isoformat() for s in slots] == ["2026-03-12", "2026-03-13",
                                                           "2026-03-16"]  # Thu, Fri, Mon


def test_a_dropped_occurrence_already_past_is_replaced_soon_and_never_in_the_past() -> None:
    now = MONDAY + timedelta(days=1, hours=12)  # Tue 12:00; the 1:1 was Mon 15:00
    dropped = MONDAY + timedelta(hours=15)
    start, end = search_span(now=now, lead=LEAD, dropped_start=dropped,
                             dropped_end=dropped + HALF_HOUR)
    assert start == now + LEAD and end - start == timedelta(days=5)
    slots = free_slots({}, zones={"a": LONDON}, start=start, end=end, duration=HALF_HOUR,
                       working_hours=(time(9), time(17)))
    assert slots and all(s.start >= now + LEAD for s in slots)


def test_a_dropped_occurrence_tomorrow_is_never_offered_at_its_own_time() -> None:
    now = MONDAY + timedelta(hours=16, minutes=45)  # Mon 16:45 London, the 1:1 is Tue 09:00
    dropped = MONDAY + timedelta(days=1, hours=9)
    start, end = search_span(now=now, lead=LEAD, dropped_start=dropped,
                             dropped_end=dropped + HALF_HOUR)
    assert start == now + LEAD  # the days before it are over: from now on, never earlier
    slots = free_slots({}, zones={"a": LONDON}, start=start, end=end, duration=HALF_HOUR,
                       working_hours=(time(9), time(17)), count=20, one_per_day=False,
                       blocked=[BusyInterval(dropped, dropped + HALF_HOUR)])
    assert slots and slots[0].start == dropped + HALF_HOUR
    assert all(not (s.start < dropped + HALF_HOUR and dropped < s.end) for s in slots)


def test_days_that_already_hold_a_meeting_of_the_two_are_not_offered() -> None:
    other_meeting = MONDAY + timedelta(days=2, hours=15)  # Wed: the pair meets anyway
    slots = free_slots({}, zones={"a": NY}, start=MONDAY, end=MONDAY + timedelta(days=5),
                       duration=HALF_HOUR, working_hours=(time(9), time(17)), count=5,
                       blocked=[local_day(other_meeting, NY)])
    days = {s.start.astimezone(NY).date() for s in slots}
    assert other_meeting.astimezone(NY).date() not in days and len(days) == 4


def test_working_hours_are_read_in_each_persons_zone_and_utc_when_unknown() -> None:
    assert person_zone(Person(email="a@x", time_zone="Asia/Kolkata")) == ZoneInfo("Asia/Kolkata")
    assert person_zone(Person(email="b@x", time_zone=None)).key == "UTC"
    assert person_zone(Person(email="c@x", time_zone="Mars/Olympus")).key == "UTC"


def _facts(**changes: object) -> AlertFacts:
    base: dict[str, object] = dict(
        occurrence_id=1, title="1:1", manager_name="Maya", manager_email="maya@x.test",
        report_name="Priya", report_email="priya@x.test", dropped_by="You",
        outcome=Outcome.CANCELLED_NO_RESCHEDULE, original_start=MONDAY, duration_minutes=30,
        manager_zone=NY, provider="google",
        slots=(Slot(MONDAY + timedelta(hours=15), MONDAY + timedelta(hours=15, minutes=30)),))
    base.update(changes)
    return AlertFacts(**base)  # type: ignore[arg-type]


def test_the_alert_says_whose_calendar_it_could_not_see_instead_of_both_free() -> None:
    seen = render_alert(_facts())
    assert "you and Priya are both free" in seen.text
    report_unseen = render_alert(_facts(unseen=("Priya",)))
    for part in (report_unseen.text, report_unseen.html):
        assert "could not see Priya&#39;s calendar" in part or \
            "could not see Priya's calendar" in part
        assert "both free" not in part
    manager_unseen = render_alert(_facts(unseen=("you",)))
    assert "could not see your calendar" in manager_unseen.text
    nobody = render_alert(_facts(unseen=("you", "Priya"), slots=(), slots_checked=False))
    assert "could not see your calendar or Priya's" in nobody.text
    assert "both free" not in nobody.text
