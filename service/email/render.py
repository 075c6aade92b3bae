"""Email rendering: one template name gives a subject, a plain-text part and an HTML part.

Templates live in `service/email/templates/` as `<name>.subject.txt`, `<name>.txt` and
`<name>.html`; HTML templates extend `_layout.html`. Only `.html` is autoescaped, and a
missing variable is an error (StrictUndefined), never an empty gap in someone's inbox.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import css_inline
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class RenderedEmail:
    """A rendered email, ready for the outbox: one-line subject, text part, inlined HTML."""

    subject: str
    text: str
    html: str


@cache
def environment() -> Environment:
    """The Jinja2 environment for email templates (built once, shared)."""
    return Environment(
        loader=PackageLoader("service.email", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@cache
def _inliner() -> css_inline.CSSInliner:
    """Inlines <style> rules into style attributes; never fetches anything remote."""
    return css_inline.CSSInliner(load_remote_stylesheets=False, keep_at_rules=True)


def render_email(*, template: str, context: dict[str, Any]) -> RenderedEmail:
    """Render the three parts of `template`; the subject becomes one line (no header injection)."""
    env = environment()
    subject = env.get_template(f"{template}.subject.txt").render(context)
    text = env.get_template(f"{template}.txt").render(context)
    html = env.get_template(f"{template}.html").render(context)
    return RenderedEmail(
        subject=_WHITESPACE.sub(" ", subject).strip(),
        text=text,
        html=_inliner().inline(html),
    )
