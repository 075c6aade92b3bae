"""Faults both sandboxes apply at their HTTP edge, the way a misbehaving network or provider
would: slow answers, listings that fail or break off half-way, writes refused with a status.

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
ANY = "any"  # every request at the edge, token refreshes included: a remote provider's latency
KINDS = (LIST, WRITE, ANY)


def request_kind(method: str, path: str) -> str | None:
    """Which faultable kind an API request is (None: neither)."""
    google_list = path.startswith("/calendar/v3/") and path.endswith("/events")
    if method == "GET" and (google_list or path.endswith("/calendarView/delta")):
        return LIST  # not Graph's GET .../events, the series masters' list
    if method == "PATCH" and "/events/" in path:
        return WRITE
    return None


@dataclass
class EdgeFaults:
    """Injected delays, failing or truncated listings and refused writes, with in-flight
    counts. Owners are calendar owners' emails, lower-cased."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    delays: dict[str, float] = field(default_factory=dict)  # kind -> seconds before answering
    failing_writes: dict[str, int] = field(default_factory=dict)  # calendar owner -> status
    failing_lists: dict[str, int] = field(default_factory=dict)  # calendar owner -> status
    truncated_lists: set[str] = field(default_factory=set)  # owners whose listings break off
    in_flight: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, user)

    def reset(self) -> None:
        """No fault injected, nothing in flight counted."""
        with self.lock:
            self.delays.clear()
            self.failing_writes.clear()
            self.failing_lists.clear()
            self.truncated_lists.clear()
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
        _set_status(self.lock, self.failing_writes, owner, status)

    def fail_listing(self, owner: str, status: int | None) -> None:
        """Listings of `owner`'s calendar answer `status` (None: heal)."""
        _set_status(self.lock, self.failing_lists, owner, status)

    def truncate_listing(self, owner: str, truncated: bool) -> None:
        """Listings of `owner`'s calendar answer 200 with half their body (False: heal)."""
        with self.lock:
            if truncated:
                self.truncated_lists.add(owner.lower())
            else:
                self.truncated_lists.discard(owner.lower())

    def list_failure(self, user: str | None) -> int | None:
        """The status every listing of `user`'s calendar answers, when one is injected."""
        with self.lock:
            return self.failing_lists.get((user or "").lower())

    def list_truncated(self, user: str | None) -> bool:
        """Whether every listing of `user`'s calendar answers a body cut off half-way."""
        with self.lock:
            return (user or "").lower() in self.truncated_lists

    def serving(self, kind: str, owner: str | None = None) -> int:
        """How many requests of `kind` (for `owner`'s calendar, or anyone's) are being served
        right now, waiting included."""
        with self.lock:
            return sum(n for (k, user), n in self.in_flight.items()
                       if k == kind and (owner is None or user == owner.lower()))

    async def wait(self, kind: str | None) -> None:
        """Sleep the injected delay for `kind` plus the one for every request (without
        holding any lock; asyncio.sleep, so other requests are served meanwhile)."""
        with self.lock:
            delay = self.delays.get(ANY, 0.0) + (self.delays.get(kind, 0.0) if kind else 0.0)
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


def _set_status(lock: threading.Lock, statuses: dict[str, int], owner: str,
                status: int | None) -> None:
    """Set (or with None, clear) the status injected for `owner`."""
    with lock:
        if status is None:
            statuses.pop(owner.lower(), None)
        else:
            statuses[owner.lower()] = status
