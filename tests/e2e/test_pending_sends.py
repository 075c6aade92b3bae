"""The reconciler sends an owed agenda write (a due calendar sync) once while a copy is
queued and not yet begun, not once per pass; once a run of it began, or the mark expired, it
sends it again when the database says it is still due. A sync's writes count as sent by it;
webhook and page sends are not deduplicated."""

from __future__ import annotations

import time
from datetime import timedelta

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import select

from service.calendars.models import Calendar
from workers import actors, pending
from workers.inprocess import run_until_idle

from .conftest import Harness, ProviderCase
from .helpers import add_topic, agenda_for_next, connect_pair

PASSES = 3


def _queued(harness: Harness, actor: dramatiq.Actor, arg: int) -> int:  # type: ignore[type-arg]
    """Copies of `actor(arg)` in its queue, not yet begun (in-process or Redis broker)."""
    broker = harness.broker
    if isinstance(broker, StubBroker):
        data = list(broker.queues[actor.queue_name].queue)
    else:  # dramatiq's Redis layout: every queued message in the hash "<ns>:<queue>.msgs"
        data = broker.client.hvals(  # type: ignore[attr-defined]
            f"{broker.namespace}:{actor.queue_name}.msgs")  # type: ignore[attr-defined]
    messages = [dramatiq.Message.decode(d) for d in data]
    return sum(1 for m in messages if m.actor_name == actor.actor_name and list(m.args) == [arg])


def _owed_write(harness: Harness, case: ProviderCase) -> int:
    connect_pair(harness, case)
    harness.sync()
    agenda_id, _ = agenda_for_next(harness, case)
    add_topic(harness, case, "Plans for the hackathon")  # the reconciler plans it: owed
    return agenda_id


def _reconcile(passes: int = 1) -> None:
    for _ in range(passes):
        actors.reconcile()  # the actor's function, as a worker runs it, without the queue


def _copies_after_a_run_and_a_pass(harness: Harness, agenda_id: int) -> int:
    """A worker takes every queued copy; then one reconcile pass: the copies it queued."""
    run_until_idle(harness.broker, threads=1, timeout=120)
    assert _queued(harness, actors.write_agenda, agenda_id) == 0
    _reconcile()
    return _queued(harness, actors.write_agenda, agenda_id)


def test_passes_while_a_write_is_queued_queue_one_copy(harness: Harness,
                                                       case: ProviderCase) -> None:
    agenda_id = _owed_write(harness, case)

    _reconcile(PASSES)  # no worker runs meanwhile

    assert _queued(harness, actors.write_agenda, agenda_id) == 1


def test_a_write_still_owed_after_its_run_is_sent_on_the_next_pass(
        harness: Harness, case: ProviderCase, monkeypatch: pytest.MonkeyPatch) -> None:
    agenda_id = _owed_write(harness, case)
    _reconcile()
    monkeypatch.setattr(actors, "write_agenda_into_invite", lambda *a, **k: None)  # writes nothing
    assert _copies_after_a_run_and_a_pass(harness, agenda_id) == 1


def test_a_write_whose_run_failed_is_sent_again(
        harness: Harness, case: ProviderCase, monkeypatch: pytest.MonkeyPatch) -> None:
    agenda_id = _owed_write(harness, case)
    _reconcile()

    def fails(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the provider said no")

    monkeypatch.setattr(actors, "write_agenda_into_invite", fails)
    monkeypatch.setattr(actors.write_agenda, "options", {**actors.write_agenda.options,
                                                         "max_retries": 0})
    assert _copies_after_a_run_and_a_pass(harness, agenda_id) == 1


def test_a_copy_is_sent_again_once_its_mark_expired(
        harness: Harness, case: ProviderCase, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pending, "PENDING_SECONDS", 1)  # Redis expiries are whole seconds
    agenda_id = _owed_write(harness, case)
    _reconcile()
    time.sleep(1.5)  # the copy counts as lost now

    _reconcile()

    assert _queued(harness, actors.write_agenda, agenda_id) == 2


def test_passes_while_a_sync_is_queued_queue_one_copy(harness: Harness,
                                                      case: ProviderCase) -> None:
    connect_pair(harness, case)
    harness.sync()
    harness.clock.now += timedelta(seconds=harness.settings.poll_interval_seconds * 2)
    with harness.session() as session:  # every calendar is due for its poll now
        calendar_ids = session.scalars(select(Calendar.id).order_by(Calendar.id)).all()
    assert calendar_ids

    _reconcile(PASSES)

    assert [_queued(harness, actors.sync_calendar, c) for c in calendar_ids] == \
        [1] * len(calendar_ids)


def test_direct_sends_are_not_deduplicated(harness: Harness, case: ProviderCase) -> None:
    agenda_id = _owed_write(harness, case)

    actors.write_agenda.send(agenda_id)  # e.g. the agenda page after an edit
    _reconcile(PASSES)
    actors.write_agenda.send(agenda_id)

    assert _queued(harness, actors.write_agenda, agenda_id) == 3


def test_a_copy_skipped_before_it_ran_is_sent_again(
        harness: Harness, case: ProviderCase, monkeypatch: pytest.MonkeyPatch) -> None:
    """A queued copy that another middleware skipped (here dramatiq's AgeLimit, like
    `SupersededSyncs`, before any run) is no longer queued: its mark goes with it."""
    agenda_id = _owed_write(harness, case)
    monkeypatch.setattr(actors.write_agenda, "options", {**actors.write_agenda.options,
                                                         "max_age": 1})  # ms
    _reconcile()
    time.sleep(0.1)
    assert _copies_after_a_run_and_a_pass(harness, agenda_id) == 1  # AgeLimit skipped it


def test_a_worker_boot_lets_the_next_pass_resend_copies_lost_with_a_killed_worker(
        harness: Harness, case: ProviderCase) -> None:
    """Redis: a killed worker's prefetched copy is unacked, not queued, until dramatiq gives it
    back; the worker started in its place clears the marks (in-process, they die with it)."""
    if isinstance(harness.broker, StubBroker):
        pytest.skip("the in-process broker's marks and messages live and die in one process")
    agenda_id = _owed_write(harness, case)
    _reconcile()
    harness.broker.flush_all()  # stands in for the copy held by the killed worker
    assert _queued(harness, actors.write_agenda, agenda_id) == 0

    run_until_idle(harness.broker, threads=1, timeout=120)  # a worker boots, nothing to do
    _reconcile()

    assert _queued(harness, actors.write_agenda, agenda_id) == 1


def test_syncs_and_passes_before_a_write_runs_queue_one_copy_of_it(
        harness: Harness, case: ProviderCase) -> None:
    """A sync sends the writes it planned; the other person's calendar syncs too and plans
    the same agenda, and a reconcile pass before the write runs finds it owed: without the
    sync's marks each of them queued another copy (2 after the syncs)."""
    connect_pair(harness, case)
    actors.sync_all_accounts()
    syncs_only = dramatiq.Worker(harness.broker, queues={"sync"}, worker_threads=1)
    syncs_only.start()
    try:
        harness.broker.join("sync")  # type: ignore[attr-defined]
        syncs_only.join()
    finally:
        syncs_only.stop()
    agenda_id, _ = agenda_for_next(harness, case)
    assert _queued(harness, actors.write_agenda, agenda_id) == 1  # the sync's own

    _reconcile(PASSES)

    assert _queued(harness, actors.write_agenda, agenda_id) == 1
