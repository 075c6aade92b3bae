"""The manager page in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from application.web.app import create_app
from service.accounts.models import Account
from service.accounts.signing import manager_url, sign_manager
from service.people.models import Person
from service.settings import Settings
from tests.browser import ARTIFACTS, launch, require_chromium
from tests.metrics.conftest import History, factory, history, settings, utc  # noqa: F401
from tests.web.serving import serve

TIMEOUT = 30.0  # seconds: a loaded box can take longer than httpx's default 5 s to render

NOW = utc(2026, 3, 23, 12)


@pytest.fixture
def team(history: History) -> int:  # noqa: F811
    manager = history.person("maya@example.com", tz="Europe/Berlin", name="Maya Chen")
    outcomes = {
        "Sam Ortiz": ["held"] * 11 + ["held", None],
        "Lee Park": ["held", "cancelled_no_reschedule", "held", "rescheduled", "held",
                     "declined_by_report", "cancelled_no_reschedule", "held",
                     "cancelled_no_reschedule", "cancelled_no_reschedule",
                     "cancelled_no_reschedule", "cancelled_no_reschedule", None],
        "Ivy Novak": ["held", "rescheduled", "held", "held", "moved", "held", "held",
                      "rescheduled", "held", "held", "held", "held", None],
    }
    for i, (name, history_outcomes) in enumerate(outcomes.items()):
        report = history.person(f"{name.split()[0].lower()}@example.com", name=name)
        pair = history.pair(manager, report)
        series = history.series(pair, key=f"series-{i}")
        history.occurrences(series, utc(2025, 12, 29 + i, 9), history_outcomes)
    return manager


@pytest.fixture
def server(factory: sessionmaker[Session], settings: Settings) -> Iterator[str]:  # noqa: F811
    with serve(create_app(settings, factory, clock=lambda: NOW)) as url:
        yield url


def test_healthz_and_signature_checks_over_http(server: str, team: int,
                                                settings: Settings) -> None:  # noqa: F811
    health = httpx.get(f"{server}/healthz", timeout=TIMEOUT)
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": "ok", "broker": "ok",
                             "calendars_failing": 0, "accounts_needing_reconsent": 0}
    good = sign_manager(settings, team, version=0)
    assert httpx.get(f"{server}/managers/{team}?sig={good}", timeout=TIMEOUT).status_code == 200
    assert httpx.get(f"{server}/managers/{team}", timeout=TIMEOUT).status_code == 403
    assert httpx.get(f"{server}/managers/{team}?sig={'0' * 64}", timeout=TIMEOUT).status_code == 403
    other = sign_manager(settings, team + 1, version=0)
    assert httpx.get(f"{server}/managers/{team}?sig={other}", timeout=TIMEOUT).status_code == 403


@pytest.mark.browser
def test_manager_page_in_headless_chromium(server: str, team: int,
                                           settings: Settings) -> None:  # noqa: F811
    require_chromium()
    from playwright.sync_api import sync_playwright

    url = manager_url(settings, team, version=0, base_url=server)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            response = page.goto(url)
            assert response is not None and response.status == 200
            rows = page.locator("#pairs tbody tr")
            assert rows.count() == 3
            first = rows.nth(0).inner_text()
            assert "Lee Park" in first and "4/11" in first
            assert "Sam Ortiz" in page.locator("#pairs").inner_text()
            assert "Lee Park" in page.locator("#attention").inner_text()
            assert page.locator("figure svg rect.bar-dropped").count() >= 4
            assert page.locator("#pairs tbody tr").nth(0).locator(".strip span").count() == 12
            page.screenshot(path=str(ARTIFACTS / "manager-page.png"), full_page=True)

            bad = page.goto(url.replace("sig=", "sig=0"))
            assert bad is not None and bad.status == 403
            assert "not valid" in page.content()
        finally:
            browser.close()


@pytest.mark.browser
def test_the_manager_page_shows_who_has_no_1on1_with_a_link_to_set_one_up(
        server: str, team: int, settings: Settings, history: History,  # noqa: F811
        factory: sessionmaker[Session]) -> None:  # noqa: F811
    require_chromium()
    from playwright.sync_api import sync_playwright

    history.person("noor@example.com", name="Noor <b>Haddad</b>")  # typed by a person
    with factory.begin() as session:  # the org chart: all four report to Maya
        for person in session.scalars(select(Person).where(Person.id != team)):
            person.manager_id = team
        session.add(Account(provider="google", email="maya@example.com", person_id=team,
                            credentials_encrypted=b"-"))
    url = manager_url(settings, team, version=0, base_url=server)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            response = page.goto(url)
            assert response is not None and response.status == 200
            box = page.locator(".coverage")
            assert box.count() == 1
            assert ("Maya Chen has 4 direct reports; 3 have a weekly 1:1; "
                    "Noor <b>Haddad</b> has none.") in box.inner_text()
            link = page.locator('[data-gap="noor@example.com"] a')
            href = link.get_attribute("href") or ""
            assert href.startswith("https://calendar.google.com/calendar/render?action=TEMPLATE")
            assert "add=noor%40example.com" in href and "recur=RRULE%3AFREQ%3DWEEKLY" in href
            assert page.locator(".coverage b").count() == 0  # the name is text, not markup
            page.screenshot(path=str(ARTIFACTS / "manager-page-coverage.png"), full_page=True)
        finally:
            browser.close()
