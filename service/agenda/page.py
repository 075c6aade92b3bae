"""What a pair's agenda page shows, and what a person may change on it.

The agenda comes from the planner itself (`plan_occurrence`, in the caller's session, which
the page rolls back), so the page lists the items in the very order the invite will: the
check-in, the report's topics, the manager's, what was left open, the Balance prompts.
Everything is read for one pair only: the pair id comes from the signed link, and an action
item of another pair is neither shown nor closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.agenda.generator import Source
from service.agenda.items import (
    ItemError,
    add_topic,
    close_action_item,
    drop_action_item,
    queued_topics,
    remove_topic,
)
from service.agenda.models import ActionItem, PairTopic
from service.agenda.planner import plan_occurrence, plan_pairs
from service.agenda.questions import KIND_SECTIONS
from service.pairs.models import Occurrence, OccurrenceStatus, Pair, Series, SeriesStatus
from service.people.models import Person
from service.people.names import name_or_address
from service.settings import Settings

HISTORY_MEETINGS = 3
SECTION_TITLES = {  # the invite's order (`block._SECTIONS`); {kind}: the kind's own heading
    Source.REPORT: "{report}'s topics",
    Source.MANAGER: "{manager}'s topics",
    Source.INVITE: "Added in the invite",
    Source.FOLLOW_UP: "Left open from last time",
    Source.KIND: "{kind}",
    Source.BALANCE: "For balance",
}


@dataclass(frozen=True)
class OpenItem:
    """An action item still open, with a checkbox on the page."""

    id: int
    text: str
    owner: str  # the owner's name (or address)


@dataclass(frozen=True)
class OwnTopic:
    """A topic the viewer added that is still waiting to be discussed: they may remove it."""

    id: int
    text: str
    private: bool


@dataclass(frozen=True)
class Section:
    """One section of the next agenda, in the invite's order."""

    title: str
    lines: tuple[str, ...] = ()
    items: tuple[OpenItem, ...] = ()  # only the follow-up section has these


@dataclass(frozen=True)
class PastItem:
    """An action item from one of the last meetings, done or still open."""

    text: str
    owner: str
    done_at: datetime | None
    done_by: str | None


@dataclass(frozen=True)
class PastMeeting:
    start: datetime
    items: tuple[PastItem, ...]


@dataclass(frozen=True)
class PageView:
    """Everything the page renders for one person of one pair."""

    pair_id: int
    role: str  # "report" or "manager": whose link this is
    viewer: str
    other: str
    time_zone: str | None
    meeting_start: datetime | None
    kind: str | None
    check_in: str | None
    sections: tuple[Section, ...]
    private_topics: tuple[str, ...]  # empty unless the manager's private link opened it
    history: tuple[PastMeeting, ...] = field(default_factory=tuple)
    # questions worth asking in person that read badly in a shared invite (`Question.private`):
    # like private topics, only on the manager's private link
    private_prompts: tuple[str, ...] = ()
    own_topics: tuple[OwnTopic, ...] = ()  # the viewer's queued topics (private: own link)


def role_in(session: Session, *, pair_id: int, person_id: int) -> str | None:
    """"report" or "manager" when the person is one of the pair's two, else None."""
    pair = session.get(Pair, pair_id)
    if pair is None:
        return None
    return {pair.report_id: "report", pair.manager_id: "manager"}.get(person_id)


def next_occurrence(session: Session, *, pair_id: int,
                    now: datetime) -> tuple[Occurrence, Series] | None:
    """The pair's next confirmed meeting still ahead, in any of its active series."""
    row = session.execute(
        select(Occurrence, Series).join(Series, Series.id == Occurrence.series_id)
        .where(Series.pair_id == pair_id, Series.status == SeriesStatus.ACTIVE,
               Occurrence.status == OccurrenceStatus.CONFIRMED,
               Occurrence.scheduled_start >= now)
        .order_by(Occurrence.scheduled_start, Occurrence.id).limit(1)).first()
    return (row[0], row[1]) if row else None


def build_page(session: Session, *, settings: Settings, pair_id: int, person_id: int,
               private: bool, now: datetime,
               upcoming: tuple[Occurrence, Series] | None = None) -> PageView:
    """The page of one of the pair's people, for `upcoming` (default: the pair's next
    meeting). Plans that agenda in `session`: a page view rolls it back (it changes
    nothing). `private` shows the manager's private topics, and only ever the manager."""
    pair = session.get(Pair, pair_id)
    role = role_in(session, pair_id=pair_id, person_id=person_id)
    if pair is None or role is None:
        raise LookupError(f"person {person_id} is not one of pair {pair_id}")
    report, manager = session.get(Person, pair.report_id), session.get(Person, pair.manager_id)
    assert report is not None and manager is not None
    names = {"report": name_or_address(report, report.email),
             "manager": name_or_address(manager, manager.email)}
    open_items = list(session.scalars(
        select(ActionItem).where(ActionItem.pair_id == pair_id, ActionItem.closed_at.is_(None))
        .order_by(ActionItem.created_at, ActionItem.id)))
    upcoming = upcoming or next_occurrence(session, pair_id=pair_id, now=now)
    kind = check_in = None
    sections: list[Section] = []
    prompts: tuple[str, ...] = ()
    if upcoming is not None:
        planned = plan_occurrence(session, occurrence=upcoming[0], series=upcoming[1],
                                  settings=settings).agenda
        kind, check_in = planned.kind.value, planned.check_in.text
        prompts = planned.private_prompts
        for source, template in SECTION_TITLES.items():
            texts = [item.text for item in planned.items if item.source is source]
            title = template.format(**names, kind=KIND_SECTIONS[planned.kind].heading)
            if source is Source.FOLLOW_UP:
                if open_items:
                    sections.append(Section(title, items=tuple(
                        _open(item, names) for item in _in_order(open_items, texts))))
            elif texts:
                sections.append(Section(title, lines=tuple(texts)))
    else:
        topics = [t for t in queued_topics(session, pair_id=pair_id) if not t.private]
        for source, author in ((Source.REPORT, "report"), (Source.MANAGER, "manager")):
            texts = [t.text for t in topics if t.added_by == author]
            if texts:
                sections.append(Section(SECTION_TITLES[source].format(**names, kind=""),
                                        tuple(texts)))
        if open_items:
            sections.append(Section(SECTION_TITLES[Source.FOLLOW_UP],
                                    items=tuple(_open(i, names) for i in open_items)))
    mine = private and role == "manager"
    queued = queued_topics(session, pair_id=pair_id)
    private_topics = tuple(t.text for t in queued if t.private) if mine else ()
    viewer = report if role == "report" else manager
    return PageView(
        pair_id=pair_id, role=role, viewer=names[role],
        other=names["manager" if role == "report" else "report"],
        time_zone=viewer.time_zone, meeting_start=upcoming[0].scheduled_start if upcoming else None,
        kind=kind, check_in=check_in, sections=tuple(sections), private_topics=private_topics,
        history=past_meetings(session, pair_id=pair_id, now=now, names=names),
        private_prompts=prompts if mine else (),
        own_topics=tuple(OwnTopic(t.id, t.text, t.private)
                         for t in _own_topics(queued, role=role, private=mine)))


def _own_topics(queued: list[PairTopic], *, role: str, private: bool) -> list[PairTopic]:
    """The queued topics this person added; private ones only on the manager's own link."""
    return [t for t in queued if t.added_by == role and (private or not t.private)]


def _in_order(open_items: list[ActionItem], texts: list[str]) -> list[ActionItem]:
    """The open items in the agenda's order; any the agenda folded into a topic of the same
    words come last, so every open item keeps its checkbox."""
    by_text = {item.text.casefold(): item for item in reversed(open_items)}
    ordered = [by_text[t.casefold()] for t in texts if t.casefold() in by_text]
    return ordered + [item for item in open_items if item not in ordered]


def _open(item: ActionItem, names: dict[str, str]) -> OpenItem:
    return OpenItem(item.id, item.text, names.get(item.owner, item.owner))


def past_meetings(session: Session, *, pair_id: int, now: datetime,
                  names: dict[str, str]) -> tuple[PastMeeting, ...]:
    """The pair's last meetings (over, not cancelled), most recent first, each with the action
    items agreed there: those recorded against it, or else added after it and before the
    next one."""
    rows = session.scalars(
        select(Occurrence).join(Series, Series.id == Occurrence.series_id)
        .where(Series.pair_id == pair_id, Occurrence.status == OccurrenceStatus.CONFIRMED,
               Occurrence.scheduled_end <= now)
        .order_by(Occurrence.scheduled_start.desc()).limit(HISTORY_MEETINGS)).all()
    items = session.scalars(select(ActionItem).where(ActionItem.pair_id == pair_id)
                            .order_by(ActionItem.created_at, ActionItem.id)).all()
    meetings = []
    until: datetime | None = None
    for meeting in rows:
        agreed = [i for i in items if i.source_occurrence_id == meeting.id or (
            i.source_occurrence_id is None and i.created_at >= meeting.scheduled_start
            and (until is None or i.created_at < until))]
        meetings.append(PastMeeting(meeting.scheduled_start, tuple(
            PastItem(i.text, names.get(i.owner, i.owner), i.closed_at,
                     names.get(i.closed_by or "", i.closed_by)) for i in agreed)))
        until = meeting.scheduled_start
    return tuple(meetings)


def add_page_topic(session: Session, *, settings: Settings, pair_id: int, person_id: int,
                   text: str, private: bool, now: datetime) -> list[int]:
    """A topic typed on the page, by the link's person; the agendas whose invite now lacks
    it (to write). Raises ItemError (the message says why) for empty or too long text."""
    role = _role(session, pair_id=pair_id, person_id=person_id)
    add_topic(session, pair_id=pair_id, text=text, added_by=role,
              private=private and role == "manager")
    return plan_pairs(session, settings=settings, now=now, pair_ids={pair_id})


def remove_page_topic(session: Session, *, settings: Settings, pair_id: int, person_id: int,
                      topic_id: int, private: bool, now: datetime) -> list[int]:
    """Take back a topic the link's person added, while it still waits to be discussed; the
    agendas to write. Anyone else's topic, one of another pair, one already discussed in a
    meeting that took place, and a private one from the shared link raise ItemError."""
    role = _role(session, pair_id=pair_id, person_id=person_id)
    own = _own_topics(queued_topics(session, pair_id=pair_id), role=role,
                      private=private and role == "manager")
    if topic_id not in {t.id for t in own}:
        raise ItemError("that topic is not one of yours still waiting to be discussed")
    remove_topic(session, topic_id=topic_id)
    return plan_pairs(session, settings=settings, now=now, pair_ids={pair_id})


def close_page_items(session: Session, *, settings: Settings, pair_id: int, person_id: int,
                     item_ids: list[int], now: datetime) -> list[int]:
    """Close the ticked action items of this pair (ids of other pairs are ignored), noting who
    ticked them; the agendas to write."""
    role = _role(session, pair_id=pair_id, person_id=person_id)
    for item_id in _pair_items(session, pair_id=pair_id, item_ids=item_ids):
        close_action_item(session, item_id=item_id, now=now, closed_by=role)
    return plan_pairs(session, settings=settings, now=now, pair_ids={pair_id})


def drop_page_items(session: Session, *, settings: Settings, pair_id: int, person_id: int,
                    item_ids: list[int], now: datetime) -> list[int]:
    """Drop the ticked open action items of this pair (recorded by mistake: not done, and
    not followed up); ids of other pairs and items already done are ignored. Either of the
    two may drop any of the pair's items, as either may tick one done."""
    _role(session, pair_id=pair_id, person_id=person_id)
    for item_id in _pair_items(session, pair_id=pair_id, item_ids=item_ids):
        drop_action_item(session, item_id=item_id)
    return plan_pairs(session, settings=settings, now=now, pair_ids={pair_id})


def _role(session: Session, *, pair_id: int, person_id: int) -> str:
    role = role_in(session, pair_id=pair_id, person_id=person_id)
    if role is None:
        raise ItemError("this link is not for this pair")
    return role


def _pair_items(session: Session, *, pair_id: int, item_ids: list[int]) -> list[int]:
    """Those of the ids that name one of this pair's action items."""
    return list(session.scalars(select(ActionItem.id).where(ActionItem.pair_id == pair_id,
                                                            ActionItem.id.in_(item_ids))))


@dataclass(frozen=True)
class LeftOpen:
    """One pair's open action items, for the manager's page."""

    pair_id: int
    report: str
    items: tuple[OpenItem, ...]


def left_open(session: Session, *, manager_id: int) -> list[LeftOpen]:
    """What each of the manager's pairs left open, with its owner ("Lee: send the draft"),
    oldest first; pairs with nothing open are left out. Items belong to the pair, so they
    carry over across series splits, recreations and provider moves until done."""
    result = []
    for pair in session.scalars(select(Pair).where(Pair.manager_id == manager_id)
                                .order_by(Pair.id)):
        report, manager = session.get(Person, pair.report_id), session.get(Person, manager_id)
        assert report is not None and manager is not None
        names = {"report": name_or_address(report, report.email),
                 "manager": name_or_address(manager, manager.email)}
        items = session.scalars(
            select(ActionItem).where(ActionItem.pair_id == pair.id,
                                     ActionItem.closed_at.is_(None))
            .order_by(ActionItem.created_at, ActionItem.id)).all()
        if items:
            result.append(LeftOpen(pair.id, names["report"],
                                   tuple(_open(i, names) for i in items)))
    return result
