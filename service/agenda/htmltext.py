"""Read the visible text of an HTML description while remembering where each character came from.

Google's editor and Outlook re-serialise descriptions as HTML (``<br>``, ``<p>``, ``&nbsp;``,
entities, a whole ``<html><body>`` document). Rapport finds its markers in the text people
see, then maps the match back to exact offsets in the original string, so that everything
outside the block can be kept byte for byte.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Projection", "absorb_wrappers", "project", "visible_text"]

_TOKEN = re.compile(
    r"(?P<comment><!--.*?-->)"
    r"|(?P<tag></?(?P<name>[A-Za-z][A-Za-z0-9:-]*)\b[^<>]*>)"
    r"|(?P<decl><[!?][^<>]*>)"
    r"|(?P<entity>&(?:#[0-9]+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);)"
    r"|(?P<text>[^<&]+)"
    r"|(?P<char>.)",
    re.DOTALL,
)
_LINE_BREAKING = frozenset(
    "br p div li ul ol tr table h1 h2 h3 h4 h5 h6 blockquote hr pre body".split()
)
_VOID = frozenset("br hr img meta link input wbr col area base source".split())
_MAX_WRAPPERS = 8  # editors nest a few levels; the cap keeps odd input linear
_OPEN_TAG = re.compile(r"<([A-Za-z][A-Za-z0-9:-]*)\b[^<>]*>")
_CLOSE_TAG = re.compile(r"</([A-Za-z][A-Za-z0-9:-]*)\s*>")


@dataclass(frozen=True)
class Projection:
    """Visible text plus, for each visible character, the source span it came from."""

    text: str
    starts: Sequence[int]
    ends: Sequence[int]

    @classmethod
    def identity(cls, text: str) -> Projection:
        """Plain text is its own visible text; ranges keep this free for big descriptions."""
        return cls(text=text, starts=range(len(text)), ends=range(1, len(text) + 1))


def project(source: str) -> Projection:
    """Visible text of HTML: tags dropped, line-breaking tags as newlines, entities decoded."""
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for match in _TOKEN.finditer(source):
        kind = match.lastgroup
        if kind in ("text", "char"):
            for offset, char in enumerate(match[0], match.start()):
                chars.append(" " if char.isspace() else char)
                starts.append(offset)
                ends.append(offset + 1)
            continue
        if kind == "tag":
            visible = "\n" if match["name"].lower() in _LINE_BREAKING else ""
        elif kind == "entity":
            visible = "".join(" " if c.isspace() else c for c in html.unescape(match[0]))
        else:
            visible = ""
        for char in visible:
            chars.append(char)
            starts.append(match.start())
            ends.append(match.end())
    return Projection(text="".join(chars), starts=tuple(starts), ends=tuple(ends))


def visible_text(source: str) -> str:
    """The text a person sees in an HTML fragment, one line per line break."""
    return project(source).text


def absorb_wrappers(source: str, start: int, end: int) -> tuple[int, int]:
    """Widen [start, end) over matching wrapper tags right around it (``<div>…</div>``).

    Only pairs of an opening tag just before and a closing tag of the same name just after
    are taken, innermost first, so the widened span stays balanced and never swallows a
    container that also holds people's text.
    """
    opened: list[tuple[str, int]] = []
    cursor = start
    while len(opened) < _MAX_WRAPPERS:
        before = source[:cursor].rstrip()
        match = _last_tag(before)
        if match is None or not _is_open(match):
            break
        opened.append((match[1].lower(), match.start()))
        cursor = match.start()
    closed: list[tuple[str, int]] = []
    cursor = end
    while opened and len(closed) < len(opened):
        stripped = len(source) - len(source[cursor:].lstrip())
        match = _CLOSE_TAG.match(source, stripped)
        if match is None:
            break
        closed.append((match[1].lower(), match.end()))
        cursor = match.end()
    for (open_name, open_at), (close_name, close_at) in zip(opened, closed, strict=False):
        if open_name != close_name:
            break
        start, end = open_at, close_at
    return start, end


def _last_tag(text: str) -> re.Match[str] | None:
    if not text.endswith(">"):
        return None
    return _OPEN_TAG.match(text, text.rfind("<")) or _CLOSE_TAG.match(text, text.rfind("<"))


def _is_open(match: re.Match[str]) -> bool:
    return (
        match.re is _OPEN_TAG
        and match[1].lower() not in _VOID
        and not match[0].endswith("/>")
        and match.end() == match.endpos
    )
