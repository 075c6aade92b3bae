"""Taking back on the agenda page, end to end: the person who added a topic removes it while
it still waits to be discussed, either person drops an action item recorded by mistake, and
the next invite follows through the real write path (real actors, the real Google and Graph
clients, the sandboxes). Someone else's topic, another pair's, a discussed one, a forged
form or another site's form change nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from application.web.app import create_app
from service.agenda.items import add_action_item, add_topic
from service.agenda.models import ActionItem, PairTopic
from service.pairs.models import Occurrence, Outcome
from tests.browser import ARTIFACTS, launch, require_chromium
from tests.web.serving import serve
from workers import actors

from .conftest import CASES, ORIGIN, Harness, ProviderCase
from .helpers import case_series
from .test_agenda_page import _block, _form, _invite_link, _post, _ready, other_pair_of


def _reconcile(harness: Harness) -> None:
    actors.reconcile.send()
    harness.run()


def _remove(client: TestClient, path: str, sig: str, csrf: str, topic_id: int) -> int:
    """POST the topic's Remove button of the page at `path`; the status."""
    return _post(client, f"{path}/topics/remove", {"sig": sig, "csrf": csrf, "topic": topic_id})


def _topic_id(harness: Harness, text: str) -> int | None:
    with harness.session() as session:
        return session.scalar(select(PairTopic.id).where(PairTopic.text == text))


def test_the_author_removes_a_topic_on_the_page_and_it_leaves_the_next_invite(
        harness: Harness, case: ProviderCase, client: TestClient) -> None:
    pair = _ready(harness, case)
    link = _invite_link(harness, case, pair.report_id)
    path, sig, csrf = _form(client, link)
    assert _post(client, f"{path}/topics", {"sig": sig, "csrf": csrf,
                                            "text": "Lunch plans (meant for Slack)"}) == 303
    harness.run()
    assert "Lunch plans (meant for Slack)" in _block(harness, case)
    topic_id = _topic_id(harness, "Lunch plans (meant for Slack)")
    assert topic_id is not None

    # the manager sees the topic but cannot take it back: it is the report's
    manager_link = _invite_link(harness, case, pair.manager_id)
    m_path, m_sig, m_csrf = _form(client, manager_link)
    assert f'name="topic" value="{topic_id}"' not in client.get(manager_link).text
    assert _remove(client, m_path, m_sig, m_csrf, topic_id) == 400
    assert _topic_id(harness, "Lunch plans (meant for Slack)") == topic_id

    assert f'name="topic" value="{topic_id}"' in client.get(link).text
    response = client.post(f"{path}/topics/remove",
                           data={"sig": sig, "csrf": csrf, "topic": topic_id},
                           headers={"Origin": ORIGIN})
    assert response.status_code == 303
    assert "Your topic is off the agenda" in client.get(response.headers["location"]).text
    harness.run()  # the write the page enqueued

    assert "Lunch plans (meant for Slack)" not in _block(harness, case)
    assert _topic_id(harness, "Lunch plans (meant for Slack)") is None
    _reconcile(harness)
    assert "Lunch plans (meant for Slack)" not in _block(harness, case)


def test_a_topic_discussed_in_a_meeting_that_took_place_cannot_be_removed(
        harness: Harness, case: ProviderCase, client: TestClient) -> None:
    pair = _ready(harness, case)
    series_id = case_series(harness, case).id
    with harness.runtime.factory.begin() as session:
        past = session.scalars(select(Occurrence).where(
            Occurrence.series_id == series_id, Occurrence.scheduled_end < harness.clock())
            .order_by(Occurrence.scheduled_start.desc()).limit(1)).one()
        past.outcome = Outcome.HELD.value
        topic = add_topic(session, pair_id=pair.pair_id, text="Already talked through")
        topic.used_in_occurrence_id = past.id
        topic_id = topic.id
    link = _invite_link(harness, case, pair.report_id)
    path, sig, csrf = _form(client, link)
    assert f'name="topic" value="{topic_id}"' not in client.get(link).text
    assert _remove(client, path, sig, csrf, topic_id) == 400
    assert _topic_id(harness, "Already talked through") == topic_id


def test_dropping_an_item_on_the_page_takes_it_out_of_the_invite_for_good(
        harness: Harness, case: ProviderCase, client: TestClient) -> None:
    pair = _ready(harness, case)
    with harness.runtime.factory.begin() as session:
        wrong = add_action_item(session, pair_id=pair.pair_id, owner="report",
                                text="Recorded by mistake").id
        kept = add_action_item(session, pair_id=pair.pair_id, owner="manager",
                               text="Send the draft by Friday").id
    _reconcile(harness)
    assert "Recorded by mistake" in _block(harness, case)
    link = _invite_link(harness, case, pair.manager_id)  # either person may drop
    path, sig, csrf = _form(client, link)

    response = client.post(f"{path}/drop", data={"sig": sig, "csrf": csrf, "done": [wrong]},
                           headers={"Origin": ORIGIN})
    assert response.status_code == 303
    assert "do not count as done" in client.get(response.headers["location"]).text
    harness.run()

    block = _block(harness, case)
    assert "Recorded by mistake" not in block
    assert "Send the draft by Friday" in block
    with harness.session() as session:
        assert session.get(ActionItem, wrong) is None
        item = session.get(ActionItem, kept)
        assert item is not None and item.closed_at is None
    harness.clock.now += timedelta(hours=2)
    _reconcile(harness)
    assert "Recorded by mistake" not in _block(harness, case)


def test_a_forged_or_cross_pair_take_back_changes_nothing(
        harness: Harness, case: ProviderCase, client: TestClient) -> None:
    pair = _ready(harness, case)
    with harness.runtime.factory.begin() as session:
        other_pair = other_pair_of(session, pair)
        their_topic = add_topic(session, pair_id=other_pair, text="Another pair's topic").id
        their_item = add_action_item(session, pair_id=other_pair, text="Another pair's item").id
        ours = add_topic(session, pair_id=pair.pair_id, text="Our topic").id
    link = _invite_link(harness, case, pair.report_id)
    path, sig, csrf = _form(client, link)

    # another pair's ids through this pair's form: refused, or ignored
    assert _remove(client, path, sig, csrf, their_topic) == 400
    assert _post(client, f"{path}/drop", {"sig": sig, "csrf": csrf, "done": [their_item]}) == 303
    # this link's token on the other pair's path
    for person_id in (pair.report_id, pair.manager_id):
        forged = f"/agenda/{other_pair}/{person_id}"
        assert _remove(client, forged, sig, csrf, their_topic) == 403
        assert _post(client, f"{forged}/drop",
                     {"sig": sig, "csrf": csrf, "done": [their_item]}) == 403
    # no token, a wrong one, another site's form
    assert _post(client, f"{path}/topics/remove", {"sig": sig, "topic": ours}) == 403
    assert _remove(client, path, sig, "0" * 64, ours) == 403
    evil = client.post(f"{path}/topics/remove", data={"sig": sig, "csrf": csrf, "topic": ours},
                       headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    too_large = client.post(f"{path}/drop", headers={"Origin": ORIGIN},
                            data={"sig": sig, "csrf": csrf, "done": [their_item] * 2000})
    assert too_large.status_code == 400  # beyond the form size limit
    with harness.session() as session:
        assert sorted(session.scalars(select(PairTopic.text))) == [
            "Another pair's topic", "Our topic"]
        item = session.get(ActionItem, their_item)
        assert item is not None and item.closed_at is None


@pytest.mark.browser
def test_taking_back_a_topic_and_an_item_in_headless_chromium(harness: Harness) -> None:
    """On a phone, without JavaScript: the report removes the topic they added and drops an
    item recorded by mistake; the notices say so and the invite follows."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    case = CASES["google"]
    pair = _ready(harness, case)
    with harness.runtime.factory.begin() as session:
        add_topic(session, pair_id=pair.pair_id, text="The manager's own topic",
                  added_by="manager")
        add_action_item(session, pair_id=pair.pair_id, owner="report",
                        text="Recorded by mistake")
        add_action_item(session, pair_id=pair.pair_id, owner="manager",
                        text="Send the draft by Friday")
    _reconcile(harness)
    app = create_app(harness.settings, harness.runtime.factory, clock=harness.clock,
                     enqueue_write=actors.write_agenda.send)
    ARTIFACTS.mkdir(exist_ok=True)
    with serve(app) as base, sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 375, "height": 740})
            response = page.goto(base + _invite_link(harness, case, pair.report_id))
            assert response is not None and response.status == 200
            for text in ("Ask about the training budget", "Typo: lunhc plans"):
                page.fill("textarea[name=text]", text)
                page.click("#add-topic button")
            mine = page.locator("#your-topics li")
            assert mine.count() == 2  # the manager's topic is not the report's to remove
            assert "The manager's own topic" not in page.inner_text("#your-topics")
            page.click("#your-topics li:has-text('Typo: lunhc plans') button")
            assert "Your topic is off the agenda" in page.inner_text("main")
            assert "Typo: lunhc plans" not in page.inner_text("main")
            page.check("#items label:has-text('Recorded by mistake') input")
            page.click("#items button:has-text('Drop ticked items')")
            assert "do not count as done" in page.inner_text("main")
            assert "Recorded by mistake" not in page.inner_text("#agenda")
            assert "Send the draft by Friday" in page.inner_text("#agenda")
            wide = page.evaluate("document.scrollingElement.scrollWidth")
            assert wide <= page.evaluate("window.innerWidth")
            page.screenshot(path=str(ARTIFACTS / "agenda-page-take-back.png"), full_page=True)
        finally:
            browser.close()
    harness.run()
    block = _block(harness, case)
    assert "Ask about the training budget" in block
    assert "Typo: lunhc plans" not in block
    assert "Recorded by mistake" not in block
    assert "Send the draft by Friday" in block
