"""Topics queued for a pair's next 1:1 and the action items that carry over until closed.

A topic planned into an occurrence stays tied to it, and leaves the queue only when that
meeting took place (held, or held at another time). When the occurrence is dropped instead
(cancelled, its series split or deleted, declined, or over without our knowing that it took
place), the topic is free again and goes to the pair's next occurrence, whatever series that
is in. Action items are not tied to an occurrence: they are followed up until closed.
Every change here marks the pair (`wanted.want_plan`) in the same transaction, so its agendas
are planned again at the next pass, and only then.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from service.agenda.models import ActionItem, PairTopic
from service.agenda.wanted import want_plan
from service.db import chunks
from service.pairs.models import Occurrence, OccurrenceStatus, Outcome, Pair

MAX_TEXT = 500
AUTHORS = ("report", "manager")


class ItemError(ValueError):
    """A topic or action item request that cannot be honoured (message says why)."""


def _clean(text: str) -> str:
    cleaned = " ".join(text.split())
    if not cleaned:
        raise ItemError("the text is empty")
    if len(cleaned) > MAX_TEXT:
        raise ItemError(f"the text is longer than {MAX_TEXT} characters")
    return cleaned


def _pair(session: Session, pair_id: int) -> Pair:
    pair = session.get(Pair, pair_id)
    if pair is None:
        raise ItemError(f"no pair with id {pair_id} (see `rapport pairs`)")
    return pair


def add_topic(session: Session, *, pair_id: int, text: str, added_by: str = "report",
              private: bool = False) -> PairTopic:
    """Queue a topic for the pair's next 1:1; the report's topics are listed first. A
    private topic is the manager's own: it never goes into the invite."""
    if added_by not in AUTHORS:
        raise ItemError(f"a topic is added by the report or the manager, not {added_by!r}")
    if private and added_by != "manager":
        raise ItemError("only the manager keeps private topics")
    _pair(session, pair_id)
    topic = PairTopic(pair_id=pair_id, text=_clean(text), added_by=added_by, private=private)
    session.add(topic)
    session.flush()
    want_plan(session, [pair_id])
    return topic


def add_action_item(session: Session, *, pair_id: int, text: str,
                    owner: str = "report") -> ActionItem:
    """Record something agreed; it is followed up in every agenda until it is closed."""
    if owner not in AUTHORS:
        raise ItemError(f"an action item belongs to the report or the manager, not {owner!r}")
    _pair(session, pair_id)
    item = ActionItem(pair_id=pair_id, text=_clean(text), owner=owner)
    session.add(item)
    session.flush()
    want_plan(session, [pair_id])
    return item


def close_action_item(session: Session, *, item_id: int, now: datetime,
                      closed_by: str | None = None) -> ActionItem:
    """Mark an action item done (idempotent: closing twice keeps the first date and who)."""
    item = session.get(ActionItem, item_id)
    if item is None:
        raise ItemError(f"no action item with id {item_id}")
    if item.closed_at is None:
        item.closed_at, item.closed_by = now, closed_by
        want_plan(session, [item.pair_id])
    return item


def drop_action_item(session: Session, *, item_id: int) -> ActionItem | None:
    """Take an open action item away: it should not have been recorded. Unlike closing, it
    leaves no row, so no metric counts it as done and no agenda follows it up; an item
    already done (or gone) stays as it is, and None says so."""
    item = session.get(ActionItem, item_id)
    if item is None or item.closed_at is not None:
        return None
    session.delete(item)
    session.flush()
    want_plan(session, [item.pair_id])
    return item


def open_action_items(session: Session, *, pair_id: int | None = None) -> list[ActionItem]:
    """Open action items, oldest first, of one pair or all."""
    query = select(ActionItem).where(ActionItem.closed_at.is_(None))
    if pair_id is not None:
        query = query.where(ActionItem.pair_id == pair_id)
    return list(session.scalars(query.order_by(ActionItem.created_at, ActionItem.id)))


TOOK_PLACE = (Outcome.HELD.value, Outcome.MOVED.value)


def _took_place() -> ColumnElement[bool]:
    """The topic's occurrence took place: the topic was discussed and leaves the queue."""
    return and_(Occurrence.outcome.is_not(None), Occurrence.outcome.in_(TOOK_PLACE))


def _dropped() -> ColumnElement[bool]:
    """The topic's occurrence will not take place (or not as far as we know)."""
    return or_(Occurrence.status == OccurrenceStatus.CANCELLED,
               and_(Occurrence.outcome.is_not(None), Occurrence.outcome.not_in(TOOK_PLACE)))


def queued_topics(session: Session, *, pair_id: int) -> list[PairTopic]:
    """Topics still waiting to be discussed, oldest first."""
    return list(session.scalars(
        select(PairTopic)
        .outerjoin(Occurrence, Occurrence.id == PairTopic.used_in_occurrence_id)
        .where(PairTopic.pair_id == pair_id,
               or_(PairTopic.used_in_occurrence_id.is_(None), ~_took_place()))
        .order_by(PairTopic.created_at, PairTopic.id)))


def topics_for_occurrences(session: Session,
                           occurrence_of: dict[int, int]) -> dict[int, list[PairTopic]]:
    """The queued topics that may go into each pair's occurrence (pair id -> occurrence id),
    oldest first, read in one query: free ones, those already planned into it, and those
    whose occurrence was dropped. A topic planned into an occurrence that is still ahead (or
    over and not yet settled) stays with it."""
    found: dict[int, list[PairTopic]] = {pair_id: [] for pair_id in occurrence_of}
    for chunk in chunks(sorted(occurrence_of)):
        rows = session.execute(
            select(PairTopic, _dropped())
            .outerjoin(Occurrence, Occurrence.id == PairTopic.used_in_occurrence_id)
            .where(PairTopic.pair_id.in_(chunk),
                   or_(PairTopic.used_in_occurrence_id.is_(None), ~_took_place()))
            .order_by(PairTopic.pair_id, PairTopic.created_at, PairTopic.id))
        for topic, dropped in rows:
            if dropped or topic.used_in_occurrence_id in (None, occurrence_of[topic.pair_id]):
                found[topic.pair_id].append(topic)
    return found


def release_topics(session: Session, *, occurrence_id: int) -> None:
    """Free the topics planned into an occurrence that will not take place.

    Used when the provider shows the occurrence cancelled or gone before our sync has: the
    topics go back to the queue for the pair's next occurrence.
    """
    freed = update(PairTopic).where(PairTopic.used_in_occurrence_id == occurrence_id) \
        .values(used_in_occurrence_id=None).returning(PairTopic.pair_id)
    want_plan(session, session.scalars(freed).all())


def list_topics(session: Session, *,
                pair_id: int | None = None) -> list[tuple[PairTopic, Occurrence | None]]:
    """Topics still queued, oldest first, each with the occurrence it is planned into (if any).

    The same rule as `queued_topics`: a topic whose meeting took place is history, not a
    pending topic; one planned into a dropped meeting is still queued for the next one."""
    query = (select(PairTopic, Occurrence)
             .outerjoin(Occurrence, Occurrence.id == PairTopic.used_in_occurrence_id)
             .where(or_(PairTopic.used_in_occurrence_id.is_(None), ~_took_place())))
    if pair_id is not None:
        query = query.where(PairTopic.pair_id == pair_id)
    rows = session.execute(query.order_by(PairTopic.pair_id, PairTopic.created_at, PairTopic.id))
    return [(topic, occurrence) for topic, occurrence in rows.tuples()]


def remove_topic(session: Session, *, topic_id: int) -> PairTopic:
    """Take a topic off the queue (someone queued it by mistake, or it was settled already)."""
    topic = session.get(PairTopic, topic_id)
    if topic is None:
        raise ItemError(f"no topic with id {topic_id} (see `rapport topic list`)")
    session.delete(topic)
    session.flush()
    want_plan(session, [topic.pair_id])
    return topic
