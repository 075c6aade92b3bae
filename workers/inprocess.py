"""Running actors inside this process: the embedded default, `sync --once` and tests."""

from __future__ import annotations

import logging
import time

import dramatiq
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker

log = logging.getLogger(__name__)

QUEUES = ("default", "sync", "agenda", "email")


def run_until_idle(broker: dramatiq.Broker, *, threads: int = 4, timeout: float = 600.0) -> None:
    """Start a worker, wait until every queue is empty and no message is in flight, stop."""
    worker = Worker(broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    deadline = time.monotonic() + timeout
    try:
        wait_until_idle(broker, deadline=deadline)
    finally:
        worker.stop()


def wait_until_idle(broker: dramatiq.Broker, *, deadline: float) -> None:
    """Join every queue until one whole pass finds them all empty (work begets work)."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("work did not finish in time")
        busy = False
        for queue in broker.get_declared_queues():
            if _pending(broker, queue):
                busy = True
            broker.join(queue, timeout=int(remaining * 1000))
        if not busy and not any(_pending(broker, q) for q in broker.get_declared_queues()):
            return


def _pending(broker: dramatiq.Broker, queue: str) -> bool:
    if isinstance(broker, StubBroker):
        return bool(broker.queues[queue].unfinished_tasks)
    return False  # networked brokers: `join` itself waits for the queue to drain
