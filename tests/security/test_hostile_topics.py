"""People-typed text never reaches an invite as markup: Google renders even a plain-text
description as HTML, and Graph bodies are HTML. End to end through the real clients and the
sandboxes, on both providers."""

from __future__ import annotations

import html
import re

from tests.e2e.conftest import Harness, ProviderCase, case, harness  # noqa: F401
from tests.e2e.helpers import add_topic, block_count, calls, connect_pair, upcoming, visible
from workers import actors

IMG = "<img src=x onerror=alert(1)>"
LINK = '<a href="javascript:alert(document.cookie)">notes</a> and javascript:alert(2)'


def _raw_markup(description: str) -> list[str]:
    """What would run in a browser: a tag with a handler, an image tag, a script link."""
    found = []
    if re.search(r"<img\b", description, re.IGNORECASE):
        found.append("<img")
    if re.search(r"<[^>]*\bon[a-z]+\s*=", description, re.IGNORECASE):
        found.append("event handler attribute")
    if re.search(r"""href\s*=\s*["']?\s*javascript:""", description, re.IGNORECASE):
        found.append('href="javascript:')
    if re.search(r"(?<![\w ])javascript:", description, re.IGNORECASE):
        found.append("javascript: scheme")
    return found


def test_hostile_topics_are_written_as_text_never_as_markup(
        harness: Harness, case: ProviderCase) -> None:  # noqa: F811
    connect_pair(harness, case)
    harness.sync()
    sandbox = harness.sandbox(case.provider)
    start = upcoming(harness, case)[0]
    add_topic(harness, case, f"Career {IMG} plan")
    add_topic(harness, case, LINK)
    actors.reconcile.send()
    harness.run()

    written = sandbox.description_of(case.manager, case.series_key, start)
    shown = html.unescape(visible(written))  # what the provider's HTML rendering shows
    assert f"Career {IMG} plan" in shown  # their words, exactly as typed ...
    assert "notes</a> and javascript :alert(2)" in shown
    assert _raw_markup(written) == []  # ... but none of it is markup
    assert "<img" not in written and 'href="javascript:' not in written
    assert block_count(written) == 1

    sandbox.clear_requests()
    harness.sync()
    assert calls(sandbox).writes == []  # the written block hashes as planned: no rewrite
