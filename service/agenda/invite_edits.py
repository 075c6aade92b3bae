"""Read what people changed inside our block in the invite, and make it the pair's state.

The base is the block we last wrote (`AgendaRecord.written_text`), theirs is the block the
invite holds now; lines are compared as people see them (`block.line_key`), so an editor that
re-serialised everything as HTML changes nothing. What differs is a person's doing:

- a new line becomes a topic of the pair. Neither provider names who edited an event (Google
  Calendar v3 `events` carries `updated` but no last editor; Graph `event` carries
  `lastModifiedDateTime` only), so it is "someone", unless the person typed it under the
  "Report's topics:" or "Manager's topics:" heading, which says whose topic it is;
- an action item whose box is ticked becomes done. Neither editor offers checkbox markup (the
  Google Calendar description editor has bold, italic, underline, lists and links; Outlook
  turns pasted checkboxes into a plain list), so a tick is text: ``☑``, ``☒``, ``✅``, ``✔``,
  ``✓`` or ``[x]`` in place of our ``☐``. The item is found by the ``(#id)`` we render;
- a line Rapport planned that a person deleted is not put back: the deletion is read against
  the last block written, so it is newer than anything in it. A deleted topic leaves the
  queue, a deleted follow-up is closed (removed), a deleted prompt is dismissed for this
  occurrence (`AgendaRecord.dismissed`).

The next plan then carries all of it, which makes the write a three-way merge: base = last
block written, theirs = the invite, ours = the plan made after absorbing theirs. Absorbing the
same text twice changes nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from service.agenda.block import (
    FOOTER,
    HEADINGS,
    DescriptionTooLarge,
    block_lines_in,
    is_marker_line,
    line_key,
)
from service.agenda.items import MAX_TEXT
from service.agenda.models import ActionItem, AgendaRecord, PairTopic
from service.agenda.questions import KIND_SECTIONS
from service.agenda.wanted import want_plan

log = logging.getLogger(__name__)

SOMEONE = "someone"  # who edited, when the provider does not say
_TICKED = frozenset("☑ ☒ ✅ ✔ ✓ ✗ ✘ [x] [X] [✓] [✔]".split())
_ITEM = re.compile(r"^(?P<box>\[[^\]]?\]|\S)?\s*(?P<body>.*?)\s*\(#(?P<id>\d{1,12})\)\s*$")
_LEAD = re.compile(r"^(?:[•·*\-–—☐]|\[\s?\])\s*")
_TOPIC_SECTIONS = {"Report's topics:": "report", "Manager's topics:": "manager",
                   "Added in the invite:": SOMEONE}
_OURS = frozenset(line_key(text) for text in
                  [*HEADINGS, FOOTER, *(k.explanation for k in KIND_SECTIONS.values())])


@dataclass
class InviteEdits:
    """What a person changed in the block, relative to the one we wrote."""

    added: list[tuple[str, str]] = field(default_factory=list)  # (added_by, text)
    ticked: set[int] = field(default_factory=set)  # action items marked done
    removed_items: set[int] = field(default_factory=set)  # follow-up lines deleted
    removed_topics: set[str] = field(default_factory=set)  # keys of topic lines deleted
    dismissed: set[str] = field(default_factory=set)  # keys of prompt lines deleted

    def __bool__(self) -> bool:
        return any((self.added, self.ticked, self.removed_items, self.removed_topics,
                    self.dismissed))


def _item(line: str) -> re.Match[str] | None:
    """An action item line: a box, text and ``(#id)``. A bulleted line is a topic or prompt,
    whatever its text says, so a person's words can never pose as an item."""
    return None if line.startswith(("•", "·")) else _ITEM.match(line)


def read_edits(base: Sequence[str], theirs: Sequence[str]) -> InviteEdits:
    """Compare the block we wrote with the block in the invite, line by line (pure)."""
    edits = InviteEdits()
    base_keys = {line_key(line) for line in base}
    base_items = {int(m["id"]) for m in map(_item, base) if m}
    seen_items: set[int] = set()
    section = ""
    for line in theirs:
        if is_marker_line(line):
            continue
        item = _item(line)
        if item and int(item["id"]) in base_items:
            seen_items.add(int(item["id"]))
            if (item["box"] or "").replace("\ufe0f", "") in _TICKED:
                edits.ticked.add(int(item["id"]))
            continue
        key = line_key(line)
        if line.strip() in HEADINGS:
            section = line.strip()
        if key in base_keys or key in _OURS:
            continue
        text = _LEAD.sub("", " ".join(line.split()))[:MAX_TEXT].strip()
        if text and line_key(text) not in {line_key(t) for _, t in edits.added}:
            edits.added.append((_TOPIC_SECTIONS.get(section, SOMEONE), text))
    theirs_keys = {line_key(line) for line in theirs}
    section = ""
    for line in base:
        if line.strip() in HEADINGS:
            section = line.strip()
        item = _item(line)
        if item:
            if int(item["id"]) not in seen_items:
                edits.removed_items.add(int(item["id"]))
            continue
        key = line_key(line)
        if key in theirs_keys or is_marker_line(line) or key in _OURS:
            continue
        if section in _TOPIC_SECTIONS and line.startswith("•"):
            edits.removed_topics.add(key)
        elif line.startswith(("•", "Check-in:")):
            edits.dismissed.add(key)
    return edits


def absorb_invite_edits(session: Session, *, record: AgendaRecord, description: str,
                        at: datetime) -> InviteEdits:
    """Turn what people changed in this occurrence's block into topics, closed items and
    dismissed lines. Nothing to read without a base (a block written before we kept one)."""
    if record.written_text is None:
        return InviteEdits()
    try:
        theirs = block_lines_in(description)
    except DescriptionTooLarge:
        return InviteEdits()
    if theirs is None:
        return InviteEdits()  # the whole block was deleted: the next write puts one back
    edits = read_edits(record.written_text.splitlines(), theirs)
    if not edits:
        return edits
    _close_items(session, record.pair_id, edits.ticked | edits.removed_items, at)
    _add_topics(session, record, edits.added, at)
    _remove_topics(session, record, edits.removed_topics)
    if edits.dismissed:
        record.dismissed = sorted(set(record.dismissed or ()) | edits.dismissed)
    want_plan(session, [record.pair_id])  # the pair's other agendas carry these changes too
    log.info("agenda %s: read from the invite: %d topics added, %d items ticked, %d removed, "
             "%d topics removed, %d lines dismissed", record.id, len(edits.added),
             len(edits.ticked), len(edits.removed_items), len(edits.removed_topics),
             len(edits.dismissed))
    return edits


def _close_items(session: Session, pair_id: int, item_ids: set[int], at: datetime) -> None:
    """Close the pair's own open items among those ids (an id of another pair is ignored)."""
    if not item_ids:
        return
    for item in session.scalars(select(ActionItem).where(
            ActionItem.id.in_(item_ids), ActionItem.pair_id == pair_id,
            ActionItem.closed_at.is_(None))):
        item.closed_at, item.closed_by = at, SOMEONE


def _pending(session: Session, record: AgendaRecord) -> list[PairTopic]:
    """The pair's topics that are free or planned into this occurrence."""
    return list(session.scalars(select(PairTopic).where(
        PairTopic.pair_id == record.pair_id,
        or_(PairTopic.used_in_occurrence_id.is_(None),
            PairTopic.used_in_occurrence_id == record.occurrence_id))))


def _add_topics(session: Session, record: AgendaRecord, added: list[tuple[str, str]],
                at: datetime) -> None:
    """Queue each added line for this occurrence, unless the pair already has it pending."""
    if not added:
        return
    known = {line_key(topic.text) for topic in _pending(session, record)}
    for added_by, text in added:
        if line_key(text) not in known:
            session.add(PairTopic(pair_id=record.pair_id, text=text, added_by=added_by,
                                  created_at=at, used_in_occurrence_id=record.occurrence_id))
            known.add(line_key(text))
    session.flush()


def _remove_topics(session: Session, record: AgendaRecord, keys: set[str]) -> None:
    if not keys:
        return
    for topic in _pending(session, record):
        if line_key(topic.text) in keys:
            session.delete(topic)
    session.flush()
