"""The agenda block inside an event description: render, find, replace, hash.

Rapport owns exactly one marked block of the description and never touches a byte outside
it. Markers are plain text (not attributes or ids), because Google's and Outlook's editors
keep text but strip attributes; they are found in the visible text, so a block still counts
after an editor has turned the description into HTML. The content hash is taken over the
visible text, so our own write echoing back, even re-serialised as HTML, causes no new write.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from dataclasses import dataclass

from connectors.text import MAX_DESCRIPTION_CHARS, looks_like_html
from service.agenda.generator import Agenda, AgendaItem, Source
from service.agenda.htmltext import (
    Projection,
    absorb_wrappers,
    project,
    visible_text,
)
from service.agenda.questions import KIND_SECTIONS

START_MARKER = "── Rapport agenda (managed) ──"
END_MARKER = "── end of Rapport agenda ──"

# Once per series (its first agenda): how the shared block works. Later agendas stay quiet.
FOOTER = (
    "How this works: type a line here to add a topic, tick an item (☐ to ☑) when it is done; "
    "Rapport rewrites only what sits between the two marker lines."
)
OPEN_BOX = "☐"

_DECOR = r"[─━]"  # box drawing only: people type "-" and "=" right next to our text
_START = re.compile(
    rf"(?:{_DECOR}+[ \t\xa0]*)?Rapport\s+agenda\s+\(managed\)(?:[ \t\xa0]*{_DECOR}+)?",
    re.IGNORECASE,
)
_END = re.compile(
    rf"(?:{_DECOR}+[ \t\xa0]*)?end\s+of\s+Rapport\s+agenda(?:[ \t\xa0]*{_DECOR}+)?",
    re.IGNORECASE,
)
# markup on the start marker's line (after the title) says an editor wrote HTML
_MARKUP_AFTER_MARKER = re.compile(r"[^\n<]*<")
_MARKER_WORDS = re.compile(r"(rapport)\s+(agenda)", re.IGNORECASE)
_SCRIPT_SCHEME = re.compile(r"(?i)\b(javascript|vbscript)\s*:")
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)
_SECTIONS = (
    (Source.REPORT, "Report's topics"),
    (Source.MANAGER, "Manager's topics"),
    (Source.INVITE, "Added in the invite"),
    (Source.FOLLOW_UP, "Still open"),
    (Source.KIND, ""),  # the kind's own heading, from the question bank
    (Source.BALANCE, "For balance"),
)
HEADINGS = frozenset(
    [f"{label}:" for _, label in _SECTIONS if label]
    + [f"{section.heading}:" for section in KIND_SECTIONS.values()]
)
_ITEM_ID = " (#{})"  # how a follow-up names its action item, so a tick finds it again


class DescriptionTooLarge(ValueError):
    """The description is too big to parse safely; the caller logs the event id and skips it."""

    def __init__(self, size: int) -> None:
        super().__init__(f"description has {size} characters, limit is {MAX_DESCRIPTION_CHARS}")
        self.size = size


@dataclass(frozen=True)
class _Span:
    start: int  # first byte of the block, wrapper tags included
    end: int  # one past the last byte of the block
    body: int  # just after the start marker


def render_block_text(agenda: Agenda) -> str:
    """The block as plain text, markers included, with ``<`` and ``>`` as entities."""
    return "\n".join(_plain(text) for text, _ in _lines(agenda))


def render_block_html(agenda: Agenda) -> str:
    """The block as an HTML fragment: one ``<div>``, lines joined by ``<br>``, all escaped;
    the page links become anchors whose visible text is the URL, so both renderings hash
    alike."""
    links_line = _links_line(agenda) if agenda.links else None
    parts = (_links_html(agenda) if t == links_line else
             f"<b>{html.escape(t)}</b>" if bold else html.escape(t) for t, bold in _lines(agenda))
    return "<div>" + "<br>".join(parts) + "</div>"


def replace_block(description: str, *, is_html: bool, agenda: Agenda) -> str:
    """Put the agenda into the description, keeping every byte outside the block.

    The first block is replaced, later duplicates are removed, a start marker without an
    end marker runs to the end; with no block, one is appended. HTML is written when the
    provider says so or the description already is HTML.
    """
    _guard(description)
    spans, found_html = _locate(description)
    as_html = is_html or found_html
    block = render_block_html(agenda) if as_html else render_block_text(agenda)
    if not spans:
        return _append(description, block, as_html=as_html)
    parts = [description[: spans[0].start], block]
    for previous, span in zip(spans, spans[1:], strict=False):
        parts.append(description[previous.end : span.start])
    parts.append(description[spans[-1].end :])
    return "".join(parts)


def extract_block(description: str) -> str | None:
    """The first block exactly as it stands in the description, or None."""
    _guard(description)
    spans, _ = _locate(description)
    return description[spans[0].start : spans[0].end] if spans else None


def content_hash(agenda: Agenda) -> str:
    """SHA-256 of the block's normalised visible text: what `block_hash_in` reads back."""
    return _digest(render_block_text(agenda))


def block_hash_in(description: str) -> str | None:
    """Hash of the block found in a description (plain or HTML), or None without a block."""
    _guard(description)
    spans, found_html = _locate(description)
    if not spans:
        return None
    raw = description[spans[0].start : spans[0].end]
    return _digest(visible_text(raw) if found_html else raw)


def block_lines(agenda: Agenda) -> list[str]:
    """The block's visible lines, as people read them: the merge base kept after a write."""
    return [text for text, _ in _lines(agenda)]


def block_lines_in(description: str) -> list[str] | None:
    """The visible lines of the first block in a description (plain or HTML), or None."""
    _guard(description)
    spans, found_html = _locate(description)
    if not spans:
        return None
    raw = description[spans[0].start : spans[0].end]
    text = visible_text(raw) if found_html else raw.replace("&lt;", "<").replace("&gt;", ">")
    return [line for line in (" ".join(x.split()) for x in text.splitlines()) if line]


def is_marker_line(line: str) -> bool:
    """Whether a visible line holds one of our markers (the title shares the start line)."""
    return bool(_START.search(line) or _END.search(line))


def line_key(line: str) -> str:
    """A line as compared across editors: NFC, whitespace folded, case and bullets ignored."""
    text = " ".join(unicodedata.normalize("NFC", line).split())
    return text.lstrip("•·*-–— \t").casefold()


def _lines(agenda: Agenda) -> list[tuple[str, bool]]:
    """(text, bold) lines shared by both renderings, so both hash alike. The title sits on
    the start marker's line; lines people deleted from this invite stay out."""
    kind = KIND_SECTIONS[agenda.kind]
    check_in = f"Check-in: {agenda.check_in.text}"
    # not bold: the block's outer <div> must sit right around the start marker (see
    # `absorb_wrappers`)
    lines = [(f"{START_MARKER} {agenda.kind.value.capitalize()} 1:1", False),
             (kind.explanation, False)]
    if line_key(check_in) not in agenda.dismissed:
        lines.append((check_in, False))
    for source, label in _SECTIONS:
        shown = [line for line in map(_item_line, (i for i in agenda.items if i.source is source))
                 if line_key(line) not in agenda.dismissed]
        if shown:
            lines.append((f"{label or kind.heading}:", True))
        lines += [(line, False) for line in shown]
    if agenda.links:
        lines.append((_links_line(agenda), False))
    if agenda.first_of_series:
        lines.append((FOOTER, False))
    lines.append((END_MARKER, False))
    return lines


def _item_line(item: AgendaItem) -> str:
    """One item: follow-ups with a box, their owner and id; prompts with their area or facet."""
    if item.source is Source.FOLLOW_UP:
        owner = f"{_clean(item.label)}: " if item.label else ""
        ident = _ITEM_ID.format(item.item_id) if item.item_id is not None else ""
        return f"{OPEN_BOX} {owner}{_clean(item.text)}{ident}"
    label = item.area.value.capitalize() if item.area else item.label
    return f"• {label}: {_clean(item.text)}" if label else f"• {_clean(item.text)}"


LINKS_LABEL = "Add a topic or tick an item:"


def _links_line(agenda: Agenda) -> str:
    """"Add a topic or tick an item: Sam <url> · Maya <url>" (plain URLs)."""
    return LINKS_LABEL + " " + " · ".join(f"{_clean(name)} {url}" for name, url in agenda.links)


def _links_html(agenda: Agenda) -> str:
    """The links line with each URL as an ``<a href>``; names and URLs escaped."""
    return html.escape(LINKS_LABEL) + " " + " · ".join(
        f'{html.escape(_clean(name))} <a href="{html.escape(url, quote=True)}">'
        f"{html.escape(url)}</a>" for name, url in agenda.links)


def _clean(text: str) -> str:
    """One line of people's text that can never be mistaken for one of our markers, nor
    carry a ``javascript:`` link (the scheme loses its colon's meaning)."""
    line = _MARKER_WORDS.sub(r"\1-\2", " ".join(text.split()))
    return _SCRIPT_SCHEME.sub(r"\1 :", line)


def _plain(line: str) -> str:
    """A line for a plain-text description. Google renders even those as HTML, so ``<`` and
    ``>`` go out as entities: no tag can form, and people see exactly what they typed."""
    return line.replace("<", "&lt;").replace(">", "&gt;")


def _locate(description: str) -> tuple[list[_Span], bool]:
    """The blocks in the description, and whether it is to be read as HTML.

    A plain description stays plain even when a topic inside our own block looks like
    markup; only markup outside the blocks, or right after a start marker, makes it HTML.
    """
    spans = _find(description, as_html=False)
    outside = "".join(
        description[a:b]
        for a, b in zip(
            [0, *(s.end for s in spans)], [*(s.start for s in spans), None], strict=True
        )
    )
    if not looks_like_html(outside) and not any(
        _MARKUP_AFTER_MARKER.match(description, s.body) for s in spans
    ):
        return spans, False
    return _find(description, as_html=True), True


def _find(description: str, *, as_html: bool) -> list[_Span]:
    """Every block, in order: start marker to the next end marker (or to the end)."""
    projection = project(description) if as_html else Projection.identity(description)
    text = projection.text
    spans: list[_Span] = []
    position = 0
    while (start := _START.search(text, position)) is not None:
        end = _END.search(text, start.end())
        stop = end.end() if end else len(text.rstrip()) if as_html else len(text)
        first, last = projection.starts[start.start()], projection.ends[stop - 1]
        if as_html:
            first, last = absorb_wrappers(description, first, last)
        spans.append(_Span(first, last, body=projection.ends[start.end() - 1]))
        if end is None:
            break
        position = end.end()
    return spans


def _append(description: str, block: str, *, as_html: bool) -> str:
    """Add the block after people's text, separated by a blank line (or inside ``<body>``)."""
    if not description:
        return block
    if as_html:
        closes = list(_BODY_CLOSE.finditer(description))
        if closes:
            at = closes[-1].start()
            return description[:at] + block + description[at:]
        return description + "<br>" + block
    separator = (
        "" if description.endswith("\n\n") else "\n" if description.endswith("\n") else "\n\n"
    )
    return description + separator + block


def _digest(text: str) -> str:
    """Hash the text as people see it: the plain rendering's ``&lt;`` / ``&gt;`` count as the
    ``<`` / ``>`` an HTML rendering (or an editor's re-serialisation) shows."""
    text = text.replace("&lt;", "<").replace("&gt;", ">")
    lines = (" ".join(line.split()) for line in unicodedata.normalize("NFC", text).splitlines())
    return hashlib.sha256("\n".join(line for line in lines if line).encode()).hexdigest()


def _guard(description: str) -> None:
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise DescriptionTooLarge(len(description))
