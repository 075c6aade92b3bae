"""Greetings and names in the digest, the page and the alert: by name, else neutral, never
built from an address; and a stored name survives a provider that sends none."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from application.web.app import create_app
from service.accounts.signing import manager_url
from service.metrics import digest
from service.outcomes.alerts import AlertFacts, render_alert
from service.pairs.models import Outcome
from service.people.models import Person
from service.people.service import ensure_person, remember_names
from service.settings import Settings
from tests.metrics.conftest import History, utc

NOW = utc(2026, 3, 23, 9)


def _nameless_manager(history: History) -> int:
    manager = history.person("sam.report@example.com", tz="Europe/London", name=None)
    report = history.person("kai@example.com", name="Kai Weber")
    series = history.series(history.pair(manager, report), key="s")
    history.occurrences(series, utc(2026, 1, 5, 10), ["held"] * 10)
    return manager


def test_a_manager_without_a_known_name_gets_a_neutral_greeting_in_the_digest_and_page(
        factory: sessionmaker[Session], history: History, settings: Settings) -> None:
    manager = _nameless_manager(history)
    with factory() as session:
        _, rendered = digest.build_digest(session, settings=settings, manager_id=manager,
                                          iso_week="2026-W13", now=NOW)
    assert rendered.text.startswith("Hello,\n")
    assert re.search(r"<p[^>]*>Hello,\s", rendered.html)
    for part in (rendered.subject, rendered.text, rendered.html):
        assert not re.search(r"Hello [^,\n]*(@|sam\.report|Sam\.report)", part)
        assert "Sam.report" not in part
    link = urlsplit(manager_url(settings, manager, version=0))
    page = TestClient(create_app(settings, factory, clock=lambda: NOW)).get(
        f"{link.path}?{link.query}")
    assert page.status_code == 200
    assert "<h1>Your 1:1s</h1>" in page.text and "Sam.report" not in page.text


def test_a_named_manager_is_greeted_by_first_name() -> None:
    facts = AlertFacts(occurrence_id=1, title="1:1", manager_name="Chen, Maya",
                       manager_email="maya@x.test", report_name="sam.report@x.test",
                       report_email="sam.report@x.test", dropped_by="You",
                       outcome=Outcome.CANCELLED_NO_RESCHEDULE,
                       original_start=NOW + timedelta(days=1), duration_minutes=30,
                       manager_zone=ZoneInfo("Europe/London"), provider="google")
    assert render_alert(facts).text.startswith("Hello Maya,\n")
    nameless = render_alert(AlertFacts(**{**facts.__dict__, "manager_name": None}))
    assert nameless.text.startswith("Hello,\n") and "Sam.report" not in nameless.text


def test_a_stored_name_is_kept_when_a_provider_sends_none_or_an_address(
        factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        ensure_person(session, email="dana@example.com", display_name="dana@example.com")
        ensure_person(session, email="lee@example.com", display_name="  Lee   Morgan ")
    with factory.begin() as session:
        remember_names(session, {"dana@example.com": "Dana Okafor", "lee@example.com": "",
                                 "stranger@example.com": "Not Stored"})
    with factory.begin() as session:
        remember_names(session, {"dana@example.com": "dana@example.com",
                                 "lee@example.com": None})
        ensure_person(session, email="lee@example.com", display_name="")
    with factory() as session:
        names = {p.email: p.display_name for p in session.scalars(select(Person))}
    assert names == {"dana@example.com": "Dana Okafor", "lee@example.com": "Lee Morgan"}
