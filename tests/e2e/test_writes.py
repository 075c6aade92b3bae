"""Writing the agenda block: people's text kept, conflicts merged, no needless writes."""

from __future__ import annotations

from workers import actors

from .conftest import Harness, ProviderCase
from .helpers import (
    add_topic,
    agenda_for_next,
    block_count,
    calls,
    connect_pair,
    outside_block,
    upcoming,
    visible,
)


def test_conflict_with_a_human_edit_keeps_their_text_and_updates_our_block(
        harness: Harness, case: ProviderCase) -> None:
    connect_pair(harness, case)
    harness.sync()
    sandbox = harness.sandbox(case.provider)
    start = upcoming(harness, case)[0]
    ours = sandbox.description_of(case.manager, case.series_key, start)
    # after our sync, a person edits the invite in the provider's UI, keeping our block
    sandbox.human_edit_description(
        case.manager, case.series_key, start,
        "Before we start: the demo moved to Friday.\n" + visible(ours) + "\nPS: Q3 numbers & notes")
    edited = sandbox.description_of(case.manager, case.series_key, start)
    add_topic(harness, case, "Proposal for the conference talk")
    sandbox.clear_requests()

    actors.reconcile.send()  # plans the new agenda and writes it with the etag we last saw
    harness.run()

    served = calls(sandbox)
    assert len(served.status(412)) == 1
    assert [w.status for w in served.writes] == [412, 200]
    final = sandbox.description_of(case.manager, case.series_key, start)
    assert outside_block(final) == outside_block(edited)  # their text, byte for byte
    assert "Proposal for the conference talk" in visible(final)
    assert block_count(final) == 1

    sandbox.clear_requests()
    harness.sync()
    assert calls(sandbox).writes == []  # the merged write echoes back without a rewrite


def test_agenda_block_round_trips_through_the_providers_html_editor(
        harness: Harness, case: ProviderCase) -> None:
    connect_pair(harness, case)
    harness.sync()
    sandbox = harness.sandbox(case.provider)
    start = upcoming(harness, case)[0]
    ours = sandbox.description_of(case.manager, case.series_key, start)
    sandbox.human_edit_description(
        case.manager, case.series_key, start,
        "Notes from the manager & the report:\n  - hiring plan\n\n" + visible(ours) + "\nThanks!")
    edited = sandbox.description_of(case.manager, case.series_key, start)
    assert edited != ours

    sandbox.clear_requests()
    harness.sync()

    assert calls(sandbox).writes == []  # our block is recognised inside the editor's HTML
    assert sandbox.description_of(case.manager, case.series_key, start) == edited

    add_topic(harness, case, "Feedback on the <b>design</b> review")
    actors.reconcile.send()
    harness.run()

    assert len(calls(sandbox).writes) == 1
    final = sandbox.description_of(case.manager, case.series_key, start)
    assert outside_block(final) == outside_block(edited)
    assert block_count(final) == 1
    assert "Feedback on the <b>design</b> review" in visible(final)  # escaped, shown as typed

    sandbox.clear_requests()
    harness.sync()
    harness.sync()
    assert calls(sandbox).writes == []


def test_writing_the_same_agenda_twice_writes_once(harness: Harness,
                                                   case: ProviderCase) -> None:
    connect_pair(harness, case)
    harness.sync()
    sandbox = harness.sandbox(case.provider)
    add_topic(harness, case, "Team offsite plans")
    agenda_id, _ = agenda_for_next(harness, case)
    sandbox.clear_requests()
    actors.write_agenda.send(agenda_id)
    actors.write_agenda.send(agenda_id)
    harness.run()

    # whichever runs second finds the block already there (at most after a 412 and a read)
    assert [w.status for w in calls(sandbox).writes if w.status != 412] == [200]
    sandbox.clear_requests()
    actors.write_agenda.send(agenda_id)
    harness.run()
    assert calls(sandbox).writes == []
