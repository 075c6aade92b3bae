"""The prep nudge, end to end: the reconciler queues it once per occurrence and person, the
outbox delivers it (.eml files), and none goes for a cancelled meeting or an opted-out
person. Plus the send-time arithmetic in working hours."""

from __future__ import annotations

import email
import email.policy
import html
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from service.agenda.items import add_topic
from service.agenda.questions import BY_AREA
from service.email.models import OutboxMessage, OutboxStatus
from service.people.models import Person
from service.people.zones import zone_of
from service.prep.nudge import send_time
from workers import actors

from .conftest import Harness, ProviderCase
from .helpers import case_series, connect_pair, occurrence_at, upcoming

IMG = "<img src=x onerror=alert(1)>"
HOURS = (time(9, 0), time(17, 0))
BERLIN = ZoneInfo("Europe/Berlin")
# zones far apart: the same meeting's send time differs between some of them
ZONES = ("UTC", "Pacific/Kiritimati", "Asia/Tokyo", "Europe/Berlin", "America/New_York",
         "Pacific/Honolulu")


def _reconcile(harness: Harness) -> None:
    actors.reconcile.send()
    harness.run()


def _nudges(harness: Harness, case: ProviderCase, start: datetime) -> list[OutboxMessage]:
    """The nudges about the case's occurrence at `start` (other pairs of the seeded team
    get theirs too)."""
    occurrence = occurrence_at(harness, case_series(harness, case).id, start)
    with harness.session() as session:
        rows = list(session.scalars(select(OutboxMessage).where(
            OutboxMessage.kind == "prep",
            OutboxMessage.dedupe_key.startswith(f"prep:{occurrence.id}:"))
            .order_by(OutboxMessage.recipient)))
        session.expunge_all()
        return rows


def _emls(harness: Harness) -> list[Path]:
    return sorted(harness.settings.resolved_outbox_dir.glob("*.eml"))


def _ready(harness: Harness, case: ProviderCase) -> tuple[int, datetime]:
    """Connect and sync the pair; queue a hostile report topic and a private one. Nudges are
    off meanwhile: the seeded next meeting may be less than a day ahead of the real clock."""
    harness.settings.prep_nudge_hours = 0
    connect_pair(harness, case)
    harness.sync()
    pair_id = case_series(harness, case).pair_id
    assert pair_id is not None
    with harness.runtime.factory.begin() as session:
        add_topic(session, pair_id=pair_id, text=f"Career {IMG} plan")
        add_topic(session, pair_id=pair_id, text="Ask about the reorg rumours",
                  added_by="manager", private=True)
    _reconcile(harness)
    harness.settings.prep_nudge_hours = 24
    return pair_id, upcoming(harness, case)[0]


def test_a_nudge_goes_once_to_each_person_with_their_agenda_and_link(
        harness: Harness, case: ProviderCase) -> None:
    _, start = _ready(harness, case)
    harness.clock.now = start - timedelta(days=5)  # before any send time
    _reconcile(harness)
    assert _nudges(harness, case, start) == []

    harness.clock.now = start - timedelta(minutes=30)  # every send time lies before this
    _reconcile(harness)
    _reconcile(harness)  # the job twice: nothing more

    nudges = _nudges(harness, case, start)
    assert sorted(n.recipient for n in nudges) == sorted([case.manager, case.report])
    assert {n.status for n in nudges} == {OutboxStatus.SENT}
    sent = {str(email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                ["Message-ID"]): p for p in _emls(harness)}
    assert {n.message_id for n in nudges} <= set(sent)
    by = {n.recipient: n for n in nudges}
    report, manager = by[case.report], by[case.manager]
    assert f"Career {IMG} plan" in report.body_text
    assert "/agenda/" in report.body_text and "/prep/" not in report.body_text
    assert "reorg rumours" not in report.body_text and "reorg rumours" not in report.body_html
    assert "Ask about the reorg rumours" in manager.body_text
    assert "/prep/" in manager.body_text
    # the question to ask in person (never in the invite) reaches the manager alone
    in_person = {q.text for pool in BY_AREA.values() for q in pool if q.private}
    [prompt] = [text for text in in_person if text in manager.body_text]
    assert "Worth asking in person" in manager.body_text
    assert prompt in html.unescape(manager.body_html)
    assert not any(text in report.body_text or text in html.unescape(report.body_html)
                   for text in in_person)
    assert prompt not in harness.sandbox(case.provider).description_of(
        case.manager, case.series_key, start)
    for nudge in nudges:  # hostile text is text in the HTML part
        assert "<img" not in nudge.body_html
        assert "&lt;img src=x onerror=alert(1)&gt;" in nudge.body_html
    message = email.message_from_bytes(sent[report.message_id].read_bytes(),
                                       policy=email.policy.default)
    assert "the agenda so far" in str(message["Subject"])


def test_no_nudge_for_a_cancelled_meeting(harness: Harness, case: ProviderCase) -> None:
    _, start = _ready(harness, case)
    harness.sandbox(case.provider).cancel_occurrence(case.series_key, start)
    harness.sync()

    harness.clock.now = start - timedelta(minutes=30)
    _reconcile(harness)

    assert _nudges(harness, case, start) == []


def test_no_nudge_for_someone_who_opted_out_nor_after_the_meeting_started(
        harness: Harness, case: ProviderCase) -> None:
    _, start = _ready(harness, case)
    with harness.runtime.factory.begin() as session:
        session.execute(update(Person).where(Person.email == case.report)
                        .values(opted_out=True))

    harness.clock.now = start + timedelta(minutes=1)  # too late for anyone
    _reconcile(harness)
    assert _nudges(harness, case, start) == []

    harness.clock.now = start - timedelta(minutes=30)
    _reconcile(harness)
    assert [n.recipient for n in _nudges(harness, case, start)] == [case.manager]


def _at(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN).astimezone(UTC)


def test_the_send_time_moves_into_the_recipients_working_hours() -> None:
    lead = timedelta(hours=24)
    # Wednesday 10:00 -> Tuesday 10:00, inside working hours: kept
    assert send_time(_at(2026, 12, 2, 10), lead=lead, hours=HOURS, tz=BERLIN) \
        == _at(2026, 12, 1, 10)
    # Wednesday 08:00 -> Tuesday 08:00, before opening: Tuesday 09:00
    assert send_time(_at(2026, 12, 2, 8), lead=lead, hours=HOURS, tz=BERLIN) \
        == _at(2026, 12, 1, 9)
    # Monday 09:00 -> Sunday 09:00; the next opening is the meeting itself: Friday 16:00
    assert send_time(_at(2026, 12, 7, 9), lead=lead, hours=HOURS, tz=BERLIN) \
        == _at(2026, 12, 4, 16)
    # Monday 10:30 -> Sunday 10:30; Monday 09:00 still comes first
    assert send_time(_at(2026, 12, 7, 10, 30), lead=lead, hours=HOURS, tz=BERLIN) \
        == _at(2026, 12, 7, 9)
    # the same instant read in Tokyo is outside working hours there
    tokyo = ZoneInfo("Asia/Tokyo")
    assert send_time(_at(2026, 12, 2, 10), lead=lead, hours=HOURS, tz=tokyo) \
        == datetime(2026, 12, 2, 9, tzinfo=tokyo).astimezone(UTC)


def _people(harness: Harness, case: ProviderCase) -> dict[str, Person]:
    with harness.session() as session:
        rows = {p.email: p for p in session.scalars(select(Person).where(
            Person.email.in_([case.report, case.manager])))}
        session.expunge_all()
        return rows


def _send_at(harness: Harness, start: datetime, zone: str | None) -> datetime:
    return send_time(start, lead=timedelta(hours=harness.settings.prep_nudge_hours),
                     hours=harness.settings.working_hours, tz=zone_of(zone))


def _set_zone(harness: Harness, person_ids: list[int], zone: str) -> None:
    with harness.runtime.factory.begin() as session:  # as the directory or calendar sync do
        for person_id in person_ids:
            session.get_one(Person, person_id).time_zone = zone


def test_a_zone_change_before_the_nudge_is_due_moves_it_to_the_new_local_time(
        harness: Harness, case: ProviderCase) -> None:
    """Both people are in the zone where the meeting's eve falls latest in the working day
    when its send time is kept; then the report moves to the zone where it falls earliest:
    the report's nudge goes at the new zone's time, not at the one kept for the old zone."""
    _, start = _ready(harness, case)
    people = _people(harness, case)
    by_time = sorted(ZONES, key=lambda z: _send_at(harness, start, z))
    old, new = by_time[-1], by_time[0]
    before, moved = _send_at(harness, start, old), _send_at(harness, start, new)
    assert moved < before
    _set_zone(harness, [p.id for p in people.values()], old)
    harness.clock.now = start - timedelta(days=5)
    _reconcile(harness)  # the meeting enters the window: its send time is kept
    assert _nudges(harness, case, start) == []
    _set_zone(harness, [people[case.report].id], new)

    harness.clock.now = moved - timedelta(minutes=1)
    _reconcile(harness)
    assert _nudges(harness, case, start) == []
    harness.clock.now = moved
    _reconcile(harness)
    assert [n.recipient for n in _nudges(harness, case, start)] == [case.report]


def test_a_longer_lead_in_the_settings_applies_to_the_meetings_already_kept(
        harness: Harness, case: ProviderCase) -> None:
    """The lead grows from 24 to 72 hours after the meeting's send time was kept: both
    nudges go out at the new lead, three days before, not one."""
    _, start = _ready(harness, case)
    harness.clock.now = start - timedelta(days=5)
    _reconcile(harness)
    assert _nudges(harness, case, start) == []
    harness.settings.prep_nudge_hours = 72
    people = _people(harness, case)
    earliest = min(_send_at(harness, start, p.time_zone) for p in people.values())
    assert earliest < start - timedelta(hours=24)

    harness.clock.now = earliest
    _reconcile(harness)
    assert _nudges(harness, case, start) != []
