"""A small in-memory token bucket per client address, for calls nobody has authenticated yet.

Per process, not shared between processes: it only has to keep one noisy or hostile client
from making us look up and decrypt channel tokens thousands of times a second. The table of
clients is bounded, so a flood of addresses cannot grow memory without limit.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """`capacity` calls at once per client, refilled at `per_second`."""

    def __init__(self, *, capacity: float = 20, per_second: float = 0.5,
                 max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self.per_second = per_second
        self._max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def _bucket(self, client: str) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = _Bucket(tokens=self.capacity, at=now)
            self._buckets[client] = bucket
            while len(self._buckets) > self._max_clients:
                self._buckets.popitem(last=False)  # the client heard from longest ago
        else:
            self._buckets.move_to_end(client)
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.per_second)
            bucket.at = now
        return bucket

    def retry_after(self, client: str) -> int:
        """0 when `client` may call now, else the seconds until one call is allowed."""
        with self._lock:
            bucket = self._bucket(client)
            if bucket.tokens >= 1:
                return 0
            return max(1, int((1 - bucket.tokens) / self.per_second + 0.999))

    def spend(self, client: str) -> None:
        """Charge one call (a refused or unauthenticated one) to `client`."""
        with self._lock:
            bucket = self._bucket(client)
            bucket.tokens = max(0.0, bucket.tokens - 1)
