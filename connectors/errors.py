"""One error tree for every provider, raised only at the HTTP edge, causes kept.

Workers map these onto dramatiq: `RateLimited` → ``Retry(delay)``, `AuthRevoked` →
fail and flag the account, `CursorExpired` → drop the cursor and resync, `MalformedEvent` →
log the event id and skip (no retry).
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every error a connector raises."""


class AuthRevoked(ConnectorError):
    """The grant is gone or was never valid (``invalid_grant``, 401): re-consent needed."""


class DelegationRefused(AuthRevoked):
    """Google answered a service account's grant with ``unauthorized_client``: the Workspace
    admin has not authorised its client id for these scopes (domain-wide delegation)."""


class Forbidden(ConnectorError):
    """The account may not do this (403 other than rate limits)."""


class NotFound(ConnectorError):
    """The calendar or event does not exist (404), or no longer (Google 410 on an event)."""


class PreconditionFailed(ConnectorError):
    """The If-Match etag no longer matches (412): read again, merge, retry."""


class CursorExpired(ConnectorError):
    """The sync token / delta link is gone (Google 410, Graph syncStateNotFound): resync."""


class RateLimited(ConnectorError):
    """The provider throttles us (429, Google 403 rateLimitExceeded, Graph 503)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Transient(ConnectorError):
    """A 5xx or network failure that outlived the connector's own retries."""


class BadRequest(ConnectorError):
    """The provider rejected our request as malformed (400): a bug on our side."""


class MalformedEvent(ConnectorError):
    """The provider sent an event we cannot parse (a read or a write's answer): skip it.

    Carries the event id so the item can be logged and left alone; retrying the same read
    would only get the same broken event again.
    """

    def __init__(self, message: str, *, event_id: str | None) -> None:
        super().__init__(message)
        self.event_id = event_id


def error_for_status(status: int, message: str, *,
                     retry_after: float | None = None) -> ConnectorError:
    """The error both providers mean by a plain HTTP status (their own quirks come first).

    Not raised here: the HTTP edge raises it ``from`` the library's error, keeping the cause.
    """
    if status == 401:
        return AuthRevoked(message)
    if status == 403:
        return Forbidden(message)
    if status in (404, 410):
        return NotFound(message)
    if status == 412:
        return PreconditionFailed(message)
    if status == 429:
        return RateLimited(message, retry_after=retry_after)
    if 400 <= status < 500:
        return BadRequest(message)
    return Transient(message)
