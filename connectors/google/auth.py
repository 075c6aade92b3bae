"""Credentials for the Google connector: auth is handed in, refreshed by google-auth.

Refresh follows https://developers.google.com/identity/protocols/oauth2/web-server#offline;
a revoked grant makes the refresh fail with ``invalid_grant``, which the connector turns
into `AuthRevoked` at the HTTP edge (`connectors.google.client`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from google.auth import _helpers
from google.auth import credentials as auth_credentials
from google.oauth2 import service_account
from google.oauth2.credentials import Credentials

# The smallest scopes that do the job: events read/write (agenda block, watch), the calendar
# list, and free/busy. For the consent flow in service/.
CALENDAR_SCOPES = (
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
    "https://www.googleapis.com/auth/calendar.freebusy",
)

# Domain-wide delegation (https://developers.google.com/identity/protocols/oauth2/service-account#delegatingauthority):
# the directory read-only, and group membership read-only when the grant names a group.
DIRECTORY_USERS_SCOPE = "https://www.googleapis.com/auth/admin.directory.user.readonly"
DIRECTORY_MEMBERS_SCOPE = "https://www.googleapis.com/auth/admin.directory.group.member.readonly"


def delegated_credentials(key: Mapping[str, Any], subject: str,
                          scopes: Sequence[str]) -> service_account.Credentials:
    """Service-account credentials acting as `subject` (domain-wide delegation); tokens come
    from the key file's own ``token_uri`` through the JWT-bearer grant."""
    base = service_account.Credentials.from_service_account_info(dict(key), scopes=list(scopes))
    return base.with_subject(subject)


def google_credentials(
    refresh_token: str,
    client_id: str,
    client_secret: str,
    token_uri: str,
    *,
    scopes: Sequence[str] | None = None,
    access_token: str | None = None,
) -> Credentials:
    """User credentials that refresh themselves at `token_uri` (Google's or the sandbox's)."""
    return Credentials(
        token=access_token,
        refresh_token=refresh_token,
        client_id=client_id,
        client_secret=client_secret,
        token_uri=token_uri,
        scopes=list(scopes) if scopes is not None else None,
    )


class SharedToken(Protocol):
    """Where an account's current access token is kept for every process (the service
    injects a database store; the connector never sees the database)."""

    def load(self) -> tuple[str, datetime] | None:
        """The token another process saved and its expiry (naive UTC, as google-auth's
        ``expiry``), or None."""

    def save(self, token: str, expiry: datetime) -> None:
        """Keep a freshly obtained token and its expiry (naive UTC) for the other processes."""


def _still_valid(expiry: datetime) -> bool:
    """Whether google-auth would call a token with this expiry valid: it treats a token as
    expired `REFRESH_THRESHOLD` (3 min 45 s) early (`Credentials.expired`,
    https://github.com/googleapis/google-auth-library-python/blob/main/google/auth/_helpers.py)."""
    return _helpers.utcnow() < expiry - _helpers.REFRESH_THRESHOLD


class SerializedRefresh(auth_credentials.Credentials):
    """One account's google-auth credentials shared by every thread: one token refresh at a time.

    google-auth refreshes in `before_request` whenever the token is not valid, without a
    lock (`Credentials._blocking_refresh`), so threads that start at once would each ask
    the token endpoint. Here the check and the refresh run under the account's lock: the
    first thread refreshes, the others find a valid token. After a 401, AuthorizedHttp calls
    `refresh` (google_auth_httplib2); a thread whose token another thread has replaced since
    it sent its request takes the new one instead of asking again.

    With `shared`, processes share the token too: when a refresh would happen, a valid token
    another process saved is adopted instead (unless it is the one that just failed), and a
    token this process obtained is saved for them. The store is read only then, never while
    this process's own token is valid.
    """

    def __init__(self, inner: auth_credentials.Credentials,
                 shared: SharedToken | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.shared = shared
        self._lock = threading.Lock()
        self._sent = threading.local()  # the token this thread last put on a request

    @property
    def token(self) -> Any:  # type: ignore[override]
        """The current access token (the wrapped credentials')."""
        return self.inner.token

    @token.setter
    def token(self, value: Any) -> None:
        """Set by the base class's __init__ only; the wrapped credentials keep the token."""

    @property
    def expired(self) -> bool:
        return bool(self.inner.expired)

    @property
    def valid(self) -> bool:
        return bool(self.inner.valid)

    def refresh(self, request: Any) -> None:
        """Refresh (after a 401), unless another thread already replaced the token this
        thread sent."""
        with self._lock:
            sent = getattr(self._sent, "token", None)
            if sent is None or self.inner.token in (None, sent):
                self._renew(request, failed=sent)

    def before_request(self, request: Any, method: str, url: str, headers: Any) -> None:
        """Renew the token if it is not valid, then the wrapped credentials' headers (they
        find it valid), under the lock."""
        with self._lock:
            if not self.inner.valid:
                self._renew(request, failed=None)
            self.inner.before_request(request, method, url, headers)
            self._sent.token = self.inner.token

    def _renew(self, request: Any, *, failed: str | None) -> None:
        """Adopt the shared token if it is valid and not `failed` (the token a 401 just
        refused: adopting it again would loop), else ask the token endpoint and share the
        answer. Called under the lock."""
        if self.shared is not None:
            stored = self.shared.load()
            if stored is not None and stored[0] != failed and _still_valid(stored[1]):
                self.inner.token, self.inner.expiry = stored
                return
        self.inner.refresh(request)
        if self.shared is not None and self.inner.token and self.inner.expiry is not None:
            self.shared.save(self.inner.token, self.inner.expiry)

    def apply(self, headers: Any, token: str | None = None) -> None:
        self.inner.apply(headers, token=token)
