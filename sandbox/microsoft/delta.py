"""calendarView delta rounds (https://learn.microsoft.com/en-us/graph/delta-query-events).

Follows the documented shape: the first request names the window (startDateTime,
endDateTime); pages are chained by ``@odata.nextLink`` (``$skiptoken``); the last page has
``@odata.deltaLink`` (``$deltatoken``) whose round carries the same window and returns only
changes. Removed items come as ``{"id": ..., "@removed": {"reason": "deleted"}}``. An unknown
or expired token answers 410 Gone with code ``syncStateNotFound``
(https://learn.microsoft.com/en-us/graph/delta-query-overview#synchronization-reset).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sandbox.microsoft.store import Store


@dataclass(frozen=True)
class DeltaState:
    """What a deltatoken stands for: a window and the change sequence it was issued at."""

    owner: str
    start: datetime
    end: datetime
    since: int


@dataclass
class Round:
    """One round being paged: a snapshot of the ids to return."""

    owner: str
    start: datetime
    end: datetime
    ids: list[str]
    issued_at: int
    offset: int = 0


@dataclass(frozen=True)
class Page:
    """What one delta response holds."""

    owner: str
    item_ids: list[str]
    skiptoken: str | None
    deltatoken: str | None


class DeltaEngine:
    """Issues and serves delta rounds over a `Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.tokens: dict[str, DeltaState] = {}
        self.rounds: dict[str, Round] = {}

    def expire(self) -> None:
        """Forget every token and round: the next use answers 410."""
        self.tokens.clear()
        self.rounds.clear()

    def begin(self, owner: str, start: datetime, end: datetime, since: int | None = None) -> str:
        """Start a round (full when `since` is None); returns its skiptoken."""
        with self.store.lock:
            if since is None:
                ids = [i.id for i in self.store.in_window(owner, start, end) if not i.removed]
            else:
                box = self.store.mailboxes.get(owner, {}).values()
                changed = [
                    i
                    for i in box
                    if i.version > since
                    and i.kind != "seriesMaster"
                    and i.start < end
                    and i.end > start
                ]
                ids = [i.id for i in sorted(changed, key=lambda i: (i.version, i.id))]
            key = secrets.token_urlsafe(18)
            self.rounds[key] = Round(owner, start, end, ids, self.store.seq)
            return key

    def resume(self, deltatoken: str) -> str | None:
        """Start the incremental round a deltatoken stands for; None when the token is gone."""
        state = self.tokens.get(deltatoken)
        if state is None:
            return None
        return self.begin(state.owner, state.start, state.end, since=state.since)

    def page(self, skiptoken: str, size: int) -> Page | None:
        """The next page of a round; None when the skiptoken is unknown."""
        rnd = self.rounds.get(skiptoken)
        if rnd is None:
            return None
        ids = rnd.ids[rnd.offset : rnd.offset + size]
        if rnd.offset + size < len(rnd.ids):
            nxt = secrets.token_urlsafe(18)
            self.rounds[nxt] = Round(
                rnd.owner, rnd.start, rnd.end, rnd.ids, rnd.issued_at, rnd.offset + size
            )
            return Page(rnd.owner, ids, nxt, None)
        token = secrets.token_urlsafe(24)
        self.tokens[token] = DeltaState(rnd.owner, rnd.start, rnd.end, rnd.issued_at)
        return Page(rnd.owner, ids, None, token)
