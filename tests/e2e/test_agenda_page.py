"""The pair's agenda page, end to end: the link a person finds in the invite opens their page,
what they add or tick there reaches the invite through the real write path (real actors, the
real Google and Graph clients, the sandboxes), and nothing of another pair or of the manager's
private preparation leaks through it."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from application.web.app import create_app
from service.accounts.signing import manager_url, revoke_links
from service.agenda.block import extract_block
from service.agenda.items import add_action_item, close_action_item
from service.agenda.links import meeting_link_expiry, person_link
from service.agenda.models import ActionItem, PairTopic
from service.agenda.questions import BY_AREA
from service.pairs.models import Occurrence, Pair
from service.people.models import Person
from tests.browser import ARTIFACTS, launch, require_chromium
from tests.web.serving import serve
from workers import actors

from .conftest import CASES, ORIGIN, Harness, ProviderCase
from .helpers import calls, case_series, connect_pair, occurrence_at, upcoming, visible

_URL = re.compile(r"https?://[^\s\"<>]+/agenda/(\d+)/(\d+)\?sig=[A-Za-z0-9._%-]+")
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')
IMG = "<img src=x onerror=alert(1)>"


@dataclass(frozen=True)
class Pair2:
    """The case's pair as the page sees it."""

    pair_id: int
    report_id: int
    manager_id: int


def _block(harness: Harness, case: ProviderCase) -> str:
    """The next invite's block as a person reads it."""
    start = upcoming(harness, case)[0]
    description = harness.sandbox(case.provider).description_of(case.manager, case.series_key,
                                                                 start)
    block = extract_block(description)
    assert block is not None
    return html.unescape(visible(block))


def _ready(harness: Harness, case: ProviderCase) -> Pair2:
    connect_pair(harness, case)
    harness.sync()
    pair_id = case_series(harness, case).pair_id
    assert pair_id is not None
    with harness.session() as session:
        pair = session.get(Pair, pair_id)
        assert pair is not None
        return Pair2(pair_id, pair.report_id, pair.manager_id)


def other_pair_of(session: Session, pair: Pair2) -> int:
    """A second pair of the same manager, with someone outside the case."""
    other = Person(email="outsider@elsewhere.test", display_name="Other Person")
    session.add(other)
    session.flush()
    theirs = Pair(manager_id=pair.manager_id, report_id=other.id)
    session.add(theirs)
    session.flush()
    return theirs.id


def _invite_link(harness: Harness, case: ProviderCase, person_id: int) -> str:
    """The path and query of this person's link, as the invite holds it."""
    for match in _URL.finditer(_block(harness, case)):
        if int(match.group(2)) == person_id:
            return match.group(0).removeprefix(ORIGIN)
    raise AssertionError(f"no link for person {person_id} in the invite")


def _form(client: TestClient, link: str) -> tuple[str, str, str]:
    """(form action base, sig, csrf) read off the page as a browser would."""
    page = client.get(link)
    assert page.status_code == 200, page.text
    csrf = _CSRF.search(page.text)
    assert csrf is not None
    path, _, query = link.partition("?sig=")
    return path, query.replace("%3D", "="), csrf.group(1)


def _post(client: TestClient, url: str, data: dict[str, object]) -> int:
    return client.post(url, data=data, headers={"Origin": ORIGIN}).status_code


def _bullets(block: str) -> list[str]:
    return [line.strip()[2:] for line in block.splitlines() if line.strip().startswith("• ")]


def test_a_topic_added_on_the_reports_page_is_first_in_the_next_invite(
        harness: Harness, case: ProviderCase, client: TestClient) -> None:
    pair = _ready(harness, case)
    link = _invite_link(harness, case, pair.report_id)
    path, sig, csrf = _form(client, link)

    assert _post(client, f"{path}/topics", {"sig": sig, "csrf": csrf,
                                            "text": "Moving to the platform team?"}) == 303
    harness.run()  # the write the page enqueued

    assert _bullets(_block(harness, case))[0] == "Moving to the platform team?"
    page = client.get(link).text
    assert page.index("Moving to the platform team?") < page.index("For balance")


def test_a_private_topic_stays_out_of_the_invite_and_the_reports_page(
        harness: Harness, case: ProviderCase, client: TestClient) -> None:
    pair = _ready(harness, case)
    occurrence = occurrence_at(harness, case_series(harness, case).id,
                               upcoming(harness, case)[0])
    with harness.session() as session:
        manager = session.get(Person, pair.manager_id)
        assert manager is not None
        prep = person_link(harness.settings, pair_id=pair.pair_id, person=manager,
                           expires=meeting_link_expiry(harness.settings, occurrence),
                           private=True).removeprefix(ORIGIN)
    path, sig, csrf = _form(client, prep)
    assert _post(client, f"{path}/topics", {"sig": sig, "csrf": csrf, "private": "yes",
                                            "text": "Raise the promotion timeline"}) == 303
    assert _post(client, f"{path}/topics", {"sig": sig, "csrf": csrf,
                                            "text": "Team offsite dates"}) == 303
    actors.reconcile.send()
    harness.run()

    block = _block(harness, case)
    assert "Team offsite dates" in block
    assert "Raise the promotion timeline" not in block
    prep_page = html.unescape(client.get(prep).text)
    assert "Raise the promotion timeline" in prep_page
    # the question the planner keeps out of the invite is on the manager's private page only
    in_person = {q.text for pool in BY_AREA.values() for q in pool if q.private}
    [prompt] = [text for text in in_person if text in prep_page]
    assert prompt not in block
    for person_id in (pair.report_id, pair.manager_id):  # both shared pages
        shared = client.get(_invite_link(harness, case, person_id)).text
        assert "Team offsite dates" in shared
        assert "Raise the promotion timeline" not in shared
        assert not any(text in html.unescape(shared) for text in in_person)
        assert 'name="private"' not in shared
    # the report's link does not open the private scope
    report_link = _invite_link(harness, case, pair.report_id)
    assert client.get(report_link.replace("/agenda/", "/prep/")).status_code == 403
    with harness.session() as session:
        private = session.scalar(select(PairTopic).where(PairTopic.private.is_(True)))
        assert private is not None and private.added_by == "manager"


def test_ticking_an_item_on_the_page_closes_it_and_it_leaves_the_next_invite(
        harness: Harness, case: ProviderCase, client: TestClient) -> None:
    pair = _ready(harness, case)
    with harness.runtime.factory.begin() as session:
        item_id = add_action_item(session, pair_id=pair.pair_id, owner="manager",
                                  text="Send the draft by Friday").id
    actors.reconcile.send()
    harness.run()
    assert "Send the draft by Friday" in _block(harness, case)
    link = _invite_link(harness, case, pair.report_id)
    page = client.get(link).text
    assert f'name="done" value="{item_id}"' in page
    path, sig, csrf = _form(client, link)

    assert _post(client, f"{path}/done", {"sig": sig, "csrf": csrf, "done": [item_id]}) == 303
    harness.run()

    assert "Send the draft by Friday" not in _block(harness, case)
    with harness.session() as session:
        item = session.get(ActionItem, item_id)
        assert item is not None and item.closed_at == harness.clock()
        assert item.closed_by == "report"
    assert f'name="done" value="{item_id}"' not in client.get(link).text


def test_one_pairs_link_never_opens_or_changes_another_pair(
        harness: Harness, case: ProviderCase, client: TestClient) -> None:
    pair = _ready(harness, case)
    with harness.runtime.factory.begin() as session:
        other_pair = other_pair_of(session, pair)
        item_id = add_action_item(session, pair_id=other_pair, text="Secret of another pair").id
    link = _invite_link(harness, case, pair.report_id)
    path, sig, csrf = _form(client, link)

    # this token on the other pair's page (same person id, or the other pair's report)
    for person_id in (pair.report_id, pair.manager_id):
        forged = f"/agenda/{other_pair}/{person_id}?sig={sig}"
        response = client.get(forged)
        assert response.status_code == 403
        assert "Secret of another pair" not in response.text
    # ticking the other pair's item through this pair's form changes nothing
    assert _post(client, f"{path}/done", {"sig": sig, "csrf": csrf, "done": [item_id]}) == 303
    with harness.session() as session:
        item = session.get(ActionItem, item_id)
        assert item is not None and item.closed_at is None
    assert "Secret of another pair" not in client.get(link).text


def test_forged_expired_and_revoked_links_are_refused(
        harness: Harness, case: ProviderCase, client: TestClient) -> None:
    pair = _ready(harness, case)
    link = _invite_link(harness, case, pair.report_id)
    assert client.get(link).status_code == 200

    forged = client.get(link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB"))
    assert forged.status_code == 403 and "This link is not valid" in forged.text
    assert client.get(link.split("?")[0]).status_code == 403  # no signature at all

    now = harness.clock.now
    harness.clock.now = now + timedelta(days=harness.settings.link_ttl_days + 8)
    expired = client.get(link)
    assert expired.status_code == 403 and "This link has expired" in expired.text
    harness.clock.now = now

    with harness.runtime.factory.begin() as session:
        assert revoke_links(session, email=case.report) == 1
    revoked = client.get(link)
    assert revoked.status_code == 403 and "This link was withdrawn" in revoked.text
    actors.reconcile.send()
    harness.run()
    fresh = _invite_link(harness, case, pair.report_id)  # the invite carries a new link
    assert fresh != link
    assert client.get(fresh).status_code == 200


def test_a_post_without_the_right_csrf_token_or_from_another_origin_is_refused(
        harness: Harness, case: ProviderCase, client: TestClient) -> None:
    pair = _ready(harness, case)
    link = _invite_link(harness, case, pair.report_id)
    path, sig, csrf = _form(client, link)
    other_path, _, other_csrf = _form(client, _invite_link(harness, case, pair.manager_id))
    assert other_csrf != csrf

    assert _post(client, f"{path}/topics", {"sig": sig, "text": "no token"}) == 403
    assert _post(client, f"{path}/topics", {"sig": sig, "csrf": "0" * 64,
                                            "text": "wrong token"}) == 403
    assert _post(client, f"{path}/topics", {"sig": sig, "csrf": other_csrf,
                                            "text": "the manager's token"}) == 403
    evil = client.post(f"{path}/topics", data={"sig": sig, "csrf": csrf, "text": "evil"},
                       headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    with harness.session() as session:
        assert session.scalars(select(PairTopic.text)).all() == []


def test_hostile_text_is_escaped_on_the_page_and_in_the_invite(
        harness: Harness, case: ProviderCase, client: TestClient) -> None:
    pair = _ready(harness, case)
    link = _invite_link(harness, case, pair.report_id)
    path, sig, csrf = _form(client, link)
    for text in (f"Career {IMG} plan", "see javascript:alert(1)"):
        assert _post(client, f"{path}/topics", {"sig": sig, "csrf": csrf, "text": text}) == 303
    harness.run()

    page = client.get(link).text
    assert "<img" not in page
    assert "Career &lt;img src=x onerror=alert(1)&gt; plan" in page
    start = upcoming(harness, case)[0]
    written = harness.sandbox(case.provider).description_of(case.manager, case.series_key,
                                                            start)
    assert "<img" not in written
    assert f"Career {IMG} plan" in html.unescape(visible(written))
    assert 'href="javascript:' not in written


@pytest.mark.browser
def test_the_page_on_a_phone_in_headless_chromium(harness: Harness) -> None:
    """At 375x740 the page has no sideways scroll; adding a topic and ticking an item work
    without JavaScript, and the invite follows."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    case = CASES["google"]
    pair = _ready(harness, case)
    series_id = case_series(harness, case).id
    with harness.session() as session:
        past = session.scalars(select(Occurrence).where(
            Occurrence.series_id == series_id, Occurrence.scheduled_end < harness.clock())
            .order_by(Occurrence.scheduled_start.desc()).limit(1)).one()
        past_id, past_start = past.id, past.scheduled_start
    with harness.runtime.factory.begin() as session:
        done = add_action_item(session, pair_id=pair.pair_id, owner="report",
                               text="Book the design review room")
        done.source_occurrence_id = past_id
        done.created_at = past_start + timedelta(hours=1)
        for owner, text in (("manager", "Send the draft by Friday"),
                            ("report", "Write up the incident review: "
                             "https://wiki.example/a-very-long-address-without-any-spaces-"
                             "that-would-push-a-narrow-screen-sideways")):
            item = add_action_item(session, pair_id=pair.pair_id, owner=owner, text=text)
            item.source_occurrence_id = past_id
        close_action_item(session, item_id=done.id, now=past_start + timedelta(days=1),
                          closed_by="report")
    actors.reconcile.send()
    harness.run()
    app = create_app(harness.settings, harness.runtime.factory, clock=harness.clock,
                     enqueue_write=actors.write_agenda.send)
    ARTIFACTS.mkdir(exist_ok=True)
    with serve(app) as base, sync_playwright() as p:
        link = base + _invite_link(harness, case, pair.report_id)
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 375, "height": 740})
            response = page.goto(link)
            assert response is not None and response.status == 200
            page.fill("textarea[name=text]", f"Pairing on the migration {IMG}")
            page.click("#add-topic button")
            assert "Your topic is on the agenda" in page.inner_text("main")
            page.check("#items label:has-text('Send the draft by Friday') input")
            page.click("#items button")
            assert "Send the draft by Friday" not in page.inner_text("#agenda")
            text = page.inner_text("main")
            assert f"Pairing on the migration {IMG}" in text
            assert "Book the design review room (done" in page.inner_text("#history")
            assert page.locator("img").count() == 0
            wide = page.evaluate("document.scrollingElement.scrollWidth")
            assert wide <= page.evaluate("window.innerWidth")
            page.screenshot(path=str(ARTIFACTS / "agenda-page-phone.png"), full_page=True)
        finally:
            browser.close()
    harness.run()
    block = _block(harness, case)
    assert _bullets(block)[0] == f"Pairing on the migration {IMG}"
    assert "Send the draft by Friday" not in block


SERIES_ZONES = {"google": "America/New_York", "microsoft": "Europe/London"}


def test_what_was_left_open_carries_over_a_series_split_on_the_pages_and_the_invite(
        harness: Harness, case: ProviderCase, client: TestClient) -> None:
    """Action items belong to the pair: after "this and following" starts a new series, the
    manager's page and the pair's page still show them with their owner, and ticking one
    takes it out of the new series' invite."""
    pair = _ready(harness, case)
    with harness.runtime.factory.begin() as session:
        item_id = add_action_item(session, pair_id=pair.pair_id, owner="report",
                                  text="Send the draft by Friday").id
    actors.reconcile.send()
    harness.run()
    start = upcoming(harness, case)[0]
    sandbox = harness.sandbox(case.provider)
    sandbox.end_series(case.series_key, start - timedelta(minutes=1))
    new_key = sandbox.create_series(organizer=case.manager, attendees=[case.report],
                                    title="1:1 (new series)", first_start=start,
                                    time_zone=SERIES_ZONES[case.provider])
    harness.sync()
    actors.reconcile.send()
    harness.run()

    with harness.session() as session:
        report = session.get(Person, pair.report_id)
        manager = session.get(Person, pair.manager_id)
        assert report is not None and manager is not None
        report_name, manager_version = report.display_name, manager.links_version
    owner_line = f"{report_name}: Send the draft by Friday"
    manager_page = client.get(manager_url(harness.settings, pair.manager_id,
                                          version=manager_version, base_url=ORIGIN,
                                          now=harness.clock()).removeprefix(ORIGIN))
    assert manager_page.status_code == 200
    assert owner_line in html.unescape(manager_page.text)
    assert "/prep/" in manager_page.text  # the manager's own page links their preparation

    def new_block() -> str:
        description = sandbox.description_of(case.manager, new_key, start)
        block = extract_block(description)
        assert block is not None
        return html.unescape(visible(block))

    assert "Send the draft by Friday" in new_block()
    links = [m.group(0).removeprefix(ORIGIN) for m in _URL.finditer(new_block())
             if int(m.group(2)) == pair.report_id]
    assert links, "the new series' invite has no link for the report"
    page = client.get(links[0])
    assert owner_line in html.unescape(re.sub(r"<[^>]+>", "", page.text))  # as people read it
    path, sig, csrf = _form(client, links[0])
    assert _post(client, f"{path}/done", {"sig": sig, "csrf": csrf, "done": [item_id]}) == 303
    harness.run()
    assert "Send the draft by Friday" not in new_block()
    assert owner_line not in html.unescape(client.get(
        manager_url(harness.settings, pair.manager_id, version=manager_version,
                    base_url=ORIGIN, now=harness.clock()).removeprefix(ORIGIN)).text)


def test_the_links_in_an_invite_cost_no_rewrite_as_time_passes(
        harness: Harness, case: ProviderCase) -> None:
    """A link's expiry comes from the meeting, not the clock: reconciling hours later plans
    the same block, so the invite is not written again."""
    _ready(harness, case)
    sandbox = harness.sandbox(case.provider)
    start = upcoming(harness, case)[0]
    before = sandbox.description_of(case.manager, case.series_key, start)
    written = {w.path for w in calls(sandbox).writes}
    assert written
    sandbox.clear_requests()
    harness.clock.now += timedelta(hours=5)
    actors.reconcile.send()
    harness.run()
    # (a meeting the moving horizon newly reaches gets its first agenda: not a rewrite)
    assert [w.path for w in calls(sandbox).writes if w.path in written] == []
    assert sandbox.description_of(case.manager, case.series_key, start) == before


def test_ids_out_of_range_are_refused_not_an_error(
        harness: Harness, case: ProviderCase, client: TestClient) -> None:
    pair = _ready(harness, case)
    link = _invite_link(harness, case, pair.report_id)
    path, sig, csrf = _form(client, link)
    assert client.get(f"/agenda/{2**40}/{pair.report_id}?sig={sig}").status_code == 403
    assert client.get(f"/agenda/{pair.pair_id}/{2**63}?sig={sig}").status_code == 403
    assert _post(client, f"{path}/done", {"sig": sig, "csrf": csrf,
                                          "done": [str(2**40), "9" * 5000, "x"]}) == 303
