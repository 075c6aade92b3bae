"""Faults a deployment meets, against real `rapport worker` / `rapport scheduler` processes
on PostgreSQL and Redis (issue 11, "A fault suite in CI").

Each scenario queues a topic in every 1:1 (so every due agenda must be written again) and
cancels a later occurrence (an alert is owed), injects its fault, ends it, and then waits
until `Stack.problems` has nothing left to say: the seconds that took are printed, and must
stay within the issue's 60 s (the wait itself gives up at a more generous ceiling). Then
everything runs a little longer and nothing may have been done twice.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import dramatiq

from workers import actors

from .fleet import PrivateRedis
from .stack import EXPECTED_RECOVERY, Recovery, Stack, settled, wait_for_recovery

FAULT_WAIT = 60.0  # seconds a scenario waits for its fault to take effect
QUEUES = ("default", "sync", "agenda", "email")


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + FAULT_WAIT
    while not condition():
        assert time.monotonic() < deadline, f"the fault never took effect: {what}"
        time.sleep(0.05)


def _recovered(stack: Stack, label: str, *, since: float, caught_up_since: datetime | None = None,
               writes_per_event: int = 1) -> Recovery:
    """The checks every scenario ends with."""
    got = wait_for_recovery(stack, since=since, label=label, caught_up_since=caught_up_since)
    assert got.left == [], stack.fleet.tail()
    assert settled(stack) == []
    twice = {event: n for event, n in stack.writes().items() if n > writes_per_event}
    assert twice == {}, "an agenda was written more often than its content changed"
    assert got.seconds <= EXPECTED_RECOVERY, stack.fleet.tail()
    return got


def _one_worker(stack: Stack) -> subprocess.Popen[bytes]:
    [worker] = stack.fleet.running("worker")
    return worker


def _queued(stack: Stack) -> list[dramatiq.Message]:  # type: ignore[type-arg]
    client = stack.broker.client  # type: ignore[attr-defined]
    found = []
    for queue in QUEUES:
        for raw in client.hvals(f"dramatiq:{queue}.msgs"):
            found.append(dramatiq.Message.decode(raw))
    return found


def test_every_message_delivered_twice_does_everything_once(stack: Stack) -> None:
    stack.begin()
    second_scheduler = stack.fleet.scheduler()  # two schedulers: every reconcile twice
    for worker in stack.fleet.running("worker"):
        stack.fleet.stop(worker)
    stack.add_topics("delivered twice")
    stack.cancel_next_free("google")
    stack.cancel_next_free("microsoft")
    actors.reconcile()  # the work it finds due is queued while no worker runs
    queued = _queued(stack)
    assert any(m.actor_name == "write_agenda" for m in queued)
    for message in queued:  # ... and every queued message is delivered a second time
        stack.broker.enqueue(message.copy(message_id=str(uuid.uuid4())))
    assert len(_queued(stack)) >= 2 * len(queued)

    since = time.monotonic()
    stack.fleet.worker()
    stack.fleet.worker()
    try:
        _recovered(stack, "every message twice", since=since)
    finally:
        stack.fleet.stop(second_scheduler)
        for extra in stack.fleet.running("worker")[1:]:
            stack.fleet.stop(extra)


def test_a_429_storm_with_retry_after_ends_in_full_recovery(stack: Stack) -> None:
    storm = 40
    stack.begin()
    for sandbox in stack.sandboxes():
        sandbox.inject_throttle(storm, retry_after=2.0)
    stack.add_topics("429 storm")
    stack.cancel_next_free("google")
    _until(lambda: all(len([r for r in s.requests() if r.status == 429]) >= storm
                       for s in stack.sandboxes()), "every throttled request answered")
    since = time.monotonic()

    _recovered(stack, "429 storm", since=since)


def test_server_errors_on_listings_and_writes_delay_nothing_for_long(stack: Stack) -> None:
    stack.begin()
    stack.google.fail_listing("maya@acme.test", status=503)
    stack.graph.fail_listing("dana@acme.test", status=500)
    stack.graph.fail_writes("dana@acme.test", status=503)
    stack.add_topics("5xx")
    stack.cancel_next_free("google")
    stack.cancel_next_free("microsoft")
    _until(lambda: all(len([r for r in s.requests() if r.status >= 500]) >= 3
                       for s in stack.sandboxes()), "listings answered 5xx")
    stack.google.fail_listing("maya@acme.test", status=None)
    stack.graph.fail_listing("dana@acme.test", status=None)
    stack.graph.fail_writes("dana@acme.test", status=None)
    since, ended = time.monotonic(), datetime.now(UTC)

    _recovered(stack, "5xx", since=since, caught_up_since=ended)


def test_a_truncated_page_on_one_account_heals_with_the_provider(stack: Stack) -> None:
    stack.begin()
    stack.graph.truncate_listing("dana@acme.test")
    stack.add_topics("truncated page")
    stack.cancel_next_free("microsoft")
    _until(lambda: len([r for r in stack.graph.requests() if r.user == "dana@acme.test"
                        and r.path.endswith("/delta") and r.status == 200]) >= 3,
           "dana's listing truncated")
    stack.graph.truncate_listing("dana@acme.test", truncated=False)
    since, ended = time.monotonic(), datetime.now(UTC)

    _recovered(stack, "truncated page", since=since, caught_up_since=ended)


def test_a_redis_restart_with_messages_queued_loses_nothing(
        stack: Stack, tmp_path: Path) -> None:
    redis = PrivateRedis(tmp_path)
    redis.start()
    for process in stack.fleet.running():
        stack.fleet.stop(process)
    try:
        stack.fleet.scheduler(RAPPORT_BROKER_URL=redis.url)
        worker = stack.fleet.worker(RAPPORT_BROKER_URL=redis.url)
        stack.begin()
        stack.fleet.stop(worker)  # messages pile up in Redis
        stack.add_topics("redis restart")
        stack.cancel_next_free("google")
        _until(lambda: redis.queued() > 0, "messages queued in Redis")
        redis.stop()  # no persistence: every queued message is gone
        redis.start()
        stack.fleet.worker(RAPPORT_BROKER_URL=redis.url)
        since = time.monotonic()

        _recovered(stack, "Redis restart", since=since)
    finally:
        for process in stack.fleet.running():
            stack.fleet.stop(process)
        redis.stop()
        stack.fleet.scheduler()
        stack.fleet.worker()


# The kills come after every scenario that waits for all calendars to sync: today a killed
# worker's sync lease blocks the calendars it was syncing for 10 minutes (issue 11 item 1),
# and a kill mid-write may land while another thread syncs. Scenarios that leave the shared
# population broken until the product is fixed run last.


def test_a_worker_killed_mid_write_loses_no_agenda(stack: Stack) -> None:
    stack.begin()
    for sandbox in stack.sandboxes():
        sandbox.slow_down("write", 4.0)
    stack.add_topics("killed mid-write")
    _until(lambda: stack.google.serving("write") + stack.graph.serving("write") > 0,
           "an agenda write in flight")

    stack.fleet.kill(_one_worker(stack))
    stack.fleet.worker()
    for sandbox in stack.sandboxes():
        sandbox.slow_down("write", None)
    since = time.monotonic()

    # a write that landed before the kill but was not recorded is legitimately made again
    _recovered(stack, "kill -9 mid-write", since=since, writes_per_event=2)


# Needs the recovery branch's 30 s renewed sync lease (on main): 31 s here, though one run
# on the earlier main took 121 s.
def test_a_worker_killed_mid_sync_blocks_no_calendar(stack: Stack) -> None:
    stack.begin()
    for sandbox in stack.sandboxes():
        sandbox.slow_down("list", 4.0)
    stack.add_topics("killed mid-sync")
    stack.cancel_next_free("google")
    _until(lambda: stack.google.serving("list", "maya@acme.test") > 0, "maya's sync in flight")

    stack.fleet.kill(_one_worker(stack))
    stack.fleet.worker()
    for sandbox in stack.sandboxes():
        sandbox.slow_down("list", None)
    since, ended = time.monotonic(), datetime.now(UTC)

    _recovered(stack, "kill -9 mid-sync", since=since, caught_up_since=ended)


# A write answered 404/410 is believed only when a read of the event agrees (issue 11 item 7:
# the organizer dropped it). While the event is still there, the agenda is not abandoned: the
# reconciler writes it once the provider accepts writes again.
def test_writes_answered_410_are_written_once_the_event_answers_again(stack: Stack) -> None:
    stack.begin()
    stack.google.fail_writes("maya@acme.test", status=410)
    stack.graph.fail_writes("dana@acme.test", status=410)
    stack.add_topics("410 on writes")
    _until(lambda: all(any(r.method == "PATCH" and r.status == 410 for r in s.requests())
                       for s in stack.sandboxes()), "writes refused with 410")
    time.sleep(2 * stack.settings.reconcile_interval_seconds)  # and refused again
    stack.google.fail_writes("maya@acme.test", status=None)
    stack.graph.fail_writes("dana@acme.test", status=None)
    since = time.monotonic()

    _recovered(stack, "410 on writes", since=since)
