"""Free-slot arithmetic, quiet hours and the rendered alert (escaping, both parts)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from connectors.base import BusyInterval
from service.config_values import parse_span
from service.outcomes.alerts import AlertFacts, quiet_until, render_alert
from service.outcomes.slots import Slot, free_slots
from service.outcomes.state import Outcome

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
