"""A calendar sync or agenda write message that a later run has already covered is skipped.

The reconciler sends a sync for every calendar never synced, every interval, until it is: on
a first sync longer than one interval (2,000 accounts and one worker: minutes) every reconcile
queued the whole backlog again, and each copy cost one events.list and its database work
once its calendar had been synced (docs/benchmarks.md, "Scale-out"). A webhook storm for one
calendar queues copies the same way, and the reconciler sends every owed agenda write again
each interval until it is done (9,665 writes queued for 4,000 agendas in that run).

A sync that *began* after a message was sent and finished without an error has read
everything the provider held when the message was sent (a listing reads the provider's state
as of the request; a sync that found its calendar leased asked the holder for one more round,
which begins after that), so the message has nothing left to do. Likewise a write of an
agenda that began after the message was sent planned it from the database as it then stood
and put that plan into the invite (or found it there); a change since then marks the agenda
owed again and sends a new message, which is not covered. Both moments are wall-clock
(dramatiq's `message_timestamp` and this middleware's own clock), never the runtime's test
clock, and a second of margin absorbs the skew between the sender's and the worker's hosts.
The start of each calendar's last completed sync (and each agenda's last completed write)
is kept in the broker's Redis (shared by every worker process), in memory with the
in-process broker.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

import dramatiq
from dramatiq.middleware import Middleware, SkipMessage

log = logging.getLogger(__name__)

COVERED = {"sync_calendar": "calendar_id", "write_agenda": "agenda_id"}  # actor -> its id
CLOCK_MARGIN_MS = 1_000
KEEP_SECONDS = 24 * 3600  # a record older than any message still queued is of no use
SUPERSEDED = "rapport_superseded"  # option marking a message this middleware skipped


class SyncStarts(Protocol):
    """When each subject's ("sync_calendar:12") last completed run began (ms since the
    epoch)."""

    def get(self, subject: str) -> int | None: ...

    def record(self, subject: str, started_ms: int) -> None: ...


class MemorySyncStarts:
    """One process's record (the in-process broker's workers share one process)."""

    def __init__(self) -> None:
        self._starts: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, subject: str) -> int | None:
        return self._starts.get(subject)

    def record(self, subject: str, started_ms: int) -> None:
        with self._lock:
            self._starts[subject] = max(started_ms, self._starts.get(subject, 0))


# Keep the later of the stored and the new start, atomically (two workers may finish at once).
_RECORD_LATER = """
local old = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > old then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
"""


class RedisSyncStarts:
    """The record in Redis, so every worker process sees every other's syncs."""

    def __init__(self, client: Any, namespace: str = "rapport:covered-since") -> None:
        self._client = client
        self._namespace = namespace
        self._record = client.register_script(_RECORD_LATER)

    def _key(self, subject: str) -> str:
        return f"{self._namespace}:{subject}"

    def get(self, subject: str) -> int | None:
        value = self._client.get(self._key(subject))
        return int(value) if value is not None else None

    def record(self, subject: str, started_ms: int) -> None:
        self._record(keys=[self._key(subject)], args=[started_ms, KEEP_SECONDS])


def subject_of(message: Any) -> str | None:
    """"sync_calendar:12" / "write_agenda:7" for a message this middleware covers."""
    parameter = COVERED.get(message.actor_name)
    if parameter is None:
        return None
    value = message.args[0] if message.args else message.kwargs.get(parameter)
    return f"{message.actor_name}:{int(value)}" if value is not None else None


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
    """Skips a `sync_calendar` (`write_agenda`) message when a sync of its calendar (a write
    of its agenda) that began at least CLOCK_MARGIN_MS after the message was sent has
    completed."""

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
        subject = subject_of(message)
        if subject is None:
            return
        started = self.starts.get(subject)
        if started is not None and started >= message.message_timestamp + CLOCK_MARGIN_MS:
            log.debug("%s ran again after %s was sent; skipped", subject, message.message_id)
            message.options[SUPERSEDED] = True
            raise SkipMessage(f"{subject} ran again after this message was sent")
        with self._lock:
            self._began[message.message_id] = int(time.time() * 1000)

    def after_process_message(self, broker: dramatiq.Broker, message: Any,
                              *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        subject = subject_of(message)
        with self._lock:
            started = self._began.pop(message.message_id, None)
        if subject is not None and started is not None and exception is None:
            self.starts.record(subject, started)

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        """Skipped by a later middleware (an expired message): nothing was synced."""
        with self._lock:
            self._began.pop(message.message_id, None)
