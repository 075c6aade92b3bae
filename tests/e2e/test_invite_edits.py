"""The agenda in the invite is two-way: what people type or tick there becomes the pair's.

People edit the block in Google Calendar's or Outlook's editor, which store HTML; the edits
here are written the way each editor writes them (Google: ``<br>`` lines, ``&nbsp;``,
``<ul><li>`` lists; Outlook on the web: a whole document, one ``<div class="elementToProof">``
per line, ``<br>`` in empty ones) and travel through the sandboxes to the real sync.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from service.agenda.block import FOOTER, block_lines_in, extract_block
from service.agenda.items import add_action_item
from service.agenda.models import ActionItem, PairTopic
from workers import actors

from .conftest import Harness, ProviderCase
from .helpers import add_topic, calls, case_series, connect_pair, outside_block, upcoming, visible

DRAFT = "Send the draft of the hiring plan"
ADDED = "Ask about the offsite budget"
TALK = "Proposal for the conference talk"
HOSTILE = '<img src=x onerror="alert(1)"> javascript:alert(2) & more'

_OUTLOOK_HEAD = ('<html><head><meta http-equiv="Content-Type" content="text/html; '
                 'charset=utf-8"><style type="text/css" style="display:none">P {margin-top:0;'
                 'margin-bottom:0;}</style></head><body dir="ltr">')
_OUTLOOK_DIV = ('<div class="elementToProof" style="font-family: Aptos, Aptos_EmbeddedFont, '
                'Calibri, Helvetica, sans-serif; font-size: 12pt; color: rgb(0, 0, 0);">{}</div>')


def google_editor(before: str, lines: Sequence[str], added: Sequence[str]) -> str:
    """Google's editor: lines joined by <br>, a leading &nbsp;, a person's list as <ul><li>."""
    body = "<br>".join(html.escape(line, quote=False) for line in lines[:-1])
    items = "".join(f"<li>{html.escape(text, quote=False)}</li>" for text in added)
    return (f"{html.escape(before)}<br><br>{body}<ul>{items}</ul>"
            f"{html.escape(lines[-1], quote=False)}")


def outlook_editor(before: str, lines: Sequence[str], added: Sequence[str]) -> str:
    """Outlook on the web: a document, one div per line, &nbsp; for runs of spaces."""
    def div(text: str) -> str:
        return _OUTLOOK_DIV.format(html.escape(text).replace("  ", "&nbsp; ") or "<br>")
    rows = [div(before), div(""), *(div(line) for line in lines[:-1]),
            *(div(text) for text in added), div(lines[-1])]
    return _OUTLOOK_HEAD + "".join(rows) + "</body></html>"


EDITORS: dict[str, Callable[[str, Sequence[str], Sequence[str]], str]] = {
    "google": google_editor, "microsoft": outlook_editor}


def _block_lines(harness: Harness, case: ProviderCase, start: datetime) -> list[str]:
    description = harness.sandbox(case.provider).description_of(case.manager, case.series_key,
                                                                 start)
    lines = block_lines_in(description)
    assert lines is not None, "no agenda block in the invite"
    return lines


def _with_item(harness: Harness, case: ProviderCase) -> tuple[int, datetime]:
    """Connect the pair, give it an open action item, and let Rapport write it."""
    connect_pair(harness, case)
    harness.sync()
    pair_id = case_series(harness, case).pair_id
    assert pair_id is not None
    with harness.runtime.factory.begin() as session:
        item_id = add_action_item(session, pair_id=pair_id, text=DRAFT).id
    actors.reconcile.send()
    harness.run()
    return item_id, upcoming(harness, case)[0]


def _person_edits(harness: Harness, case: ProviderCase, start: datetime, *,
                  tick: str = "☑", added: Sequence[str] = (ADDED,),
                  drop: Callable[[str], bool] = lambda line: False) -> str:
    """Someone ticks the item, adds lines and maybe deletes some, in the provider's editor."""
    lines = [line.replace("☐", tick, 1) if DRAFT in line else line
             for line in _block_lines(harness, case, start) if not drop(line)]
    edited = EDITORS[case.provider]("Notes from Monday", lines, added)
    harness.sandbox(case.provider).human_edit_description(case.manager, case.series_key, start,
                                                          edited)
    return harness.sandbox(case.provider).description_of(case.manager, case.series_key, start)


def _rapport_rewrites(harness: Harness, case: ProviderCase, start: datetime) -> list[str]:
    """After the person's edit is synced, Rapport has news of its own (a topic queued from
    elsewhere) and rewrites the block; the lines it wrote."""
    harness.sync()
    add_topic(harness, case, TALK)
    actors.reconcile.send()
    harness.run()
    return _block_lines(harness, case, start)


def _item(harness: Harness, item_id: int) -> ActionItem:
    with harness.session() as session:
        item = session.get(ActionItem, item_id)
        assert item is not None
        session.expunge_all()
        return item


def _topics(harness: Harness) -> list[tuple[str, str]]:
    with harness.session() as session:
        return [(t.text, t.added_by) for t in session.scalars(select(PairTopic))]


@pytest.mark.parametrize("tick", ["☑", "[x]", "✅"])
def test_a_tick_in_the_invite_closes_the_item_and_an_added_line_becomes_a_topic(
        harness: Harness, case: ProviderCase, tick: str) -> None:
    item_id, start = _with_item(harness, case)
    assert any(line.startswith("☐ ") and line.endswith(f"{DRAFT} (#{item_id})")
               for line in _block_lines(harness, case, start))
    edited = _person_edits(harness, case, start, tick=tick)
    sandbox = harness.sandbox(case.provider)
    sandbox.clear_requests()

    harness.sync()

    item = _item(harness, item_id)
    assert item.closed_at is not None and item.closed_by == "someone"
    assert (ADDED, "someone") in _topics(harness)
    lines = _block_lines(harness, case, start)
    assert not any(DRAFT in line for line in lines)  # done: gone from the agenda
    assert lines[lines.index("Added in the invite:") + 1] == f"• {ADDED}"
    final = sandbox.description_of(case.manager, case.series_key, start)
    assert outside_block(final)[0] == outside_block(edited)[0]  # their text before, unchanged
    # one write; the report's sync, running at once, may try too and meet a 412 that shows
    # the block already there
    assert [w.status for w in calls(sandbox).writes].count(200) == 1

    sandbox.clear_requests()
    harness.sync()
    assert calls(sandbox).writes == []  # our rewrite echoes back and is not read as an edit
    assert _topics(harness) == [(ADDED, "someone")]


def test_a_line_added_in_the_invite_is_kept_by_the_next_rewrite(
        harness: Harness, case: ProviderCase) -> None:
    _, start = _with_item(harness, case)
    _person_edits(harness, case, start, tick="☐")

    lines = _rapport_rewrites(harness, case, start)

    assert f"• {TALK}" in lines
    assert f"• {ADDED}" in lines
    assert any(DRAFT in line and line.startswith("☐ ") for line in lines)  # not ticked


def test_concurrent_edits_by_a_person_and_by_rapport_keep_both(
        harness: Harness, case: ProviderCase) -> None:
    item_id, start = _with_item(harness, case)
    edited = _person_edits(harness, case, start)  # Rapport has not synced since
    add_topic(harness, case, TALK)
    sandbox = harness.sandbox(case.provider)
    sandbox.clear_requests()

    actors.reconcile.send()  # writes with the etag it last saw: 412, re-read, merge
    harness.run()

    statuses = [w.status for w in calls(sandbox).writes]
    assert statuses[0] == 412 and statuses.count(200) == 1
    lines = _block_lines(harness, case, start)
    assert f"• {TALK}" in lines  # Rapport's change
    assert f"• {ADDED}" in lines  # the person's line
    assert not any(DRAFT in line for line in lines)  # the person's tick
    assert _item(harness, item_id).closed_at is not None
    final = sandbox.description_of(case.manager, case.series_key, start)
    assert outside_block(final)[0] == outside_block(edited)[0]

    sandbox.clear_requests()
    harness.sync()
    assert calls(sandbox).writes == []


def test_a_planned_line_a_person_deleted_is_not_put_back(
        harness: Harness, case: ProviderCase) -> None:
    _, start = _with_item(harness, case)
    balance = next(line for line in _block_lines(harness, case, start)
                   if line.startswith("• ") and ":" in line)
    _person_edits(harness, case, start, tick="☐", added=(), drop=lambda line: line == balance)

    lines = _rapport_rewrites(harness, case, start)

    assert f"• {TALK}" in lines
    assert balance not in lines
    assert _topics(harness) == [(TALK, "report")]


def test_hostile_text_typed_into_the_invite_is_escaped_when_written_back(
        harness: Harness, case: ProviderCase) -> None:
    _, start = _with_item(harness, case)
    _person_edits(harness, case, start, tick="☐", added=(HOSTILE, "Rapport agenda (managed)"))

    harness.sync()

    assert (HOSTILE, "someone") in _topics(harness)
    final = harness.sandbox(case.provider).description_of(case.manager, case.series_key, start)
    block = extract_block(final)
    assert block is not None
    assert "<img" not in block and "javascript:" not in block
    assert "&lt;img" in block
    assert visible(final).count("Rapport agenda (managed)") == 1  # only our own marker


def test_the_how_it_works_line_appears_once_per_series(
        harness: Harness, case: ProviderCase) -> None:
    harness.runtime.settings.agenda_horizon_days = 15
    harness.runtime.settings.agenda_occurrences = 2
    connect_pair(harness, case)
    harness.sync()
    first, second = upcoming(harness, case)[:2]
    assert FOOTER in _block_lines(harness, case, first)
    assert FOOTER not in _block_lines(harness, case, second)


REPORT_FIRST_NAME = {"google": "Sam", "microsoft": "Lee"}
ZONES = {"google": "America/New_York", "microsoft": "Europe/London"}


def test_an_open_item_shows_its_owner_and_follows_the_pair_into_a_recreated_series(
        harness: Harness, case: ProviderCase) -> None:
    item_id, start = _with_item(harness, case)
    owner_line = f"☐ {REPORT_FIRST_NAME[case.provider]}: {DRAFT} (#{item_id})"
    assert owner_line in _block_lines(harness, case, start)
    sandbox = harness.sandbox(case.provider)
    sandbox.delete_series(case.series_key)  # deleted and booked again in the same slot
    key = sandbox.create_series(organizer=case.manager, attendees=[case.report],
                                title="1:1 (new series)", first_start=start,
                                time_zone=ZONES[case.provider])
    harness.sync()
    renewed = ProviderCase(case.provider, key, case.manager, case.report)
    assert owner_line in _block_lines(harness, renewed, start)  # still open: carried over

    _person_edits(harness, renewed, start, added=())
    harness.sync()

    assert _item(harness, item_id).closed_at is not None
    assert not any(DRAFT in line for line in _block_lines(harness, renewed, start))


def test_a_tick_made_during_the_meeting_is_read_by_the_sync(
        harness: Harness, case: ProviderCase) -> None:
    item_id, start = _with_item(harness, case)
    harness.clock.now = start + timedelta(minutes=20)  # the meeting is on: no more writes
    edited = _person_edits(harness, case, start)

    harness.sync()

    assert _item(harness, item_id).closed_at is not None
    assert (ADDED, "someone") in _topics(harness)
    sandbox = harness.sandbox(case.provider)  # a started meeting's agenda is left as it is
    assert sandbox.description_of(case.manager, case.series_key, start) == edited
