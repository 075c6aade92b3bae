"""Reading people's edits out of the block: ticks, added lines, deletions, editors' HTML."""

from __future__ import annotations

import html
from datetime import date

import pytest

from service.agenda.block import block_lines, block_lines_in, line_key, render_block_html
from service.agenda.generator import Agenda, FollowUp, compose_agenda
from service.agenda.invite_edits import read_edits
from service.agenda.questions import Kind


def make_agenda(**overrides: object) -> Agenda:
    arguments: dict[str, object] = {
        "series_key": "pair-1", "occurrence_date": date(2026, 1, 5), "kind": Kind.CORE,
        "report_topics": ["Career path"], "manager_topics": ["Budget & hiring"],
        "open_action_items": [FollowUp("Send the draft", item_id=12, owner="Lee"),
                              FollowUp("Book the room", item_id=13, owner="Dana")],
        "recent_area_counts": {}, "recently_asked": set(),
    }
    arguments.update(overrides)
    return compose_agenda(**arguments)  # type: ignore[arg-type]


BASE = block_lines(make_agenda())


def edited(*, replace: dict[str, str] | None = None, insert_after: dict[str, str] | None = None,
           drop: tuple[str, ...] = ()) -> list[str]:
    lines = []
    for line in BASE:
        if line in drop:
            continue
        for old, new in (replace or {}).items():
            line = line.replace(old, new)
        lines.append(line)
        for after, added in (insert_after or {}).items():
            if line == after:
                lines.append(added)
    return lines


@pytest.mark.parametrize("tick", ["☑", "☒", "✅", "✔", "✔\ufe0f", "✓", "[x]", "[X]"])
def test_a_ticked_box_marks_the_item_done(tick: str) -> None:
    edits = read_edits(BASE, edited(replace={"☐ Lee": f"{tick} Lee"}))
    assert edits.ticked == {12}
    assert not edits.added and not edits.removed_items and not edits.dismissed


def test_an_untouched_block_has_no_edits_whatever_the_editor_made_of_it() -> None:
    outlook = ("<html><head></head><body>" + "".join(
        f'<div class="elementToProof">{html.escape(line).replace(" ", "&nbsp;", 1)}</div>'
        for line in BASE) + "</body></html>")
    theirs = block_lines_in(outlook)
    assert theirs is not None
    assert not read_edits(BASE, theirs)
    google = block_lines_in("<p>Notes</p>" + render_block_html(make_agenda()))
    assert google is not None and not read_edits(BASE, google)


def test_a_line_added_under_a_persons_heading_is_theirs_elsewhere_someones() -> None:
    theirs = edited(insert_after={"• Career path": "• Promotion timeline",
                                  "For balance:": "Ask Dana about the offsite"})
    edits = read_edits(BASE, theirs)
    assert edits.added == [("report", "Promotion timeline"),
                           ("someone", "Ask Dana about the offsite")]


def test_a_list_item_added_under_the_managers_topics_becomes_a_manager_topic() -> None:
    block = render_block_html(make_agenda()).replace(
        "<br><b>Still open:</b>", "<ul><li>Hiring&nbsp;plan for Q3</li></ul><b>Still open:</b>")
    theirs = block_lines_in(f"<html><body><div>{block}</div></body></html>")
    assert theirs is not None
    assert read_edits(BASE, theirs).added == [("manager", "Hiring plan for Q3")]


def test_deleted_lines_close_items_remove_topics_and_dismiss_prompts() -> None:
    prompt = next(line for line in BASE if line.startswith("• Goals:"))
    check_in = next(line for line in BASE if line.startswith("Check-in:"))
    theirs = edited(drop=(prompt, check_in, "• Budget & hiring",
                          next(line for line in BASE if "(#13)" in line)))
    edits = read_edits(BASE, theirs)
    assert edits.removed_items == {13}
    assert edits.removed_topics == {line_key("• Budget & hiring")}
    assert edits.dismissed == {line_key(prompt), line_key(check_in)}
    assert not edits.added and not edits.ticked


def test_a_tick_on_an_id_we_did_not_write_here_is_only_text() -> None:
    theirs = edited(insert_after={"• Career path": "☑ Someone else's item (#999)"})
    edits = read_edits(BASE, theirs)
    assert edits.ticked == set()
    assert edits.added == [("report", "☑ Someone else's item (#999)")]


def test_dismissed_lines_stay_out_of_the_block() -> None:
    prompt = next(line for line in BASE if line.startswith("• Goals:"))
    lines = block_lines(make_agenda(dismissed={line_key(prompt)}))
    assert prompt not in lines
    assert "Goals and progress:" in lines  # the section keeps its other facet


def test_a_topic_whose_text_ends_like_an_item_id_never_counts_as_that_item() -> None:
    base = block_lines(make_agenda(report_topics=["Ship it (#12)"]))
    theirs = [line for line in base if line != "• Ship it (#12)"]
    edits = read_edits(base, theirs)
    assert edits.removed_items == set()  # item 12 stays open
    assert edits.removed_topics == {line_key("• Ship it (#12)")}
