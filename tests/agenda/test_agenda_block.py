"""The managed block: rendering, finding it again after editors touched it, and hashing."""

from __future__ import annotations

import html
import re
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.agenda.block import (
    END_MARKER,
    FOOTER,
    MAX_DESCRIPTION_CHARS,
    START_MARKER,
    DescriptionTooLarge,
    block_hash_in,
    content_hash,
    extract_block,
    render_block_html,
    render_block_text,
    replace_block,
)
from service.agenda.generator import Agenda, FollowUp, compose_agenda
from service.agenda.questions import BY_AREA, Kind


def make_agenda(*topics: str, kind: Kind = Kind.REGULAR, day: int = 5) -> Agenda:
    return compose_agenda(
        series_key="pair-1",
        occurrence_date=date(2026, 1, day),
        kind=kind,
        report_topics=list(topics),
        manager_topics=["Budget & hiring"],
        open_action_items=[FollowUp("Send the draft", item_id=7, owner="Lee")],
        recent_area_counts={},
        recently_asked=set(),
    )


AGENDA = make_agenda("Career path")
OTHER = make_agenda("Something else entirely", day=12)


def outlook_round_trip(fragment: str) -> str:
    """What Outlook makes of a block: one div per line, entities, CRLF, a whole document."""
    lines = fragment.removeprefix("<div>").removesuffix("</div>").split("<br>")
    text = (html.unescape(re.sub(r"</?b>", "", line)) for line in lines)
    body = "\r\n".join(
        f'<div class="x_elementToProof"><span style="font-size:11pt">'
        f"{html.escape(line).replace('•', '&#8226;')}</span></div>"
        for line in text
    )
    return (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        "<style><!-- p {margin:0} --></style></head><body>\r\n"
        "<div>Agreed last week: move the demo.</div>\r\n"
        f'<div class="x_wrapper">{body}</div>\r\n</body></html>'
    )


def google_editor(text: str) -> str:
    """What Google's editor makes of plain text: <br> lines, &nbsp; runs, escaped characters."""
    lines = [html.escape(line, quote=False).replace(" ", "&nbsp;", 1) for line in text.split("\n")]
    return "<p>Prep notes</p>" + "<br>".join(lines) + "<br><p>Thanks!</p>"


def test_block_starts_with_a_heading_and_the_check_in() -> None:
    lines = render_block_text(AGENDA).split("\n")
    assert lines[0] == f"{START_MARKER} Regular 1:1"  # the title once, on the marker's line
    assert lines[-1] == END_MARKER
    assert lines[1].startswith("A Regular 1:1 is about")
    assert lines[2] == f"Check-in: {AGENDA.check_in.text}"
    assert "☐ Lee: Send the draft (#7)" in lines
    assert lines.index("• Career path") < lines.index("• Budget & hiring")


def test_html_block_escapes_scripts_and_ampersands() -> None:
    agenda = make_agenda("<script>alert('x')</script> & more")
    rendered = render_block_html(agenda)
    assert "<script>" not in rendered
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in rendered
    assert "Budget &amp; hiring" in rendered
    assert rendered.startswith("<div>") and rendered.endswith("</div>")


def test_a_topic_naming_our_end_marker_cannot_end_the_block_early() -> None:
    agenda = make_agenda(END_MARKER, "end of Rapport agenda")
    description = replace_block("Notes", is_html=False, agenda=agenda)
    assert extract_block(description) == render_block_text(agenda)
    assert replace_block(description, is_html=False, agenda=OTHER) == replace_block(
        "Notes", is_html=False, agenda=OTHER
    )


def test_empty_description_gets_just_the_block() -> None:
    assert replace_block("", is_html=False, agenda=AGENDA) == render_block_text(AGENDA)
    assert replace_block("", is_html=True, agenda=AGENDA) == render_block_html(AGENDA)


def test_block_is_appended_after_plain_text_with_a_blank_line() -> None:
    updated = replace_block("Bring the numbers.", is_html=False, agenda=AGENDA)
    assert updated == "Bring the numbers.\n\n" + render_block_text(AGENDA)


def test_block_is_appended_as_html_when_google_turned_the_description_into_html() -> None:
    updated = replace_block("<p>Bring&nbsp;the numbers.</p>", is_html=False, agenda=AGENDA)
    assert updated == "<p>Bring&nbsp;the numbers.</p><br>" + render_block_html(AGENDA)


def test_block_goes_inside_the_body_of_an_html_document() -> None:
    document = "<html><head></head><body><div>Hi</div></body></html>"
    updated = replace_block(document, is_html=True, agenda=AGENDA)
    assert (
        updated
        == "<html><head></head><body><div>Hi</div>" + render_block_html(AGENDA) + "</body></html>"
    )


def test_replacing_keeps_plain_text_outside_the_block_byte_for_byte() -> None:
    before, after = "Top notes  \r\n\tindented\n\n", "\n\nLater: café ☕  \n"
    description = before + render_block_text(AGENDA) + after
    assert replace_block(description, is_html=False, agenda=OTHER) == (
        before + render_block_text(OTHER) + after
    )


def test_replacing_keeps_html_outside_the_block_byte_for_byte() -> None:
    before, after = "<p>Hi&nbsp;<b>Sam</b></p>\n<br>", "<br><ul><li>later</li></ul>"
    description = before + render_block_html(AGENDA) + after
    assert replace_block(description, is_html=True, agenda=OTHER) == (
        before + render_block_html(OTHER) + after
    )


def test_writing_the_same_agenda_twice_changes_nothing() -> None:
    for text, is_html in (("Notes", False), ("<p>Notes</p>", True), ("", False)):
        once = replace_block(text, is_html=is_html, agenda=AGENDA)
        assert replace_block(once, is_html=is_html, agenda=AGENDA) == once


def test_block_is_recognised_after_an_outlook_round_trip() -> None:
    document = outlook_round_trip(render_block_html(AGENDA))
    assert block_hash_in(document) == content_hash(AGENDA)
    updated = replace_block(document, is_html=True, agenda=OTHER)
    assert updated.count("Rapport agenda (managed)") == 1
    assert updated.startswith(document[: document.index('<div class="x_wrapper">')])
    assert updated.endswith("\r\n</body></html>")
    assert block_hash_in(updated) == content_hash(OTHER)


def test_block_is_recognised_after_googles_editor_turned_it_into_html() -> None:
    agenda = make_agenda("Q3 <goals> & hopes")
    edited = google_editor(render_block_text(agenda))
    assert block_hash_in(edited) == content_hash(agenda)
    updated = replace_block(edited, is_html=False, agenda=OTHER)
    assert updated.startswith("<p>Prep notes</p>")
    assert updated.endswith("<br><p>Thanks!</p>")
    assert updated.count("Rapport agenda (managed)") == 1


def test_a_block_that_is_the_whole_html_description_still_hashes_as_written() -> None:
    edited = "<br>".join(html.escape(line) for line in render_block_text(AGENDA).split("\n"))
    assert block_hash_in(edited) == content_hash(AGENDA)


def test_markers_split_by_tags_and_entities_are_still_found() -> None:
    block = render_block_html(AGENDA).replace(
        "── Rapport agenda (managed) ── Regular 1:1",
        "<p><span>&#9472;&#9472;&nbsp;Rapport</span> agenda&nbsp;(managed) ── Regular 1:1</p>",
    )
    assert block_hash_in("<p>x</p>" + block) == content_hash(AGENDA)


def test_later_duplicate_blocks_are_removed_and_the_first_is_replaced() -> None:
    block = render_block_text(AGENDA)
    description = f"A\n{block}\nB\n{block}\nC"
    assert replace_block(description, is_html=False, agenda=OTHER) == (
        f"A\n{render_block_text(OTHER)}\nB\n\nC"
    )


def test_unterminated_plain_block_runs_to_the_end() -> None:
    description = "Keep me\n" + START_MARKER + "\nold line\nmore"
    assert extract_block(description) == START_MARKER + "\nold line\nmore"
    assert replace_block(description, is_html=False, agenda=AGENDA) == (
        "Keep me\n" + render_block_text(AGENDA)
    )


def test_unterminated_html_block_stops_before_the_closing_document_tags() -> None:
    description = f"<html><body><div>Keep</div><div>{START_MARKER}<br>old</div></body></html>"
    updated = replace_block(description, is_html=True, agenda=AGENDA)
    assert updated == "<html><body><div>Keep</div>" + render_block_html(AGENDA) + "</body></html>"


def test_no_block_means_no_extract_and_no_hash() -> None:
    assert extract_block("just notes") is None
    assert block_hash_in("<p>just notes</p>") is None


def test_hash_follows_the_agenda_not_the_format() -> None:
    plain = replace_block("x", is_html=False, agenda=AGENDA)
    rich = replace_block("<p>x</p>", is_html=True, agenda=AGENDA)
    assert block_hash_in(plain) == block_hash_in(rich) == content_hash(AGENDA)
    assert content_hash(OTHER) != content_hash(AGENDA)


def test_huge_descriptions_are_refused_with_a_specific_error() -> None:
    huge = "x" * (MAX_DESCRIPTION_CHARS + 1)
    for call in (
        lambda: replace_block(huge, is_html=False, agenda=AGENDA),
        lambda: extract_block(huge),
        lambda: block_hash_in(huge),
    ):
        with pytest.raises(DescriptionTooLarge):
            call()


outside_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="<─━"),
    max_size=80,
).filter(lambda t: "rapport" not in t.casefold())
topics = st.lists(st.text(max_size=40), max_size=4)


@given(before=outside_text, after=outside_text)
def test_any_plain_text_around_the_block_survives_a_rewrite(before: str, after: str) -> None:
    description = before + render_block_text(AGENDA) + after
    updated = replace_block(description, is_html=False, agenda=OTHER)
    assert updated.startswith(before)
    assert updated.endswith(after)
    assert extract_block(updated) == updated[len(before) : len(updated) - len(after)]


@given(before=st.lists(outside_text, max_size=3), after=st.lists(outside_text, max_size=3))
def test_any_html_paragraphs_around_the_block_survive_a_rewrite(
    before: list[str], after: list[str]
) -> None:
    head = "".join(f"<p>{html.escape(t)}</p>" for t in before)
    tail = "".join(f"<p>{html.escape(t)}</p>" for t in after)
    description = head + render_block_html(AGENDA) + tail
    assert replace_block(description, is_html=True, agenda=OTHER) == (
        head + render_block_html(OTHER) + tail
    )


@given(description=outside_text, report=topics, is_html=st.booleans())
def test_what_we_write_always_hashes_as_written(
    description: str, report: list[str], is_html: bool
) -> None:
    agenda = make_agenda(*report)
    updated = replace_block(description, is_html=is_html, agenda=agenda)
    assert block_hash_in(updated) == content_hash(agenda)
    assert block_hash_in(outlook_round_trip(render_block_html(agenda))) == content_hash(agenda)


@pytest.mark.parametrize(("kind", "heading", "facets"), [
    (Kind.CORE, "Goals and progress:", ("Goals", "Progress")),
    (Kind.DEVELOPMENT, "Career and growth:", ("Career", "Growth")),
    (Kind.REGULAR, "Progress, roadblocks and resources:",
     ("Progress", "Roadblocks", "Resources")),
])
def test_each_kind_of_one_on_one_brings_its_own_section_and_says_what_it_is_for(
        kind: Kind, heading: str, facets: tuple[str, ...]) -> None:
    lines = render_block_text(make_agenda("Career path", kind=kind)).split("\n")
    assert lines[0] == f"{START_MARKER} {kind.value.capitalize()} 1:1"
    assert lines[1].startswith(f"A {kind.value.capitalize()} 1:1 is about")
    at = lines.index(heading)
    assert [line.split(":")[0] for line in lines[at + 1 : at + 1 + len(facets)]] == [
        f"• {facet}" for facet in facets]
    assert sum("Rapport agenda" in line for line in lines[:-1]) == 1  # the title once


def test_questions_marked_private_go_to_the_managers_prep_never_into_the_invite() -> None:
    private = {q.text for pool in BY_AREA.values() for q in pool if q.private}
    assert "What frustrates you most about how things are going?" in private
    for day in range(1, 29):
        for kind in Kind:
            agenda = make_agenda(kind=kind, day=day)
            assert agenda.private_prompts and set(agenda.private_prompts) <= private
            assert not any(text in render_block_html(agenda) for text in private)


def test_the_how_it_works_line_comes_only_with_the_first_agenda_of_a_series() -> None:
    first = compose_agenda(series_key="pair-1", occurrence_date=date(2026, 1, 5),
                           kind=Kind.REGULAR, report_topics=[], manager_topics=[],
                           open_action_items=[], recent_area_counts={}, recently_asked=set(),
                           first_of_series=True)
    assert FOOTER in render_block_text(first).split("\n")
    assert FOOTER not in render_block_text(AGENDA)
