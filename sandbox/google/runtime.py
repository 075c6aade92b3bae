"""Per-run state of the Google sandbox besides calendars: grants, faults, channels, cursors.

- OAuth grants follow https://developers.google.com/identity/protocols/oauth2/web-server#offline:
  a refresh token yields short-lived access tokens; a revoked grant answers ``invalid_grant``.
- Sync tokens are opaque, bound to one calendar and a store epoch; `expire_cursors` bumps the
  epoch so every token issued before answers 410 (https://developers.google.com/calendar/api/guides/sync).
- Page tokens point at a snapshot of the result taken by the first page, so paging is stable.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox.admin import RecordedRequest
from sandbox.edge import EdgeFaults
from sandbox.google.workspace import Workspace
from sandbox.team import DOMAIN, TEAM, Population


@dataclass
class Channel:
    """A push channel registered by events.watch."""

    id: str
    resource_id: str
    calendar: str
    address: str
    token: str | None
    expiration_ms: int
    message_number: int = 0


@dataclass
class PageSnapshot:
    """The rest of a paged result and the sync token for its last page."""

    calendar: str
    items: list[dict[str, Any]]
    next_sync_token: str


@dataclass
class Runtime:
    """Everything the HTTP app needs besides the store; guarded by `lock`."""

    now: Callable[[], datetime]
    population: Population = TEAM  # whose grants are valid after reset()
    lock: threading.RLock = field(default_factory=threading.RLock)
    epoch: int = 0
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # refresh token -> email
    access_tokens: dict[str, str] = field(default_factory=dict)  # access token -> email
    revoked: set[str] = field(default_factory=set)
    throttle_left: int = 0
    throttle_retry_after: float = 1.0
    free_busy_retry_after: float | None = None  # every freeBusy answers 429 while set
    malformed_reads: set[str] = field(default_factory=set)  # event ids get/patch break
    edge: EdgeFaults = field(default_factory=EdgeFaults)  # delays, failing lists and writes
    channels: dict[str, Channel] = field(default_factory=dict)
    pages: dict[str, PageSnapshot] = field(default_factory=dict)
    recorded: list[RecordedRequest] = field(default_factory=list)
    workspace: Workspace = field(default_factory=lambda: Workspace(domain=DOMAIN))

    def reset(self) -> None:
        """Fresh grants for every Google person, no faults, channels or recorded requests."""
        with self.lock:
            self.epoch += 1
            self.refresh_tokens = {
                p.refresh_token: p.email for p in self.population.people_on("google")
            }
            self.access_tokens.clear()
            self.revoked.clear()
            self.throttle_left = 0
            self.free_busy_retry_after = None
            self.malformed_reads.clear()
            self.edge.reset()
            self.channels.clear()
            self.pages.clear()
            self.recorded.clear()
            self.workspace.reset()

    # -- OAuth ----------------------------------------------------------------------------

    def refresh(self, refresh_token: str) -> str | None:
        """A new access token for a valid grant, else None (``invalid_grant``)."""
        with self.lock:
            email = self.refresh_tokens.get(refresh_token)
            if email is None or email in self.revoked:
                return None
            return self.issue(email)

    def issue(self, email: str) -> str:
        """A new access token acting as `email`."""
        with self.lock:
            token = "ya29.sandbox-" + secrets.token_urlsafe(24)
            self.access_tokens[token] = email
            return token

    def user_for(self, access_token: str) -> str | None:
        """The email an access token belongs to, None when unknown or revoked."""
        with self.lock:
            email = self.access_tokens.get(access_token)
            return None if email is None or email in self.revoked else email

    def revoke(self, email: str) -> None:
        """Invalidate the person's grant and every access token issued from it."""
        with self.lock:
            self.revoked.add(email.lower())

    # -- faults ---------------------------------------------------------------------------

    def take_throttle(self) -> float | None:
        """Retry-After seconds when this request is to be throttled."""
        with self.lock:
            if self.throttle_left <= 0:
                return None
            self.throttle_left -= 1
            return self.throttle_retry_after

    # -- cursors --------------------------------------------------------------------------

    def sync_token(self, calendar: str, seq: int) -> str:
        """An opaque sync token for `calendar` as of change `seq`."""
        raw = json.dumps({"c": calendar, "s": seq, "e": self.epoch}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def read_sync_token(self, calendar: str, token: str) -> int | None:
        """The change sequence of a valid token, None when invalid or expired."""
        try:
            padded = token + "=" * (-len(token) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        except (ValueError, json.JSONDecodeError):
            return None
        if not isinstance(data, dict) or data.get("c") != calendar or data.get("e") != self.epoch:
            return None
        seq = data.get("s")
        return seq if isinstance(seq, int) else None

    def record(self, request: RecordedRequest) -> None:
        """Remember one served request."""
        with self.lock:
            self.recorded.append(request)
