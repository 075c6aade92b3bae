"""An account's calls in flight, each slot expiring on its own.

dramatiq's `ConcurrentRateLimiter` counts one key per account and sets the key's expiry
again on every acquire and every release (`RedisBackend.incr`/`decr`: `SET key n PX ttl`).
A slot a killed worker never gave back therefore lasts as long as the account keeps calling:
every kill mid-call takes one slot away from a busy account for good (seen: 3 of 4 slots
free 1.5 s after the holder died with a 0.5 s expiry, while the account kept calling).

Here each holder is a member of the account's sorted set, scored by its own expiry: the
counting semaphore with timeouts of "Redis in Action" (6.3, a holder that crashed times out:
drop the expired members with ZREMRANGEBYSCORE, count with ZCARD, add with ZADD), all in one
script so no race needs its rank check, timed by the Redis server's clock (`TIME`, allowed
before writes since Redis 5, which replicates a script's effects, not the script), so the
workers' own clocks do not matter. In memory with the in-process broker, whose threads all
live in this process.
https://redis.com/ebook/part-2-core-concepts/chapter-6-application-components-in-redis/6-3-counting-semaphores/
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol


class CallSlots(Protocol):
    """Slots per key; a slot not given back expires `ttl_ms` after it was taken."""

    def take(self, key: str, *, limit: int, ttl_ms: int) -> str | None:
        """A token for a free slot, or None when `limit` slots are held."""
        ...

    def give_back(self, key: str, token: str) -> None: ...


class MemoryCallSlots:
    """One process's slots."""

    def __init__(self) -> None:
        self._held: dict[str, dict[str, float]] = {}  # key -> token -> expiry (monotonic)
        self._lock = threading.Lock()

    def take(self, key: str, *, limit: int, ttl_ms: int) -> str | None:
        now = time.monotonic()
        with self._lock:
            held = {t: until for t, until in self._held.get(key, {}).items() if until > now}
            self._held[key] = held
            if len(held) >= limit:
                return None
            token = uuid.uuid4().hex
            held[token] = now + ttl_ms / 1000
            return token

    def give_back(self, key: str, token: str) -> None:
        with self._lock:
            held = self._held.get(key, {})
            held.pop(token, None)
            if not held:
                self._held.pop(key, None)


# KEYS[1]: the account's set; ARGV: limit, ttl in ms, the new holder's token
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


class RedisCallSlots:
    """The slots in Redis, shared by every worker process. The set itself expires with its
    newest slot, so an idle account leaves no key behind."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._take = client.register_script(_TAKE)

    def take(self, key: str, *, limit: int, ttl_ms: int) -> str | None:
        token = uuid.uuid4().hex
        return token if self._take(keys=[key], args=[limit, ttl_ms, token]) else None

    def give_back(self, key: str, token: str) -> None:
        self._client.zrem(key, token)


@contextmanager
def call_slot(slots: CallSlots, key: str, *, limit: int, ttl_ms: int) -> Iterator[bool]:
    """Hold a slot for the block (True), or run it without one (False: all were held)."""
    token = slots.take(key, limit=limit, ttl_ms=ttl_ms)
    try:
        yield token is not None
    finally:
        if token is not None:
            slots.give_back(key, token)
