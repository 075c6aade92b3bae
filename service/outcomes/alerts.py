"""Composing the alert email about a dropped 1:1: who dropped which occurrence, and three
free slots to put it back, each with a link and a plain instruction.

Rendering goes through `service.email.render` (Jinja2, HTML autoescaped, CSS inlined); this
module only prepares plain values, formatted in the manager's own time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from service.email.render import RenderedEmail, render_email
from service.outcomes.slots import Slot, span_end_after, within_span
from service.pairs.models import Outcome
from service.people.names import greeting

TEMPLATE = "alert"


@dataclass(frozen=True)
class AlertFacts:
    """The plain values an alert is made of."""

    occurrence_id: int
    title: str
    manager_name: str | None  # None when no real name is known: a neutral greeting
    manager_email: str
    report_name: str
    report_email: str
    dropped_by: str  # a name
    outcome: Outcome
    original_start: datetime
    duration_minutes: int
    manager_zone: ZoneInfo
    provider: str | None  # the manager's calendar provider, for the link
    slots: tuple[Slot, ...] = ()
    slots_checked: bool = True  # False when free/busy could not be read
    unseen: tuple[str, ...] = ()  # whose calendar could not be read: "you" or a name


def _when(moment: datetime, tz: ZoneInfo) -> str:
    """"Tue 3 Dec, 10:00 (America/New_York)" on the wall clock of `tz`."""
    local = moment.astimezone(tz)
    return f"{local:%a} {local.day} {local:%b}, {local:%H:%M} ({tz.key})"


def booking_link(*, provider: str | None, title: str, attendee: str, slot: Slot) -> str | None:
    """A prefilled "new event" link in the manager's own calendar app, when we know which."""
    if provider == "google":
        dates = f"{slot.start:%Y%m%dT%H%M%SZ}/{slot.end:%Y%m%dT%H%M%SZ}"
        query = urlencode({"action": "TEMPLATE", "text": title, "dates": dates, "add": attendee})
        return f"https://calendar.google.com/calendar/render?{query}"
    if provider == "microsoft":
        query = urlencode({"subject": title, "to": attendee,
                           "startdt": slot.start.isoformat(), "enddt": slot.end.isoformat()})
        return f"https://outlook.office.com/calendar/0/deeplink/compose?{query}"
    return None


_WHAT = {
    Outcome.CANCELLED_NO_RESCHEDULE: "cancelled",
    Outcome.DECLINED_BY_MANAGER: "declined",
    Outcome.DECLINED_BY_REPORT: "declined",
}


def _unseen_calendars(facts: AlertFacts) -> str:
    """"Priya's calendar", "your calendar" or "your calendar or Priya's"."""
    you = "you" in facts.unseen
    others = [f"{name}'s" for name in facts.unseen if name != "you"]
    if you:
        return "your calendar" + "".join(f" or {o}" for o in others)
    return " or ".join(others) + " calendar"


def _slot_texts(facts: AlertFacts) -> tuple[str, str]:
    """(the line above the slots, a note when a calendar could not be seen)."""
    report = facts.report_name
    if not facts.unseen:
        return (f"Times around the dropped meeting when you and {report} are both free, "
                "within working hours:", "")
    unseen = _unseen_calendars(facts)
    if "you" in facts.unseen:
        intro = (f"Rapport could not see {unseen}, so these times are only free in "
                 f"{report}'s (and within working hours for both of you); check your own "
                 "calendar before you book one:")
    else:
        intro = (f"Rapport could not see {unseen}, so these times are only free in yours "
                 f"(and within working hours for both of you); check with {report} before "
                 "you book one:")
    return intro, f"Rapport could not see {unseen}."


def alert_context(facts: AlertFacts) -> dict[str, object]:
    """The template values: every one a plain string or number (escaped by the template)."""
    tz = facts.manager_zone
    slots = []
    for number, slot in enumerate(facts.slots, start=1):
        when = _when(slot.start, tz)
        slots.append({
            "number": number,
            "when": when,
            "until": f"{slot.end.astimezone(tz):%H:%M}",
            "link": booking_link(provider=facts.provider, title=facts.title,
                                 attendee=facts.report_email, slot=slot),
            "instruction": (f"Create a {facts.duration_minutes}-minute meeting with "
                            f"{facts.report_name} ({facts.report_email}) starting {when}."),
        })
    slots_intro, unseen_note = _slot_texts(facts)
    return {
        "title": facts.title,
        "greeting": greeting(facts.manager_name),
        "report_name": facts.report_name,
        "report_email": facts.report_email,
        "dropped_by": facts.dropped_by,
        "what": _WHAT.get(facts.outcome, "dropped"),
        "when": _when(facts.original_start, tz),
        "duration_minutes": facts.duration_minutes,
        "slots": slots,
        "slots_checked": facts.slots_checked,
        "slots_intro": slots_intro,
        "unseen_note": unseen_note,
    }


def render_alert(facts: AlertFacts) -> RenderedEmail:
    """Subject, text and HTML of the alert about one dropped occurrence."""
    return render_email(template=TEMPLATE, context=alert_context(facts))


def quiet_until(now: datetime, *, quiet_hours: tuple[time, time], tz: ZoneInfo) -> datetime | None:
    """The end of the quiet hours (in `tz`) when `now` falls inside them, else None."""
    if not within_span(now, quiet_hours, tz):
        return None
    return span_end_after(now, quiet_hours, tz)
