"""The digest and the manager's page tell one story: the same numbers, a link between them."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from application.web.app import create_app
from service.accounts.signing import manager_url, verify_manager
from service.metrics import digest
from service.metrics.reports import compute_manager
from service.metrics.serialisers import report_json
from service.settings import Settings
from tests.metrics.conftest import History, factory, history, settings, utc  # noqa: F401

NOW = utc(2026, 3, 23, 9)  # Monday of 2026-W13, before that morning's 1:1
WEEK = "2026-W13"  # the digest of W13 counts W01..W12; the page shows W02..W13


@pytest.fixture
def long_gap(history: History) -> int:  # noqa: F811
    """Met in W01, then seven dropped weeks, then weekly again: one 56-day stretch that the
    digest's window holds whole and the page's window only from its second week."""
    manager = history.person("dana@example.com", tz="Europe/London", name="Dana Okafor")
    report = history.person("lee@example.com", tz="Europe/London", name="Lee Morgan")
    pair = history.pair(manager, report)
    series = history.series(pair, key="dana-lee")
    history.occurrences(series, utc(2025, 12, 29, 10),
                        ["held"] + ["cancelled_no_reschedule"] * 7 + ["held"] * 4 + [None])
    return manager


def _gap_cells(html: str) -> list[str]:
    return re.findall(r'<td class="num">(\d+d / \d+d|–)</td>', html)


def _digest_link(text: str) -> str:
    links = re.findall(r"https?://\S+/managers/\S+", text)
    assert len(links) == 1, text
    return links[0]


def test_longest_gap_is_one_number_in_the_digest_the_page_and_the_cli(
        factory: sessionmaker[Session], settings: Settings, long_gap: int) -> None:  # noqa: F811
    with factory() as session:
        _, rendered = digest.build_digest(session, settings=settings, manager_id=long_gap,
                                          iso_week=WEEK, now=NOW)
        cli = report_json(compute_manager(session, manager_id=long_gap, now=NOW))
    [row] = [line for line in rendered.text.splitlines() if line.startswith("Lee Morgan")]
    assert row.endswith("56d / 7d")
    client = TestClient(create_app(settings, factory, clock=lambda: NOW))
    link = urlsplit(_digest_link(rendered.text))
    from_digest = client.get(f"{link.path}?{link.query}")
    # what `rapport metrics link` prints
    fresh = urlsplit(manager_url(settings, long_gap, version=0))
    page = client.get(f"{fresh.path}?{fresh.query}")
    assert from_digest.status_code == page.status_code == 200
    assert _gap_cells(from_digest.text) == _gap_cells(page.text) == ["56d / 7d"]
    assert cli["pairs"][0]["gap"]["longest_days"] == 56


def test_every_digest_carries_a_signed_link_to_the_managers_page(
        factory: sessionmaker[Session], settings: Settings, long_gap: int) -> None:  # noqa: F811
    for configured in (settings, settings.model_copy(
            update={"public_url": "https://rapport.example.org/"})):
        with factory() as session:
            _, rendered = digest.build_digest(session, settings=configured,
                                              manager_id=long_gap, iso_week=WEEK, now=NOW)
        link = _digest_link(rendered.text)
        base = (configured.public_url or
                f"http://{configured.http_host}:{configured.http_port}").rstrip("/")
        assert link.startswith(f"{base}/managers/{long_gap}?")
        assert f'href="{link.replace("&", "&amp;")}"' in rendered.html
        query = parse_qs(urlsplit(link).query)
        assert verify_manager(configured, long_gap, query["sig"][0], version=0, now=NOW) == "valid"
        other = verify_manager(configured, long_gap + 1, query["sig"][0], version=0, now=NOW)
        assert other == "invalid"
        assert query["week"] == ["2026-W12"]  # the digest's last week: the page shows its weeks


def test_digest_subject_names_the_weeks_it_counts(
        factory: sessionmaker[Session], settings: Settings, long_gap: int) -> None:  # noqa: F811
    with factory() as session:
        _, rendered = digest.build_digest(session, settings=settings, manager_id=long_gap,
                                          iso_week=WEEK, now=NOW)
    assert rendered.subject == "Your 1:1s over the last 12 weeks: 5 of 12 took place, 1 to look at"
    assert "over the last 12 weeks" in rendered.text


def test_a_page_link_with_a_bad_week_is_refused_plainly(
        factory: sessionmaker[Session], settings: Settings, long_gap: int) -> None:  # noqa: F811
    client = TestClient(create_app(settings, factory, clock=lambda: NOW))
    fresh = urlsplit(manager_url(settings, long_gap, version=0))
    answer = client.get(f"{fresh.path}?{fresh.query}&week=soon")
    assert answer.status_code == 400 and "2026-W12" in answer.text
