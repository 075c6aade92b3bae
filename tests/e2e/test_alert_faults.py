"""A throttled free/busy does not hold back an alert: it goes at its due time, without
suggestions, saying the calendars could not be read, on both providers (issue 11, item 5)."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from sqlalchemy import select

from service.email.models import OutboxMessage
from workers import actors

from .conftest import Harness, ProviderCase
from .helpers import calls, later

GRACE = timedelta(hours=24, minutes=5)


@pytest.fixture(autouse=True)
def _daytime_quiet_hours(harness: Harness) -> None:
    """Quiet hours off (the real clock may be at night), so "on time" means now."""
    harness.runtime.settings.quiet_hours = (time(0, 0), time(0, 0))


def test_a_throttled_free_busy_sends_the_alert_on_time_without_slots(
        harness: Harness, case: ProviderCase) -> None:
    harness.connect(case.manager)
    harness.connect(case.report)
    harness.sync()
    sandbox = harness.sandbox(case.provider)
    sandbox.cancel_occurrence(case.series_key, later(harness, case)[2])
    harness.sync()
    sandbox.throttle_free_busy(retry_after=0.1)  # and it stays throttled
    sandbox.clear_requests()

    harness.clock.now += GRACE  # the check is due
    actors.reconcile.send()
    harness.run()

    assert calls(sandbox).status(429), "free/busy was not asked"
    with harness.session() as session:
        [alert] = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "alert"))
    assert alert.recipient == case.manager
    assert alert.not_before is None or alert.not_before <= harness.clock()
    assert "could not see your calendar or" in alert.body_text
    assert "no suggestions" in alert.body_text
    assert "are both free" not in alert.body_text  # no slot list
