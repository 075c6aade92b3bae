"""Graph zone names read through CLDR's maintained Windows table (tzlocal), not a short list."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.microsoft.parse import parse_zoned
from connectors.microsoft.timezones import iana_name


@pytest.mark.parametrize(("graph", "iana"), [
    ("GMT Standard Time", "Europe/London"),
    ("Arabian Standard Time", "Asia/Dubai"),  # beyond the old hand-written 22 names
    ("Nepal Standard Time", "Asia/Katmandu"),
    ("Cen. Australia Standard Time", "Australia/Adelaide"),
    ("UTC", "UTC"),
    ("Europe/Lisbon", "Europe/Lisbon"),  # an administrator may set IANA names: they pass
    ("Mars Standard Time", None),
    ("", None),
])
def test_windows_and_iana_zone_names_become_iana(graph: str, iana: str | None) -> None:
    assert iana_name(graph) == iana


def test_an_event_time_in_a_less_common_windows_zone_is_read_exactly() -> None:
    start = parse_zoned({"dateTime": "2026-07-01T09:00:00.0000000",
                         "timeZone": "Nepal Standard Time"})
    assert start == datetime(2026, 7, 1, 3, 15, tzinfo=UTC)
