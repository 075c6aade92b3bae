"""Running actors inside this process: the embedded default, `sync --once` and tests."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import dramatiq
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name
from dramatiq.errors import QueueJoinTimeout

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


def wait_until_idle(broker: dramatiq.Broker, *, deadline: float,
                    progress: Callable[[int], None] | None = None) -> None:
    """Join every queue until one whole pass finds them all empty (work begets work)."""
    last_report = time.monotonic()
    while True:
        if time.monotonic() >= deadline:
            raise TimeoutError("work did not finish in time")
        busy = pending_messages(broker) > 0
        for queue in broker.get_declared_queues():
            try:
                if isinstance(broker, StubBroker):  # a failed message is reported, not raised
                    broker.join(queue, timeout=2000, fail_fast=False)
                else:
                    broker.join(queue, timeout=2000)
            except QueueJoinTimeout:
                busy = True
        if not busy and pending_messages(broker) == 0:
            return
        if progress is not None and time.monotonic() - last_report >= PROGRESS_EVERY:
            progress(pending_messages(broker))
            last_report = time.monotonic()


def pending_messages(broker: dramatiq.Broker) -> int:
    """Messages queued, delayed or in flight (in-process broker; 0 for networked brokers,
    whose `join` itself waits for the queues to drain)."""
    if not isinstance(broker, StubBroker):
        return 0
    return sum(broker.queues[q].unfinished_tasks
               for name in broker.get_declared_queues()
               for q in (name, dq_name(name)) if q in broker.queues)
