"""Compose one occurrence's agenda: deterministic, pure, no I/O.

The order encodes good 1:1 practice: a personal check-in, the report's own topics first
(ownership stays with the employee), then the manager's and those typed into the invite, then
what was left open last time (with its owner), the section the kind of 1:1 is for (goals and
progress, career and growth, or progress, roadblocks and resources), and finally one or two
Balance prompts from the areas the pair has neglected lately. Questions marked private in the
bank never reach the shared block: one goes to the manager's private prep instead.
Randomness comes from a SHA-256 of the series key and date, never from ``hash()``, so every
worker on every machine writes the same agenda and an unchanged agenda costs no write.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from service.agenda.questions import (
    BY_AREA,
    CHECK_INS,
    KIND_SECTIONS,
    Area,
    CheckIn,
    Kind,
    KindPrompt,
    Question,
)

# With this many topics of their own, the pair gets one Balance prompt instead of two.
BUSY_AGENDA_TOPICS = 3

_Q = TypeVar("_Q", Question, CheckIn, KindPrompt)


class Source(enum.StrEnum):
    """Where an agenda item came from; the block renders one section per source."""

    REPORT = "report"
    MANAGER = "manager"
    INVITE = "invite"  # typed into the invite by someone the provider does not name
    FOLLOW_UP = "follow_up"
    KIND = "kind"
    BALANCE = "balance"


@dataclass(frozen=True)
class FollowUp:
    """An open action item to follow up: its id (how a tick in the invite finds it again) and
    the first name of its owner, when known."""

    text: str
    item_id: int | None = None
    owner: str | None = None


@dataclass(frozen=True)
class AgendaItem:
    """One line of the agenda; Balance prompts carry their area and question id, kind prompts
    their facet ("Goals") as `label`, follow-ups their action item id and owner."""

    source: Source
    text: str
    area: Area | None = None
    question_id: str | None = None
    label: str | None = None
    item_id: int | None = None


@dataclass(frozen=True)
class Agenda:
    """What goes into one occurrence's invite, plus what history should record.

    `first_of_series` brings the one-time explanation of how the block works; `dismissed`
    holds the lines people deleted from this occurrence's invite (see `invite_edits`), which
    the block leaves out; `private_prompts` are for the manager's eyes only, never rendered
    into the invite.
    """

    kind: Kind
    check_in: CheckIn
    items: tuple[AgendaItem, ...]
    areas: tuple[Area, ...]  # Balance areas this agenda covers, in item order
    question_ids: tuple[str, ...]  # check-in first, then Balance prompts
    section_ids: tuple[str, ...] = ()  # kind prompts, then private prompts: asked too
    private_prompts: tuple[str, ...] = ()
    first_of_series: bool = False
    dismissed: frozenset[str] = frozenset()
    links: tuple[tuple[str, str], ...] = ()  # (name, signed URL of the pair's agenda page)


def kind_for(*, cadence: Sequence[str], occurrence_index: int) -> Kind:
    """The kind of 1:1 for the pair's n-th occurrence, cycling through the cadence."""
    if not cadence:
        raise ValueError("cadence must name at least one kind of 1:1")
    if occurrence_index < 0:
        raise ValueError(f"occurrence_index must not be negative, got {occurrence_index}")
    return Kind(cadence[occurrence_index % len(cadence)].strip().lower())


def compose_agenda(
    *,
    series_key: str,
    occurrence_date: date,
    kind: Kind,
    report_topics: Sequence[str],
    manager_topics: Sequence[str],
    open_action_items: Sequence[FollowUp],
    recent_area_counts: Mapping[Area, int],
    recently_asked: Collection[str],
    invite_topics: Sequence[str] = (),
    first_of_series: bool = False,
    dismissed: Collection[str] = frozenset(),
) -> Agenda:
    """Build the agenda for one occurrence.

    `series_key` identifies the pair (it outlives any one series); `recent_area_counts`
    counts Balance areas over the pair's recent meetings; `recently_asked` holds the question
    ids (check-ins included) asked in those meetings. Fresh questions are preferred. When a
    pool is exhausted and `recently_asked` is a sequence (most recent first), the question
    asked longest ago comes back; from a set, a seeded choice does.
    """
    seed = hashlib.sha256(f"{series_key}\x1f{occurrence_date.isoformat()}".encode()).digest()
    people = _people_items(report_topics, manager_topics, invite_topics, open_action_items)
    own_topics = sum(1 for item in people if item.source is not Source.FOLLOW_UP)
    wanted = 1 if own_topics >= BUSY_AGENDA_TOPICS else 2
    areas = sorted(Area, key=lambda a: (recent_area_counts.get(a, 0), _rank(seed, a.value)))
    recency = _recency(recently_asked)
    prompts = [_pick(_shared(BY_AREA[a]), kind, recency, seed) for a in areas[:wanted]]
    private = _pick(_private(), kind, recency, seed)
    check_in = _pick(CHECK_INS, kind, recency, seed)
    facets = [_pick(pool, kind, recency, seed) for pool in KIND_SECTIONS[kind].facets]
    section = tuple(AgendaItem(source=Source.KIND, text=p.text, question_id=p.id, label=p.facet)
                    for p in facets)
    balance = tuple(
        AgendaItem(source=Source.BALANCE, text=q.text, area=q.area, question_id=q.id)
        for q in prompts
    )
    return Agenda(
        kind=kind,
        check_in=check_in,
        items=(*people, *section, *balance),
        areas=tuple(q.area for q in prompts),
        question_ids=(check_in.id, *(q.id for q in prompts)),
        section_ids=(*(p.id for p in facets), private.id),
        private_prompts=(private.text,),
        first_of_series=first_of_series,
        dismissed=frozenset(dismissed),
    )


def _shared(pool: Sequence[Question]) -> list[Question]:
    return [q for q in pool if not q.private]


def _private() -> list[Question]:
    return [q for pool in BY_AREA.values() for q in pool if q.private]


def _people_items(
    report_topics: Sequence[str], manager_topics: Sequence[str], invite_topics: Sequence[str],
    follow_ups: Sequence[FollowUp],
) -> list[AgendaItem]:
    """Clean and de-duplicate people's items, keeping the first (the report's) copy."""
    seen: set[str] = set()
    items = []
    entries = [
        *((Source.REPORT, FollowUp(t)) for t in report_topics),
        *((Source.MANAGER, FollowUp(t)) for t in manager_topics),
        *((Source.INVITE, FollowUp(t)) for t in invite_topics),
        *((Source.FOLLOW_UP, f) for f in follow_ups),
    ]
    for source, entry in entries:
        text = re.sub(r"\s+", " ", entry.text).strip()
        if text and text.casefold() not in seen:
            seen.add(text.casefold())
            items.append(AgendaItem(source=source, text=text, item_id=entry.item_id,
                                    label=entry.owner))
    return items


def _recency(recently_asked: Collection[str]) -> dict[str, int]:
    """Position of each id's latest ask, lower is more recent (all 0 when order is unknown)."""
    if not isinstance(recently_asked, Sequence):
        return dict.fromkeys(recently_asked, 0)
    recency: dict[str, int] = {}
    for position, qid in enumerate(recently_asked):
        recency.setdefault(qid, position)
    return recency


def _pick(pool: Sequence[_Q], kind: Kind, recency: Mapping[str, int], seed: bytes) -> _Q:
    """A fresh question suited to the kind, else any fresh one, else the least recently used."""
    fresh = [q for q in pool if q.id not in recency]
    suited = [q for q in fresh if not isinstance(q, Question) or kind in q.kinds]
    candidates = suited or fresh
    if candidates:
        return min(candidates, key=lambda q: _rank(seed, q.id))
    return min(pool, key=lambda q: (-recency[q.id], _rank(seed, q.id)))


def _rank(seed: bytes, token: str) -> int:
    """A stable pseudo-random rank of `token` for this occurrence."""
    return int.from_bytes(hashlib.sha256(seed + token.encode()).digest()[:8], "big")
