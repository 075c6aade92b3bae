"""Taking back on the agenda page: the author removes their own queued topic, either person
drops an open action item; nothing of someone else, of another pair or already done moves.
A real SQLite file of the production schema (`factory`, tests/unit/conftest.py), the page's
own service functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.agenda.items import ItemError, add_action_item, add_topic, close_action_item
from service.agenda.models import ActionItem, PairTopic
from service.agenda.page import build_page, drop_page_items, remove_page_topic
from service.metrics.queries import load_closed_items
from service.pairs.models import Pair
from service.people.models import Person
from service.settings import Settings

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


@dataclass(frozen=True)
class Two:
    pair_id: int
    report_id: int
    manager_id: int
    other_pair_id: int  # the same manager with another report


@pytest.fixture
def two(factory: sessionmaker[Session]) -> Two:
    with factory.begin() as session:
        manager, report, other = (Person(email=f"{name}@acme.test", display_name=name.title())
                                  for name in ("dana", "lee", "kim"))
        session.add_all([manager, report, other])
        session.flush()
        pair, theirs = Pair(manager_id=manager.id, report_id=report.id), \
            Pair(manager_id=manager.id, report_id=other.id)
        session.add_all([pair, theirs])
        session.flush()
        return Two(pair.id, report.id, manager.id, theirs.id)


def _remove(session: Session, settings: Settings, two: Two, topic_id: int, *,
            person_id: int | None = None, private: bool = False) -> list[int]:
    return remove_page_topic(session, settings=settings, pair_id=two.pair_id,
                             person_id=person_id or two.report_id, topic_id=topic_id,
                             private=private, now=NOW)


def _topics(factory: sessionmaker[Session]) -> list[str]:
    with factory() as session:
        return list(session.scalars(select(PairTopic.text).order_by(PairTopic.id)))


def test_the_author_removes_their_queued_topic(
        factory: sessionmaker[Session], settings: Settings, two: Two) -> None:
    with factory.begin() as session:
        mine = add_topic(session, pair_id=two.pair_id, text="Typo'd topic").id
        add_topic(session, pair_id=two.pair_id, text="Keep this one")
    with factory.begin() as session:
        view = build_page(session, settings=settings, pair_id=two.pair_id,
                          person_id=two.report_id, private=False, now=NOW)
        assert [t.text for t in view.own_topics] == ["Typo'd topic", "Keep this one"]
        session.rollback()
    with factory.begin() as session:
        _remove(session, settings, two, mine)
    assert _topics(factory) == ["Keep this one"]  # (the next invite: tests/e2e)


def test_someone_elses_topic_another_pairs_or_a_private_one_from_the_shared_link_stays(
        factory: sessionmaker[Session], settings: Settings, two: Two) -> None:
    with factory.begin() as session:
        managers = add_topic(session, pair_id=two.pair_id, text="The manager's topic",
                             added_by="manager").id
        private = add_topic(session, pair_id=two.pair_id, text="Private prep",
                            added_by="manager", private=True).id
        theirs = add_topic(session, pair_id=two.other_pair_id, text="Another pair's topic").id
    refused = [(managers, two.report_id, False),  # not the report's own
               (theirs, two.report_id, False),  # of another pair, by its report's role
               (private, two.manager_id, False),  # the manager's, but from the shared link
               (private, two.report_id, True)]  # the report has no private scope
    for topic_id, person_id, scope_private in refused:
        with factory.begin() as session, pytest.raises(ItemError, match="not one of yours"):
            _remove(session, settings, two, topic_id, person_id=person_id,
                    private=scope_private)
    with factory.begin() as session:
        view = build_page(session, settings=settings, pair_id=two.pair_id,
                          person_id=two.manager_id, private=False, now=NOW)
        assert [t.text for t in view.own_topics] == ["The manager's topic"]
        session.rollback()
    with factory.begin() as session:  # the manager's own link may remove the private one
        _remove(session, settings, two, private, person_id=two.manager_id, private=True)
    assert _topics(factory) == ["The manager's topic", "Another pair's topic"]


def test_a_dropped_item_is_gone_and_not_counted_done_a_ticked_one_is(
        factory: sessionmaker[Session], settings: Settings, two: Two) -> None:
    with factory.begin() as session:
        wrong = add_action_item(session, pair_id=two.pair_id, text="Recorded by mistake").id
        done = add_action_item(session, pair_id=two.pair_id, text="Send the draft").id
        theirs = add_action_item(session, pair_id=two.other_pair_id, text="Theirs").id
        close_action_item(session, item_id=done, now=NOW - timedelta(hours=1),
                          closed_by="report")
    with factory.begin() as session:
        drop_page_items(session, settings=settings, pair_id=two.pair_id,
                        person_id=two.manager_id, item_ids=[wrong, done, theirs], now=NOW)
    with factory() as session:
        left = session.scalars(select(ActionItem.text).order_by(ActionItem.id)).all()
        assert left == ["Send the draft", "Theirs"]  # done stays done, another pair's stays
        assert session.get_one(ActionItem, theirs).closed_at is None
        closed = load_closed_items(session, pair_ids=[two.pair_id], start=NOW - timedelta(
            days=7), end=NOW + timedelta(days=1))
        assert len(closed[two.pair_id]) == 1
        view = build_page(session, settings=settings, pair_id=two.pair_id,
                          person_id=two.report_id, private=False, now=NOW)
        assert all(i.id != wrong for s in view.sections for i in s.items)


def test_a_person_of_another_pair_can_neither_remove_nor_drop(
        factory: sessionmaker[Session], settings: Settings, two: Two) -> None:
    with factory.begin() as session:
        topic = add_topic(session, pair_id=two.pair_id, text="Ours").id
        item = add_action_item(session, pair_id=two.pair_id, text="Ours too").id
        outsider = session.get_one(Pair, two.other_pair_id).report_id
    with factory.begin() as session, pytest.raises(ItemError, match="not for this pair"):
        _remove(session, settings, two, topic, person_id=outsider)
    with factory.begin() as session, pytest.raises(ItemError, match="not for this pair"):
        drop_page_items(session, settings=settings, pair_id=two.pair_id, person_id=outsider,
                        item_ids=[item], now=NOW)
    assert _topics(factory) == ["Ours"]
    with factory() as session:
        assert session.get(ActionItem, item) is not None
