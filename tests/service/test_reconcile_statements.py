"""The reconciler's pass beside the agendas costs the same few indexed statements with
nothing due, however many 1:1s there are (issue 14, target 5): counted (`tests.statements`)
on a real SQLite file of the production schema, seeded with 10 and with 200 pairs
(`reconcile_seed`), after one pass that did what was due."""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.calendars.models import Calendar
from service.calendars.push import calendars_needing_channels, calendars_of_stopped_accounts
from service.calendars.queries import accounts_without_calendars, calendars_due_for_sync
from service.db import IN_CHUNK, make_engine, session_factory
from service.email.outbox import due_messages
from service.email.reconsent import queue_reconsent_emails
from service.metrics import digest
from service.outcomes import service as outcomes
from service.pairs.models import Occurrence, Pair
from service.prep.nudge import queue_prep_nudges
from service.prep.send_times import forget_send_times
from service.settings import Settings
from tests.service.reconcile_seed import HOUR, NOW, ZONES, seed
from tests.statements import Statement, statements

Part = Callable[[Session, Settings], Any]


def _calendars(session: Session, settings: Settings) -> tuple[list[int], ...]:
    return (calendars_due_for_sync(session, now=NOW, wall_now=NOW,
                                   poll_interval=timedelta(seconds=settings.poll_interval_seconds),
                                   push_fallback=timedelta(
                                       seconds=settings.push_poll_fallback_seconds)),
            accounts_without_calendars(session), calendars_needing_channels(session, now=NOW),
            calendars_of_stopped_accounts(session))


PARTS: dict[str, Part] = {
    "calendars": _calendars,
    "arm_checks": lambda s, st: outcomes.arm_checks(s, settings=st, now=NOW),
    "settle_ended": lambda s, st: outcomes.settle_ended(s, settings=st, now=NOW),
    "revisit_drops": lambda s, st: outcomes.revisit_drops(s, settings=st, now=NOW),
    "due_checks": lambda s, st: outcomes.due_checks(s, now=NOW),
    "reconsent_emails": lambda s, st: queue_reconsent_emails(s, settings=st, now=NOW),
    "due_messages": lambda s, st: due_messages(s, now=NOW),
    # reads and writes in sessions of its own, on the same engine
    "digest_due": lambda s, st: digest.digest_due(session_factory(s.get_bind()), settings=st,
                                                  now=NOW),
    "prep_nudges": lambda s, st: queue_prep_nudges(s, settings=st, now=NOW),
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, secret_key=SecretStr(Fernet.generate_key().decode()),
                    public_url="https://rapport.example")


@pytest.fixture
def company(tmp_path: Path,
            migrated_database: Path) -> Iterator[Callable[[int], sessionmaker[Session]]]:
    """Seeds a fresh copy of the schema with `pairs` 1:1s; returns its session factory."""
    engines: list[Engine] = []

    def seeded(pairs: int) -> sessionmaker[Session]:
        path = tmp_path / f"{pairs}.db"
        shutil.copyfile(migrated_database, path)
        engines.append(make_engine(f"sqlite:///{path}"))
        factory = session_factory(engines[-1])
        with factory.begin() as session:
            seed(session, pairs=pairs)
        return factory

    yield seeded
    for engine in engines:
        engine.dispose()


def _second_pass(factory: sessionmaker[Session], settings: Settings,
                 part: Part) -> tuple[Any, list[Statement]]:
    with factory.begin() as session:  # the pass that does what was due (marks old nudges)
        part(session, settings)
    with statements(factory) as seen, factory.begin() as session:
        result = part(session, settings)
    return result, seen


def _nothing(result: Any) -> bool:
    return not any(result) if isinstance(result, tuple) else not result


@pytest.mark.parametrize("name", sorted(PARTS))
def test_a_pass_with_nothing_due_costs_the_same_statements_at_10_and_200_pairs(
        name: str, company: Callable[[int], sessionmaker[Session]], settings: Settings) -> None:
    counts = {}
    for pairs in (10, 200):
        result, seen = _second_pass(company(pairs), settings, PARTS[name])
        assert _nothing(result), (name, pairs, result)
        counts[pairs] = len(seen)
    assert counts[10] == counts[200] <= 6, counts


def _plans(factory: sessionmaker[Session], seen: list[Statement], *,
           kinds: tuple[str, ...] = ("SELECT",)) -> list[str]:
    """SQLite's query plan of each statement of these kinds seen, with its parameters."""
    plans = []
    with factory() as session:
        raw = session.connection().connection.driver_connection
        assert raw is not None
        for statement, parameters in seen:
            if statement.lstrip().upper().startswith(kinds):
                rows = raw.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
                plans += [row[-1] for row in rows]
    return plans


# the index each part's lookup of occurrences / emails goes through (migration 0021)
INDEXES = {
    "arm_checks": "ix_occurrences_unarmed_drops",  # holds only drops nobody armed yet
    "settle_ended": "ix_occurrences_undecided_end",
    "due_checks": "ix_occurrences_undecided_end",
    "revisit_drops": "ix_occurrences_outcome_start",
    "prep_nudges": "ix_occurrences_prep_window",
    "due_messages": "ix_outbox_status_not_before",
    "digest_due": "ix_outbox_status_not_before",
}


@pytest.mark.parametrize("name", sorted(INDEXES))
def test_nothing_due_reads_occurrences_and_emails_only_through_an_index(
        name: str, company: Callable[[int], sessionmaker[Session]], settings: Settings) -> None:
    """Rows of every meeting and every email ever sent are never scanned: each lookup of
    `occurrences` or `outbox` is an index search, or a scan of the partial index that holds
    only undecided drops nobody armed yet."""
    factory = company(200)
    _, seen = _second_pass(factory, settings, PARTS[name])
    plans = [p for p in _plans(factory, seen) if " occurrences" in p or " outbox" in p]
    assert any(INDEXES[name] in p for p in plans), (name, plans)
    scans = [p for p in plans if p.startswith("SCAN")
             and "ix_occurrences_unarmed_drops" not in p]
    assert scans == [], (name, plans)


def test_a_syncs_follow_up_builds_no_context_for_occurrences_with_nothing_to_arm(
        company: Callable[[int], sessionmaker[Session]], settings: Settings) -> None:
    """`follow_up_drops` passes every occurrence a sync touched: those with nothing to arm
    (confirmed, or still cancelled in their grace period) cost no query of their own, only
    one query per batch of ids."""
    factory = company(200)
    with factory() as session:
        ids = list(session.scalars(select(Occurrence.id)))
        in_grace = session.scalar(select(func.count()).where(
            Occurrence.check_due_at.is_not(None)))
    assert len(ids) > 1_000 and in_grace
    with statements(factory) as seen, factory.begin() as session:
        armed = outcomes.arm_checks(session, settings=settings, now=NOW, occurrence_ids=ids)
    assert armed == []
    assert len(seen) == math.ceil(len(ids) / IN_CHUNK) + 1  # + BEGIN


def test_a_calendar_with_a_live_channel_is_polled_only_at_the_fallback_interval(
        company: Callable[[int], sessionmaker[Session]], settings: Settings) -> None:
    """Push replaces polling: a calendar whose channel has not expired is not due after the
    poll interval, only after `push_poll_fallback_seconds`; an expired channel (or none),
    or push being off (no RAPPORT_PUBLIC_URL), keeps the normal interval."""
    factory = company(10)
    poll = timedelta(seconds=settings.poll_interval_seconds)
    fallback = timedelta(seconds=settings.push_poll_fallback_seconds)
    with factory.begin() as session:  # calendar 1's channel ran out, calendar 2's is unknown
        session.execute(update(Calendar).where(Calendar.id == 1).values(
            subscription_expires_at=NOW))
        session.execute(update(Calendar).where(Calendar.id == 2).values(
            subscription_expires_at=None))

    def due(later: timedelta, *, push: bool = True) -> list[int]:
        with factory() as session:
            return sorted(calendars_due_for_sync(
                session, now=NOW + later, wall_now=NOW + later, poll_interval=poll,
                push_fallback=fallback if push else None))

    ready = [c for c in range(1, 11) if c != 4]  # account 4 needs re-consent: never due
    assert fallback > 10 * poll
    assert due(poll - timedelta(minutes=2)) == []
    assert due(poll) == [1, 2]
    assert due(poll, push=False) == ready
    assert due(fallback) == ready


def test_digest_due_works_out_send_times_per_time_zone_not_per_manager(
        company: Callable[[int], sessionmaker[Session]], settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    factory = company(200)
    calls: list[object] = []
    real = digest.send_at

    def counted(iso_week: str, tz: Any, settings: Settings) -> Any:
        calls.append(tz)
        return real(iso_week, tz, settings)

    monkeypatch.setattr(digest, "send_at", counted)
    assert digest.digest_due(factory, settings=settings, now=NOW) == []
    assert len(calls) == len(ZONES)  # 200 managers in three zones (one unset: UTC)


def test_a_meeting_moved_closer_gets_its_nudges_at_the_new_time(
        company: Callable[[int], sessionmaker[Session]], settings: Settings) -> None:
    """The send time kept for a meeting is worked out again when it moves: a meeting four
    days ahead (nudges not due) moved to two hours from now gets both nudges this pass."""
    factory = company(10)
    later = NOW + timedelta(days=3, hours=20)
    with factory.begin() as session:
        assert queue_prep_nudges(session, settings=settings, now=NOW) == []
        moved = session.scalars(select(Occurrence).where(
            Occurrence.scheduled_start == later, Occurrence.status == "confirmed")
            .order_by(Occurrence.id).limit(1)).one()
        assert moved.prep_due_at is not None and moved.prep_due_at > NOW
        moved.scheduled_start, moved.scheduled_end = NOW + timedelta(hours=2), NOW + 3 * HOUR
    with factory.begin() as session:
        queued = queue_prep_nudges(session, settings=settings, now=NOW)
    assert len(queued) == 2
    with factory.begin() as session:
        assert queue_prep_nudges(session, settings=settings, now=NOW) == []  # once


def test_a_persons_pairs_are_found_through_an_index_as_manager_and_as_report(
        company: Callable[[int], sessionmaker[Session]]) -> None:
    """A zone change forgets the send times of the person's pairs, whichever side they are
    on: `pairs.report_id` has an index of its own (migration 0027), so neither side scans
    the pairs of the whole company."""
    factory = company(200)
    with factory() as session:
        person = session.scalar(select(Pair.report_id).order_by(Pair.id))
    with statements(factory) as seen, factory.begin() as session:
        forget_send_times(session, people={person})
    plans = [p for p in _plans(factory, seen, kinds=("UPDATE",)) if " pairs" in p]
    assert any("ix_pairs_report_id" in p for p in plans), plans
    assert not [p for p in plans if p.startswith("SCAN pairs")], plans
