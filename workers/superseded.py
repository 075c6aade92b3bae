"""A calendar sync message that a later sync has already covered is skipped.

The reconciler sends a sync for every calendar never synced, every interval, until it is: on
a first sync longer than one interval (2,000 accounts and one worker: minutes) every reconcile
queued the whole backlog again, and each copy cost one events.list and its database work
once its calendar had been synced (docs/benchmarks.md, "Scale-out"). A webhook storm for one
calendar queues copies the same way.

A sync that *began* after a message was sent and finished without an error has read
everything the provider held when the message was sent (a listing reads the provider's state
as of the request; a sync that found its calendar leased asked the holder for one more round,
which begins after that), so the message has nothing left to do. Both moments are wall-clock
(dramatiq's `message_timestamp` and this middleware's own clock), never the runtime's test
clock, and a second of margin absorbs the skew between the sender's and the worker's hosts.
The start of each calendar's last completed sync is kept in the broker's Redis (shared by
every worker process), in memory with the in-process broker.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

import dramatiq
from dramatiq.middleware import Middleware, SkipMessage

log = logging.getLogger(__name__)

ACTOR = "sync_calendar"
CLOCK_MARGIN_MS = 1_000
KEEP_SECONDS = 24 * 3600  # a record older than any message still queued is of no use
SUPERSEDED = "rapport_superseded"  # option marking a message this middleware skipped


class SyncStarts(Protocol):
    """When each calendar's last completed sync began (ms since the epoch)."""

    def get(self, calendar_id: int) -> int | None: ...

    def record(self, calendar_id: int, started_ms: int) -> None: ...


class MemorySyncStarts:
    """One process's record (the in-process broker's workers share one process)."""

    def __init__(self) -> None:
        self._starts: dict[int, int] = {}
        self._lock = threading.Lock()

    def get(self, calendar_id: int) -> int | None:
        return self._starts.get(calendar_id)

    def record(self, calendar_id: int, started_ms: int) -> None:
        with self._lock:
            self._starts[calendar_id] = max(started_ms, self._starts.get(calendar_id, 0))


# Keep the later of the stored and the new start, atomically (two workers may finish at once).
_RECORD_LATER = """
local old = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > old then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
"""


class RedisSyncStarts:
    """The record in Redis, so every worker process sees every other's syncs."""

    def __init__(self, client: Any, namespace: str = "rapport:sync-started") -> None:
        self._client = client
        self._namespace = namespace
        self._record = client.register_script(_RECORD_LATER)

    def _key(self, calendar_id: int) -> str:
        return f"{self._namespace}:{calendar_id}"

    def get(self, calendar_id: int) -> int | None:
        value = self._client.get(self._key(calendar_id))
        return int(value) if value is not None else None

    def record(self, calendar_id: int, started_ms: int) -> None:
        self._record(keys=[self._key(calendar_id)], args=[started_ms, KEEP_SECONDS])


def _calendar_of(message: Any) -> int | None:
    if message.actor_name != ACTOR:
        return None
    if message.args:
        return int(message.args[0])
    value = message.kwargs.get("calendar_id")
    return int(value) if value is not None else None


class QuietSupersededSkips(logging.Filter):
    """dramatiq's worker thread logs every skipped message at WARNING ("Message ... was
    skipped."); a superseded copy is routine, so only its DEBUG line of ours remains."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        options = getattr(args[0], "options", None) if args else None
        return not (isinstance(options, dict) and options.get(SUPERSEDED))


_QUIET = QuietSupersededSkips()
_SKIP_LOGGER = "dramatiq.worker.WorkerThread"  # dramatiq.logging.get_logger's name for it


class SupersededSyncs(Middleware):
    """Skips a `sync_calendar` message when a sync of its calendar that began at least
    CLOCK_MARGIN_MS after the message was sent has completed."""

    def __init__(self, starts: SyncStarts) -> None:
        self.starts = starts
        self._began: dict[str, int] = {}  # message id -> when this worker began it (ms)
        self._lock = threading.Lock()
        skip_log = logging.getLogger(_SKIP_LOGGER)
        if _QUIET not in skip_log.filters:
            skip_log.addFilter(_QUIET)

    @classmethod
    def for_broker(cls, broker: dramatiq.Broker) -> SupersededSyncs:
        client = getattr(broker, "client", None)  # RedisBroker's connection
        return cls(RedisSyncStarts(client) if client is not None else MemorySyncStarts())

    def before_process_message(self, broker: dramatiq.Broker,
                               message: Any) -> None:
        calendar_id = _calendar_of(message)
        if calendar_id is None:
            return
        started = self.starts.get(calendar_id)
        if started is not None and started >= message.message_timestamp + CLOCK_MARGIN_MS:
            log.debug("calendar %s was synced after %s was sent; skipped", calendar_id,
                      message.message_id)
            message.options[SUPERSEDED] = True
            raise SkipMessage(f"calendar {calendar_id} was synced after this message was sent")
        with self._lock:
            self._began[message.message_id] = int(time.time() * 1000)

    def after_process_message(self, broker: dramatiq.Broker, message: Any,
                              *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        calendar_id = _calendar_of(message)
        with self._lock:
            started = self._began.pop(message.message_id, None)
        if calendar_id is not None and started is not None and exception is None:
            self.starts.record(calendar_id, started)

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        """Skipped by a later middleware (an expired message): nothing was synced."""
        with self._lock:
            self._began.pop(message.message_id, None)
