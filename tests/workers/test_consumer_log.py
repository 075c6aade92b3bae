"""A worker whose broker drops keeps its log readable: dramatiq's consumer threads report
every failed reconnect, once per queue, every few seconds; we keep one line per outage."""

from __future__ import annotations

import logging
import time

import pytest
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker

from workers import actors
from workers.broker import quiet_consumer_errors

CONSUMER_LOGGERS = "dramatiq.worker.ConsumerThread("  # one logger per queue


def test_consumer_threads_of_a_lost_broker_log_one_line_without_traceback(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    broker = RedisBroker(url="redis://127.0.0.1:1/0")  # nothing listens: the broker is gone
    for actor in actors.ALL:
        broker.declare_actor(actor)
    quiet_consumer_errors(broker)
    worker = Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    time.sleep(4)  # long enough for every consumer to fail, and to retry once
    worker.stop(timeout=5_000)

    lines = [r for r in caplog.records if r.name.startswith(CONSUMER_LOGGERS)]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].exc_info is None
    assert "connection error" in lines[0].getMessage()
