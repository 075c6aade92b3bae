"""How often failed messages are tried again: patiently in a long-running worker, briefly in
a run that must end (`sync --once`, the demo).

A long-running worker backs off up to ten minutes, eight times; the database keeps the work
due and the reconciler sends it again after that. A run that must end cannot wait that
long: within `RetryBudget` it retries a few times with a short backoff, fails the rest and
tells the caller which messages failed and why, leaving the work due in the database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import dramatiq
from dramatiq.middleware import Retries

log = logging.getLogger(__name__)

LONG_RUNNING_RETRIES = 8
LONG_RUNNING_MIN_BACKOFF_MS = 1_000
LONG_RUNNING_MAX_BACKOFF_MS = 600_000


@dataclass(frozen=True)
class RetryBudget:
    """Retries of one bounded run."""

    retries: int = 2
    min_backoff_ms: int = 500
    max_backoff_ms: int = 2_000
    longest_delay_ms: int = 5_000  # a longer Retry-After (throttling) is left for later


@dataclass(frozen=True)
class FailedWork:
    """A message that failed for good within a bounded run."""

    actor_name: str
    args: tuple[Any, ...]
    reason: str


@dataclass
class _Tally:
    budget: RetryBudget
    failures: list[FailedWork] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def one_line(err: BaseException) -> str:
    """The first line of an error's text, or its type when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class RapportRetries(Retries):
    """dramatiq's `Retries`, switchable to a `RetryBudget` for the length of one run."""

    def __init__(self) -> None:
        super().__init__(max_retries=LONG_RUNNING_RETRIES, min_backoff=LONG_RUNNING_MIN_BACKOFF_MS,
                         max_backoff=LONG_RUNNING_MAX_BACKOFF_MS)
        self._tally: _Tally | None = None
        # dramatiq's own logger name, so filters set on `Retries` lines apply to ours too
        self.logger = logging.getLogger("dramatiq.middleware.retries.Retries")

    @contextmanager
    def bounded(self, budget: RetryBudget) -> Iterator[list[FailedWork]]:
        """Use `budget` until the block ends; yields the list of messages that failed."""
        saved = (self.max_retries, self.min_backoff, self.max_backoff)
        tally = _Tally(budget)
        self.max_retries, self.min_backoff, self.max_backoff = (
            budget.retries, budget.min_backoff_ms, budget.max_backoff_ms)
        self._tally = tally
        try:
            yield tally.failures
        finally:
            self._tally = None
            self.max_retries, self.min_backoff, self.max_backoff = saved

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *,
                              result: Any = None, exception: BaseException | None = None
                              ) -> None:
        """Retry as configured; within a budget, a long requested delay fails the message."""
        if exception is None:
            return
        tally = self._tally
        if (tally is not None and isinstance(exception, dramatiq.Retry)
                and (exception.delay or 0) > tally.budget.longest_delay_ms):
            log.info("%s%s: asked to retry in %d ms, past this run; left for later",
                     message.actor_name, tuple(message.args), exception.delay)
            message.fail()
        else:
            super().after_process_message(broker, message, result=result, exception=exception)
        if tally is not None and message.failed:
            with tally.lock:
                tally.failures.append(FailedWork(message.actor_name, tuple(message.args),
                                                 one_line(exception)))


def retries_of(broker: dramatiq.Broker) -> RapportRetries:
    """The broker's `RapportRetries` (every broker `create_broker` makes has one)."""
    for middleware in broker.middleware:
        if isinstance(middleware, RapportRetries):
            return middleware
    raise LookupError("this broker was not made by workers.broker.create_broker")
