"""The report's topics come first, open action items carry over, and both reach the invite."""

from __future__ import annotations

import html

from sqlalchemy import select

from service.agenda.block import extract_block
from service.agenda.items import add_action_item, add_topic, close_action_item
from service.pairs.models import Series
from workers import actors

from .conftest import Harness, ProviderCase


def _next_invite_block(harness: Harness, case: ProviderCase) -> str:
    sandbox = harness.sandbox(case.provider)
    start = next(s for s in sandbox.occurrence_starts(case.series_key, until=harness.horizon_end())
                 if s > harness.clock())
    block = extract_block(sandbox.description_of(case.manager, case.series_key, start))
    assert block is not None
    return block


def test_topics_and_open_action_items_are_written_report_first(harness: Harness,
                                                               case: ProviderCase) -> None:
    harness.connect(case.manager)
    harness.sync()
    with harness.runtime.factory.begin() as session:
        pair_id = session.scalar(select(Series.pair_id).where(Series.other_email == case.report))
        assert pair_id is not None
        add_topic(session, pair_id=pair_id, text="Manager wants to talk about the Q1 plan",
                  added_by="manager")
        add_topic(session, pair_id=pair_id, text="Report's question about <on-call> & pay")
        item = add_action_item(session, pair_id=pair_id, text="Draft the promotion case")
        item_id = item.id
    actors.reconcile.send()
    harness.run()
    block = html.unescape(_next_invite_block(harness, case))
    report_at = block.index("Report's question about <on-call> & pay")
    manager_at = block.index("Manager wants to talk about the Q1 plan")
    follow_up_at = block.index("Draft the promotion case")
    assert report_at < manager_at < follow_up_at

    with harness.runtime.factory.begin() as session:
        close_action_item(session, item_id=item_id, now=harness.clock())
    actors.reconcile.send()
    harness.run()
    assert "Draft the promotion case" not in _next_invite_block(harness, case)
