"""What an alert says about a drop is true, end to end on both providers: who dropped it,
whether it was really rescheduled, which times are offered, and whose calendar was seen."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from sandbox.team import DOMAIN, person
from service.pairs.models import Occurrence, OccurrenceCopy, Outcome, Series
from workers import actors

from .conftest import Harness, ProviderCase
from .test_cancellations import (  # noqa: F401  (the autouse fixture turns quiet hours off)
    _after_grace,
    _alerts,
    _connected,
    _daytime_quiet_hours,
    _emls,
    _occurrence,
    _slots_in,
    _start,
)

MAYA, PRIYA = f"maya@{DOMAIN}", f"priya@{DOMAIN}"


def _alert_text(harness: Harness) -> str:
    [eml] = _emls(harness)
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return f"{message['Subject']}\n{body.get_content()}"


def _weeks(harness: Harness) -> datetime:
    return harness.clock() + timedelta(days=60)


def _ahead(starts: list[datetime], harness: Harness) -> list[datetime]:
    return [s for s in starts if s > harness.clock()]


def _report_name(case: ProviderCase) -> str:
    """The name the providers send for the report (never a word made from the address)."""
    return person(case.report).name


def test_a_report_declining_one_occurrence_is_their_decline_not_the_managers_cancellation(
        harness: Harness, case: ProviderCase) -> None:
    manager_account, report_account = harness.connect(case.manager), harness.connect(case.report)
    harness.sync()
    original = _start(harness, case)
    harness.sandbox(case.provider).decline_occurrence(case.series_key, original, case.report)
    for account_id in (manager_account, report_account):  # the report's copy vanishes last
        actors.sync_account.send(account_id)
        harness.run()
    occ = _occurrence(harness, case, original)
    assert occ.status == "confirmed" and occ.report_response == "declined"

    _after_grace(harness)
    assert _occurrence(harness, case, original).outcome == Outcome.DECLINED_BY_REPORT
    text = _alert_text(harness)
    assert f"{_report_name(case)} declined" in text
    assert "was declined" in text
    assert not any(words in text for words in ("cancelled", "You declined", "You cancelled"))


def test_outlook_removes_the_declined_occurrence_from_the_reports_calendar_only(
        harness: Harness) -> None:
    manager, report, key = "dana@acme.test", "lee@acme.test", "dana-lee"
    harness.connect(manager)
    harness.connect(report)
    harness.sync()
    original = _ahead(harness.graph.occurrence_starts(key, until=_weeks(harness)), harness)[1]
    harness.graph.decline_occurrence(key, original, report)
    harness.sync()
    with harness.session() as session:
        copies = session.execute(
            select(OccurrenceCopy.is_organizer_copy, OccurrenceCopy.removed)
            .join(Occurrence, Occurrence.id == OccurrenceCopy.occurrence_id)
            .join(Series, Series.id == Occurrence.series_id)
            .where(Series.organizer_email == manager, Occurrence.original_start == original)
        ).all()
    assert sorted(copies) == [(False, True), (True, False)]  # the report's copy went


def test_a_coffee_booked_before_the_cancellation_is_not_its_reschedule(
        harness: Harness, case: ProviderCase) -> None:
    _connected(harness, case)
    original = _start(harness, case)
    sandbox = harness.sandbox(case.provider)
    sandbox.create_series(organizer=case.manager, attendees=[case.report], title="Coffee",
                          first_start=original + timedelta(days=1), rrule=None)
    harness.sync()
    harness.clock.now = datetime.now(UTC) + timedelta(hours=1)  # an hour later ...
    sandbox.cancel_occurrence(case.series_key, original)  # ... the 1:1 is cancelled
    harness.sync()
    _after_grace(harness)
    assert _occurrence(harness, case, original).outcome == Outcome.CANCELLED_NO_RESCHEDULE
    assert len(_alerts(harness)) == 1 and "cancelled" in _alert_text(harness)


def test_a_meeting_booked_after_the_cancellation_is_its_reschedule(
        harness: Harness, case: ProviderCase) -> None:
    _connected(harness, case)
    original = _start(harness, case)
    sandbox = harness.sandbox(case.provider)
    sandbox.cancel_occurrence(case.series_key, original)
    harness.sync()
    sandbox.create_series(organizer=case.manager, attendees=[case.report], title="Coffee",
                          first_start=original + timedelta(days=1), rrule=None)
    harness.sync()
    _after_grace(harness)
    assert _occurrence(harness, case, original).outcome == Outcome.RESCHEDULED
    assert _alerts(harness) == []


def test_alert_slots_lie_around_the_dropped_occurrence_and_never_at_its_time(
        harness: Harness, case: ProviderCase) -> None:
    _connected(harness, case)
    original = _start(harness, case, nth=3)  # weeks ahead: searching from now would miss it
    harness.sandbox(case.provider).cancel_occurrence(case.series_key, original)
    harness.sync()
    _after_grace(harness)
    slots = _slots_in(_alert_text(harness), harness)
    assert slots
    for start in slots:
        assert harness.clock() < start
        assert original - timedelta(days=4) <= start <= original + timedelta(days=4)
        assert not (start < original + timedelta(minutes=30)
                    and original < start + timedelta(minutes=30))


def test_the_alert_says_whose_calendar_could_not_be_seen_on_a_cross_provider_pair(
        harness: Harness) -> None:
    harness.connect(MAYA)  # Google
    harness.connect(PRIYA)  # Microsoft 365
    harness.sync()
    key = "maya-priya"
    original = _ahead(harness.google.occurrence_starts(key, until=_weeks(harness)), harness)[1]
    harness.google.cancel_occurrence(key, original)  # Maya cancels in Google ...
    harness.graph.cancel_occurrence(key, original)  # ... and Priya's Outlook hears of it
    harness.sync()
    _after_grace(harness)
    text = _alert_text(harness)
    assert "could not see Priya Nair's calendar" in text
    assert "both free" not in text
    # Priya's zone now comes from her mailbox (Asia/Kolkata): her working day and Maya's in
    # New York do not overlap, so no time is offered as "within working hours"
    assert not _slots_in(text, harness)
    assert "no common free time in working hours" in text
