"""The page links in the block: plain URLs in a plain description, anchors in HTML, both
hashing alike; and the same link at every reconcile of an occurrence."""

from __future__ import annotations

import html
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from service.accounts.signing import AGENDA_SHARED, LinkCheck, verify_agenda
from service.agenda.block import block_hash_in, content_hash, render_block_html, render_block_text
from service.agenda.links import meeting_link_expiry, person_link
from service.pairs.models import Occurrence
from service.people.models import Person
from service.settings import Settings
from tests.agenda.test_agenda_block import make_agenda

URL = "https://rapport.example/agenda/3/7?sig=1767225600.0.abc_-"
HOSTILE = "<img src=x onerror=alert(1)> javascript:alert(1)"


def _settings() -> Settings:
    return Settings(web_secret=SecretStr("a test secret for links"),
                    public_url="https://rapport.example")


def test_links_render_as_text_and_as_anchors_and_hash_alike() -> None:
    agenda = replace(make_agenda("Roadmap"), links=((HOSTILE, URL), ("Maya Chen", URL + "x")))
    text = render_block_text(agenda)
    assert ("Add a topic or tick an item: &lt;img src=x onerror=alert(1)&gt; "
            f"javascript :alert(1) {URL}") in text
    fragment = render_block_html(agenda)
    assert f'<a href="{URL}">{URL}</a>' in fragment
    assert "<img" not in fragment and "javascript:" not in fragment
    assert block_hash_in(fragment) == content_hash(agenda) == block_hash_in(text)
    assert content_hash(agenda) != content_hash(make_agenda("Roadmap"))  # links count


def test_a_meetings_link_is_the_same_whenever_it_is_made_and_opens_until_after_its_day() -> None:
    settings = _settings()
    person = Person(id=7, email="sam@example.com", links_version=2)
    start = datetime(2026, 12, 8, 10, tzinfo=UTC)
    expires = meeting_link_expiry(settings, Occurrence(original_start=start,
                                                       scheduled_start=start + timedelta(days=2)))
    end = start + timedelta(days=1)
    first = person_link(settings, pair_id=3, person=person, expires=expires)
    again = person_link(settings, pair_id=3, person=person, expires=expires)
    assert first == again
    token = first.split("sig=")[1]
    key = b"a test secret for links"

    def check(at: datetime, *, pair_id: int = 3, version: int = 2) -> LinkCheck:
        return verify_agenda(key, scope=AGENDA_SHARED, pair_id=pair_id, person_id=7,
                             token=html.unescape(token), version=version, now=at)

    assert check(end + timedelta(days=settings.link_ttl_days - 1)) is LinkCheck.VALID
    assert check(end + timedelta(days=settings.link_ttl_days)) is LinkCheck.EXPIRED
    assert check(end, pair_id=4) is LinkCheck.INVALID
    assert check(end, version=3) is LinkCheck.REVOKED
