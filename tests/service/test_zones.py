"""A person's zone, else UTC: the one rule metrics, slots and alerts all read a day by."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

import pytest

from service.people.models import Person
from service.people.zones import person_zone, zone_name, zone_of


@pytest.mark.parametrize("name", [None, "", "Mars/Olympus", "../etc/passwd", "America",
                                  "x" * 300])
def test_an_unset_or_unusable_zone_is_read_as_utc_and_never_raises(name: str | None) -> None:
    assert zone_of(name).key == "UTC"


def test_an_unknown_zone_is_logged_once_per_read(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="service.people.zones"):
        zone_of("Mars/Olympus")
    assert [r.getMessage() for r in caplog.records] == [
        "unknown time zone 'Mars/Olympus'; using UTC"]


def test_a_persons_zone_is_their_own_when_known() -> None:
    assert person_zone(Person(email="a@x", time_zone="Pacific/Auckland")) == \
        ZoneInfo("Pacific/Auckland")
    assert person_zone(Person(email="b@x", time_zone=None)) == ZoneInfo("UTC")


def test_a_zone_prints_by_its_iana_name() -> None:
    assert zone_name(zone_of("Asia/Kolkata")) == "Asia/Kolkata"
    assert zone_name(zone_of(None)) == "UTC"
