"""Is this recurring event a 1:1? Structure decides, the title adjusts the confidence.

A 1:1 is recurring and has exactly two people who are not rooms or resources: the organizer
(taken as the manager) and one other attendee (the report). The calendar owner's own entry is
one of the two, never a third. A manual override (include / exclude) always wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from connectors.base import Attendee, CalendarEvent
from service.pairs.models import Override

THRESHOLD = 0.5
STRUCTURAL_BASE = 0.55

_ONE_ON_ONE = re.compile(
    r"(?<![\d])1\s*(?:[:\-/x]|on)\s*1(?![\d])|\bone[\s\-]*on[\s\-]*one\b|\b1on1\b|\bo3\b",
    re.IGNORECASE,
)
_SOFT_HINTS = re.compile(r"\bcatch[\s\-]?up\b|\bcheck[\s\-]?in\b|\bsync[\s\-]?up\b", re.IGNORECASE)
_GROUP_WORDS = re.compile(
    r"\b(team|standup|stand-up|all[\s\-]?hands|review|planning|retro|interview|pairing|"
    r"workshop|training|demo|sprint|office hours|lunch)\b",
    re.IGNORECASE,
)
_NAME_SEPARATORS = re.compile(r"\s*(?:/|<>|&|\+|:|-|–|—|\||\bx\b|\band\b)\s*", re.IGNORECASE)
_RESOURCE_DOMAINS = ("resource.calendar.google.com",)


@dataclass(frozen=True)
class Detection:
    """What detection concluded for one series, with a reason a person can read."""

    human_count: int
    organizer: str | None
    other: str | None
    confidence: float
    reason: str

    @property
    def structurally_one_on_one(self) -> bool:
        """Exactly two humans: the only shape a pair can come from."""
        return self.human_count == 2 and self.organizer is not None and self.other is not None


def is_resource(attendee: Attendee) -> bool:
    """Rooms and equipment, by the provider's flag or a resource calendar address."""
    return attendee.is_resource or attendee.email.endswith(_RESOURCE_DOMAINS)


def humans_of(event: CalendarEvent) -> list[str]:
    """The distinct human participants: attendees that are not resources, plus the organizer."""
    emails: list[str] = []
    for attendee in event.attendees:
        email = attendee.email.lower()
        if not is_resource(attendee) and email not in emails:
            emails.append(email)
    if event.organizer and event.organizer.lower() not in emails:
        emails.insert(0, event.organizer.lower())
    return emails


def detect(event: CalendarEvent, *, display_names: dict[str, str] | None = None) -> Detection:
    """Score one occurrence (any copy, either side) of a recurring event."""
    humans = humans_of(event)
    organizer = event.organizer.lower() if event.organizer else None
    others = [h for h in humans if h != organizer]
    other = others[0] if len(others) == 1 else None
    if not event.is_occurrence:
        return Detection(len(humans), organizer, other, 0.0, "not recurring")
    if len(humans) != 2 or organizer is None or other is None:
        return Detection(len(humans), organizer, other, 0.0, f"{len(humans)} people, not two")
    score, reasons = STRUCTURAL_BASE, ["recurring with exactly two people"]
    title = event.title or ""
    if _ONE_ON_ONE.search(title):
        score += 0.4
        reasons.append("title says 1:1")
    elif _SOFT_HINTS.search(title):
        score += 0.15
        reasons.append("title reads like a catch-up")
    if _names_in_title(title, [organizer, other], display_names or {}):
        score += 0.15
        reasons.append("title names both people")
    if _GROUP_WORDS.search(title) and not _ONE_ON_ONE.search(title):
        score -= 0.3
        reasons.append("title reads like a working session")
    return Detection(2, organizer, other, round(max(0.0, min(score, 1.0)), 2), "; ".join(reasons))


def is_one_on_one(*, confidence: float, human_count: int, override: Override | None) -> bool:
    """The verdict: the override wins, then the confidence threshold for two-person series."""
    if override == Override.INCLUDE:
        return human_count == 2
    if override == Override.EXCLUDE:
        return False
    return human_count == 2 and confidence >= THRESHOLD


def _names_in_title(title: str, emails: list[str], display_names: dict[str, str]) -> bool:
    words = {w.lower() for w in re.findall(r"[^\W\d_]+", title)}
    if not _NAME_SEPARATORS.search(title):
        return False

    def mentioned(email: str) -> bool:
        candidates = {email.split("@", 1)[0].split(".")[0].lower()}
        name = display_names.get(email)
        if name:
            candidates.add(name.split()[0].lower())
        return bool(candidates & words)

    return sum(mentioned(e) for e in emails) >= 1
