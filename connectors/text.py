"""Facts about event descriptions that connectors and the agenda writer share (one home each).

The service imports these from here; connectors never import the service.
"""

from __future__ import annotations

import re

# Larger descriptions are skipped (read) or left alone (write): too big to merge into safely.
MAX_DESCRIPTION_CHARS = 1_000_000

_HTML_HINT = re.compile(
    r"</?(?:br|p|div|span|b|i|u|a|ul|ol|li|html|body|font|strong|em|table|h[1-6])\b[^<>]*>"
    r"|&nbsp;|&#[0-9]+;",
    re.IGNORECASE,
)


def looks_like_html(text: str) -> bool:
    """True when the text carries markup an editor produced (Google sends no content type;
    its editor and Outlook's write ``<br>``, ``<p>``, ``&nbsp;`` and the like)."""
    return _HTML_HINT.search(text) is not None
