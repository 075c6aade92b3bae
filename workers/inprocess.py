"""Running actors inside this process: the embedded default, `sync --once` and tests."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dramatiq
from dramatiq import Message, Worker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name
from dramatiq.errors import QueueJoinTimeout

from workers.retries import FailedWork, RetryBudget, retries_of

log = logging.getLogger(__name__)

PROGRESS_EVERY = 5.0  # seconds between progress reports on long work


def run_until_idle(broker: dramatiq.Broker, *, threads: int = 4, timeout: float = 600.0,
                   progress: Callable[[int], None] | None = None) -> None:
    """Start a worker, wait until every queue is empty and no message is in flight, stop."""
    worker = Worker(broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    try:
        wait_until_idle(broker, deadline=time.monotonic() + timeout, progress=progress)
    finally:
        worker.stop()
        # the worker registered itself as broker middleware; a later run adds its own
        broker.middleware[:] = [m for m in broker.middleware
                                if getattr(m, "worker", None) is not worker]


@dataclass
class BoundedRun:
    """How a run that must end went: what failed for good, and whether time ran out."""

    failures: list[FailedWork] = field(default_factory=list)
    timed_out: bool = False


def run_bounded(broker: dramatiq.Broker, *, budget: RetryBudget | None = None,
                threads: int = 4, timeout: float = 300.0,
                progress: Callable[[int], None] | None = None) -> BoundedRun:
    """`run_until_idle` with a short retry budget and a time limit: it always ends.

    Work that keeps failing is failed after a few tries, and work still queued when time
    runs out stays queued (or due in the database); both are the long-running worker's and
    the reconciler's from then on.
    """
    outcome = BoundedRun()
    with retries_of(broker).bounded(budget or RetryBudget()) as failures:
        try:
            run_until_idle(broker, threads=threads, timeout=timeout, progress=progress)
        except TimeoutError:
            outcome.timed_out = True
        outcome.failures = list(failures)
    return outcome


def wait_until_idle(broker: dramatiq.Broker, *, deadline: float,
                    progress: Callable[[int], None] | None = None) -> None:
    """Join every queue until one whole pass finds them all empty (work begets work)."""
    last_report = time.monotonic()
    quiet_passes = 0
    while True:
        if time.monotonic() >= deadline:
            raise TimeoutError("work did not finish in time")
        busy = pending_messages(broker) > 0
        for queue in broker.get_declared_queues():
            try:
                if isinstance(broker, StubBroker):  # a failed message is reported, not raised
                    broker.join(queue, timeout=2000, fail_fast=False)
                elif _is_redis(broker):
                    busy = _redis_pending(broker, queue, due_before=deadline) > 0 or busy
                else:
                    broker.join(queue, timeout=2000)
            except QueueJoinTimeout:
                busy = True
        if not busy and pending_messages(broker) == 0:
            if not _is_redis(broker) or quiet_passes:
                return
            quiet_passes += 1  # polled, not joined: one more empty pass rules out a race
        elif _is_redis(broker):
            quiet_passes = 0
        if _is_redis(broker):
            time.sleep(0.1)
        if progress is not None and time.monotonic() - last_report >= PROGRESS_EVERY:
            progress(pending_messages(broker))
            last_report = time.monotonic()


def _is_redis(broker: dramatiq.Broker) -> bool:
    """A Redis broker (the redis extra may not be installed, so no import of our own)."""
    module = sys.modules.get("dramatiq.brokers.redis")
    return module is not None and isinstance(broker, module.RedisBroker)


def _redis_pending(broker: Any, queue: str, *, due_before: float) -> int:
    """Messages of `queue` queued or in flight, plus delayed ones due before the deadline.

    `RedisBroker.join` also waits for every delayed message, and a cancellation check
    delayed by the grace period (hours) would hold `sync --once` until it times out; work
    due after this run is the long-running worker's and the reconciler's.
    """
    client, prefix = broker.client, f"{broker.namespace}:{queue}"
    waiting = int(client.hlen(f"{prefix}.msgs"))
    latest_eta_ms = (time.time() + max(due_before - time.monotonic(), 0.0)) * 1000
    for data in client.hvals(f"{prefix}.DQ.msgs"):
        eta = Message.decode(data).options.get("eta", 0)
        if eta <= latest_eta_ms:
            waiting += 1
    return waiting


def pending_messages(broker: dramatiq.Broker) -> int:
    """Messages queued, delayed or in flight (in-process broker; 0 for networked brokers,
    whose `join` itself waits for the queues to drain)."""
    if not isinstance(broker, StubBroker):
        return 0
    return sum(broker.queues[q].unfinished_tasks
               for name in broker.get_declared_queues()
               for q in (name, dq_name(name)) if q in broker.queues)
