"""Faults both sandboxes apply at their HTTP edge, the way a misbehaving network or provider
would: slow answers and writes refused with a status.

What the process-level fault suite needs to land a kill "mid-sync" or "mid-write" (a slow
request that is in flight while the test acts) and to refuse writes of an event with 410.
The state is shared by the server thread and the test, so every access takes `lock`.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import dataclass, field

LIST = "list"  # Google events.list, Graph calendarView delta: one calendar's changes
WRITE = "write"  # Google events.patch, Graph PATCH event: an agenda written into an invite
KINDS = (LIST, WRITE)


def request_kind(method: str, path: str) -> str | None:
    """Which faultable kind an API request is (None: neither)."""
    if method == "GET" and (path.endswith("/events") or path.endswith("/calendarView/delta")):
        return LIST
    if method == "PATCH" and "/events/" in path:
        return WRITE
    return None


@dataclass
class EdgeFaults:
    """Injected delays and refused writes, with in-flight counts."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    delays: dict[str, float] = field(default_factory=dict)  # kind -> seconds before answering
    failing_writes: dict[str, int] = field(default_factory=dict)  # calendar owner -> status
    in_flight: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, user)

    def reset(self) -> None:
        """No fault injected, nothing in flight counted."""
        with self.lock:
            self.delays.clear()
            self.failing_writes.clear()
            self.in_flight.clear()

    def slow_down(self, kind: str, delay: float | None) -> None:
        """Requests of `kind` wait `delay` seconds before they are served (None: heal)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        with self.lock:
            if delay is None:
                self.delays.pop(kind, None)
            else:
                self.delays[kind] = delay

    def fail_writes(self, owner: str, status: int | None) -> None:
        """Writes to `owner`'s calendar answer `status` (None: heal)."""
        with self.lock:
            if status is None:
                self.failing_writes.pop(owner.lower(), None)
            else:
                self.failing_writes[owner.lower()] = status

    def serving(self, kind: str, owner: str | None = None) -> int:
        """How many requests of `kind` (for `owner`'s calendar, or anyone's) are being served
        right now, waiting included."""
        with self.lock:
            return sum(n for (k, user), n in self.in_flight.items()
                       if k == kind and (owner is None or user == owner.lower()))

    async def wait(self, kind: str | None) -> None:
        """Sleep the injected delay for `kind` (without holding any lock)."""
        if kind is None:
            return
        with self.lock:
            delay = self.delays.get(kind, 0.0)
        if delay > 0:
            await asyncio.sleep(delay)

    def enter(self, kind: str | None, user: str | None) -> None:
        """Count `user`'s request of `kind` as in flight (an app-only token has no user)."""
        if kind is not None:
            with self.lock:
                self.in_flight[(kind, (user or "").lower())] += 1

    def leave(self, kind: str | None, user: str | None) -> None:
        """`user`'s request of `kind` was answered."""
        if kind is not None:
            with self.lock:
                self.in_flight[(kind, (user or "").lower())] -= 1

    def write_failure(self, kind: str | None, user: str | None) -> int | None:
        """The status a write by `user` answers instead, when one is injected."""
        if kind != WRITE or user is None:
            return None
        with self.lock:
            return self.failing_writes.get(user.lower())
