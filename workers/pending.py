"""The reconciler sends no second copy of a calendar sync or agenda write already queued.

The reconciler sends a sync for every calendar due and a write for every owed agenda each
pass (every minute) until the work is done: with one worker behind a backlog of 2,000
accounts that queued 20,854 writes for 4,000 agendas and 2,494 syncs for 2,000 calendars
(docs/benchmarks.md, "Scale-out"). `workers.superseded` skips such copies cheaply once they
come up, but they still fill the queue, real work waits behind them, and each costs a Redis
read and a message round trip.

So the reconciler marks each subject ("write_agenda:7") it sends (and a sync the agenda
writes it sends: the next pass would otherwise add a copy of each), and a message of that
subject that begins (whatever then becomes of it: done, failed, skipped as superseded) clears
the mark: a marked subject has a copy queued and not yet begun, and the reconciler sends it
no other. A failed run is thus re-sent when the database's backoff makes it due again; a
run that left the work owed is re-sent on the next pass. The mark and its clearing are both
Redis writes, ordered by Redis, so the hosts' clocks do not matter. Every mark expires
after PENDING_SECONDS: a message lost anyway (a worker killed for good, a queue purged, an
expired message) is re-sent after it, and a mark outlives no data (Redis flushed: the
messages went with it). A sync's writes are marked as well: a write sent while a copy is
queued and not begun is covered by it (that copy plans from the database as it stands when
it runs). Webhook and page sends are not marked: they stay simple, and `workers.superseded`
still absorbs their copies.

The marks live where `workers.superseded` keeps its records: in the broker's Redis (shared
by every worker and the scheduler), in memory with the in-process broker; with RabbitMQ,
which offers no shared store, the reconciler sends as before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any, Protocol

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AgeLimit, Middleware

from workers.superseded import COVERED, subject_of

# Longer than a copy normally waits behind a backlog (a minute or two at 2,000 accounts and
# one worker), short enough that a lost message delays its work by minutes, not hours.
PENDING_SECONDS = 10 * 60


class PendingMarks(Protocol):
    """Which subjects have a copy sent by the reconciler and not yet begun."""

    def claim(self, subjects: list[str]) -> list[bool]:
        """Mark each unmarked subject; True for those newly marked (send them)."""
        ...

    def began(self, subject: str) -> None: ...

    def clear(self) -> None: ...


class MemoryPendingMarks:
    """One process's marks (the in-process broker's workers share its process)."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}  # subject -> when its mark expires (monotonic)
        self._lock = threading.Lock()

    def claim(self, subjects: list[str]) -> list[bool]:
        now = time.monotonic()
        claimed = []
        with self._lock:
            for subject in subjects:
                fresh = self._until.get(subject, 0.0) <= now
                if fresh:
                    self._until[subject] = now + PENDING_SECONDS
                claimed.append(fresh)
        return claimed

    def began(self, subject: str) -> None:
        with self._lock:
            self._until.pop(subject, None)

    def clear(self) -> None:
        with self._lock:
            self._until.clear()


class RedisPendingMarks:
    """The marks in Redis: one key per subject, set with NX and an expiry, all of one pass in
    one pipeline (one round trip)."""

    def __init__(self, client: Any, namespace: str = "rapport:pending") -> None:
        self._client = client
        self._namespace = namespace

    def _key(self, subject: str) -> str:
        return f"{self._namespace}:{subject}"

    def claim(self, subjects: list[str]) -> list[bool]:
        if not subjects:
            return []
        pipe = self._client.pipeline(transaction=False)
        for subject in subjects:
            pipe.set(self._key(subject), 1, nx=True, ex=PENDING_SECONDS)
        # redis.io SET: with NX it replies nil (None) when the key exists, OK when it set it
        return [bool(done) for done in pipe.execute()]

    def began(self, subject: str) -> None:
        self._client.delete(self._key(subject))

    def clear(self) -> None:
        keys = list(self._client.scan_iter(match=f"{self._namespace}:*", count=1000))
        if keys:
            self._client.delete(*keys)


class PendingSends(Middleware):
    """Clears a subject's mark when any message of it begins. It comes before `AgeLimit` and
    `SupersededSyncs`, so a message they skip clears it too (it is no longer queued).

    With Redis it also clears every mark when a worker process boots: a worker killed with
    messages prefetched but not begun leaves them unacked, and dramatiq's Redis broker gives
    them back only after its heartbeat timeout (60 s) at a random maintenance (1,000 commands
    in a million), so their marks would hold back the reconciler's re-send for the whole
    bound; the worker started in its place lets the next pass send what is still due."""

    def __init__(self, marks: PendingMarks, *, clear_on_boot: bool) -> None:
        self.marks = marks
        self.clear_on_boot = clear_on_boot

    @classmethod
    def for_broker(cls, broker: dramatiq.Broker) -> PendingSends | None:
        """Marks every process sees: in Redis with the Redis broker, in memory in-process.
        None with RabbitMQ: the reconcile message and the messages it sends may run in
        different worker processes, and marks kept in one would hold back the re-send of a
        failed or unfinished run for the whole bound, so nothing is deduplicated there."""
        client = getattr(broker, "client", None)  # RedisBroker's connection
        if client is not None:
            return cls(RedisPendingMarks(client), clear_on_boot=True)
        if isinstance(broker, StubBroker):  # the marks die with the process and its messages
            return cls(MemoryPendingMarks(), clear_on_boot=False)
        return None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        if self.clear_on_boot:
            self.marks.clear()

    @classmethod
    def install(cls, broker: dramatiq.Broker) -> None:
        pending = cls.for_broker(broker)
        if pending is not None:
            broker.add_middleware(pending, before=AgeLimit)

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        subject = subject_of(message)
        if subject is not None:
            self.marks.began(subject)


def _pending_sends(broker: dramatiq.Broker) -> PendingSends | None:
    return next((m for m in broker.middleware if isinstance(m, PendingSends)), None)


def send_unless_pending(actor: Any, ids: Iterable[int]) -> int:
    """Send `actor` (sync_calendar or write_agenda) for each id without a copy pending;
    returns how many were sent. Marks first, then sends: a message that began before its
    mark was written would leave the mark standing until it expires."""
    assert actor.actor_name in COVERED, actor.actor_name
    ids = list(ids)
    pending = _pending_sends(actor.broker)
    claimed = (pending.marks.claim([f"{actor.actor_name}:{i}" for i in ids])
               if pending is not None else [True] * len(ids))
    sent = [i for i, fresh in zip(ids, claimed, strict=True) if fresh]
    for item in sent:
        actor.send(item)
    return len(sent)


def forget_pending(broker: dramatiq.Broker) -> None:
    """Drop every mark (with the queues purged by `flush_all`, as tests do)."""
    pending = _pending_sends(broker)
    if pending is not None:
        pending.marks.clear()
