"""Agendas are planned when an input changes, not every pass: time alone brings a meeting into
the horizon (and it gets its agenda at the next reconcile, with no calendar change), and a
topic typed on the command line reaches the invite at the next reconcile, once."""

from __future__ import annotations

from datetime import timedelta

from service.agenda.block import extract_block
from workers import actors

from .conftest import Harness, ProviderCase
from .helpers import add_topic, calls, connect_pair, upcoming


def _reconcile(harness: Harness) -> None:
    actors.reconcile.send()
    harness.run()


def _settled(harness: Harness, case: ProviderCase) -> None:
    """Sync until the echoes of our own writes are read back and nothing is written: from
    here on, no sync brings a change, so only the input under test can cause a plan."""
    sandbox = harness.sandbox(case.provider)
    for _ in range(4):
        sandbox.clear_requests()
        harness.sync()
        if not calls(sandbox).writes:
            return
    raise AssertionError("the syncs keep writing")


def test_a_meeting_the_horizon_reaches_gets_its_agenda_at_the_next_pass(
        harness: Harness, case: ProviderCase) -> None:
    connect_pair(harness, case)
    harness.sync()
    _reconcile(harness)
    _settled(harness, case)
    sandbox = harness.sandbox(case.provider)
    first = upcoming(harness, case)[0]
    second = first + timedelta(weeks=1)  # the seeded series are weekly
    assert extract_block(sandbox.description_of(case.manager, case.series_key, second)) is None

    began = sandbox.description_of(case.manager, case.series_key, first)
    harness.clock.now += timedelta(minutes=1)
    _reconcile(harness)  # the outcomes the first pass settled are planned for: all quiet

    # a minute after the first one began, the second one is the next, and in the horizon
    harness.clock.now = first + timedelta(minutes=1)
    sandbox.clear_requests()
    _reconcile(harness)

    assert extract_block(sandbox.description_of(case.manager, case.series_key, second))
    assert sandbox.description_of(case.manager, case.series_key, first) == began  # frozen
    assert calls(sandbox).writes
    sandbox.clear_requests()
    _reconcile(harness)
    assert calls(sandbox).writes == []


def test_a_topic_reaches_the_invite_at_the_next_pass_and_is_written_once(
        harness: Harness, case: ProviderCase) -> None:
    connect_pair(harness, case)
    harness.sync()
    _reconcile(harness)
    _settled(harness, case)
    sandbox = harness.sandbox(case.provider)
    start = upcoming(harness, case)[0]
    add_topic(harness, case, "The offsite agenda")
    sandbox.clear_requests()
    _reconcile(harness)
    block = extract_block(sandbox.description_of(case.manager, case.series_key, start))
    assert block is not None and "The offsite agenda" in block
    assert len(calls(sandbox).writes) == 1
    harness.sync()  # the echo of that write: recognised, no write
    sandbox.clear_requests()
    _reconcile(harness)
    assert calls(sandbox).writes == []
