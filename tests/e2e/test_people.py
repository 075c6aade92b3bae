"""People have a name and a time zone, from what the providers say, on both providers; emails
greet them by name and never by a word made from their address."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from sandbox.team import person
from service.metrics import definitions as d
from service.metrics.digest import build_digest
from service.pairs.models import Series
from service.people.models import Person
from service.people.zones import zone_of
from workers import actors

from .conftest import Harness, ProviderCase

EXTERNAL = "sam.report@partner.test"  # someone no directory or calendar gives a name
GREETING = re.compile(r"^Hello\b[^\n]*", re.M)


@pytest.fixture(autouse=True)
def _daytime_quiet_hours(harness: Harness) -> None:
    """Quiet hours off (the real clock may be at night)."""
    harness.runtime.settings.quiet_hours = "00:00-00:00"


def _person(harness: Harness, address: str) -> Person:
    with harness.session() as session:
        return session.scalars(select(Person).where(Person.email == address)).one()


def _greetings(harness: Harness) -> list[str]:
    """The greeting line of every email part in the outbox folder."""
    lines = []
    for path in sorted(harness.settings.resolved_outbox_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for kind in ("plain", "html"):
            part = message.get_body((kind,))
            assert part is not None
            text = re.sub(r"<[^>]+>", "\n", part.get_content())  # type: ignore[attr-defined]
            lines += [g.strip() for g in GREETING.findall(text)]
    return lines


def test_after_a_sync_both_people_of_a_pair_have_names_and_their_own_time_zone(
        harness: Harness, case: ProviderCase) -> None:
    harness.connect(case.manager)
    harness.connect(case.report)
    harness.sync()
    for address in (case.manager, case.report):
        stored, seeded = _person(harness, address), person(address)
        # Google: attendee displayName and calendar timeZone; Graph: emailAddress.name and
        # the mailbox's Windows zone ("GMT Standard Time") read as IANA
        assert (stored.display_name, stored.time_zone) == (seeded.name, seeded.time_zone)


def test_an_account_connected_before_zones_were_read_gets_its_zone_on_the_next_sync(
        harness: Harness) -> None:
    harness.connect("dana@acme.test")
    with harness.runtime.factory.begin() as session:
        session.scalars(select(Person).where(Person.email == "dana@acme.test")).one() \
            .time_zone = None
    harness.sync()
    assert _person(harness, "dana@acme.test").time_zone == "Europe/London"


def test_the_digest_of_a_graph_manager_is_in_their_zone_and_greets_them_by_name(
        harness: Harness) -> None:
    harness.connect("dana@acme.test")
    harness.connect("lee@acme.test")
    harness.sync()
    dana = _person(harness, "dana@acme.test")
    week = d.iso_week_of(harness.clock(), zone_of(dana.time_zone))
    with harness.session() as session:
        _, rendered = build_digest(session, settings=harness.settings, manager_id=dana.id,
                                   iso_week=week, now=harness.clock())
    assert rendered.text.startswith("Hello Dana,\n")
    assert re.search(r"<p[^>]*>Hello Dana,", rendered.html)
    assert "Europe/London)." in rendered.text.splitlines()[2]
    assert "Lee Morgan" in rendered.text and "UTC" not in rendered.text


def test_an_alert_about_someone_without_a_name_names_their_address_never_a_word_from_it(
        harness: Harness, case: ProviderCase) -> None:
    harness.connect(case.manager)
    sandbox = harness.sandbox(case.provider)
    start = harness.clock().replace(microsecond=0) + timedelta(days=3)
    key = sandbox.create_series(organizer=case.manager, attendees=[EXTERNAL],
                                title="1:1 with Sam", first_start=start)
    harness.sync()
    with harness.session() as session:
        assert session.scalars(select(Series.pair_id).where(
            Series.other_email == EXTERNAL)).one() is not None
    assert _person(harness, EXTERNAL).display_name is None  # Graph sent the address as name
    original = sandbox.occurrence_starts(key, until=start + timedelta(days=30))[1]
    sandbox.cancel_occurrence(key, original)
    harness.sync()
    harness.clock.now = original + timedelta(hours=25)
    actors.reconcile.send()
    harness.run()
    [path] = sorted(harness.settings.resolved_outbox_dir.glob("*.eml"))
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert EXTERNAL in message["Subject"] and EXTERNAL in text
    assert "Sam.report" not in text and "Sam.report" not in message["Subject"]
    first = person(case.manager).name.split()[0]
    assert _greetings(harness) == [f"Hello {first},", f"Hello {first},"]
