"""The HTTP edge to Google Calendar: googleapiclient calls, retries, error translation.

Every provider call goes through `GoogleClient.execute`, which

- retries 429, 403 ``rateLimitExceeded``/``userRateLimitExceeded`` and 5xx with capped
  exponential backoff, honouring ``Retry-After``
  (https://developers.google.com/calendar/api/guides/errors#429_too_many_requests,
  https://developers.google.com/calendar/api/guides/quota#backoff); a wait longer than
  `max_sleep` is not slept here but raised as `RateLimited(retry_after=...)` so a worker can
  schedule the retry;
- reports each attempt to the `CallObserver` (operation, status, duration);
- translates `HttpError` / `RefreshError` into `connectors.errors`, keeping the cause.

Not thread-safe (httplib2): use one connector per thread.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httplib2
from google.auth.exceptions import RefreshError, TransportError
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest

from connectors.base import CallObserver, ProviderCall
from connectors.errors import (
    AuthRevoked,
    BadRequest,
    ConnectorError,
    CursorExpired,
    Forbidden,
    NotFound,
    PreconditionFailed,
    RateLimited,
    Transient,
)

log = logging.getLogger(__name__)

PROVIDER = "google"
_RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}
_NETWORK_ERRORS = (httplib2.HttpLib2Error, TransportError, socket.timeout, ConnectionError, OSError)

Sleep = Callable[[float], None]


def _reasons(err: HttpError) -> list[str]:
    """The ``errors[].reason`` values of Google's error JSON (empty when unreadable)."""
    try:
        body = json.loads(err.content.decode("utf-8", "replace"))
        return [str(e.get("reason", "")) for e in body.get("error", {}).get("errors", [])]
    except (ValueError, AttributeError, TypeError):
        return []


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def translate_http_error(err: HttpError, operation: str) -> ConnectorError:
    """One `ConnectorError` for a Google HTTP error (not raised: the caller raises from err)."""
    status = int(err.resp.status)
    reasons = _reasons(err)
    message = f"google {operation}: HTTP {status} {','.join(reasons) or ''}".rstrip()
    if status == 429 or (status == 403 and _RATE_REASONS.intersection(reasons)):
        return RateLimited(message, retry_after=retry_after_seconds(err.resp.get("retry-after")))
    if status == 401:
        return AuthRevoked(message)
    if status == 403:
        return Forbidden(message)
    if status == 404:
        return NotFound(message)
    if status == 410:
        if "fullSyncRequired" in reasons or operation == "events.list":
            return CursorExpired(message)
        return NotFound(message)
    if status == 412:
        return PreconditionFailed(message)
    if status >= 500:
        return Transient(message)
    return BadRequest(message)


def translate_refresh_error(err: RefreshError) -> ConnectorError:
    """A failed token refresh: ``invalid_grant`` (and other permanent refusals) -> AuthRevoked."""
    if getattr(err, "retryable", False) and "invalid_grant" not in str(err):
        return Transient(f"google token refresh failed: {err}")
    return AuthRevoked("google token refresh refused (invalid_grant or similar): re-consent needed")


class GoogleClient:
    """Executes googleapiclient requests with retries, observation and error translation."""

    def __init__(
        self,
        service: Any,
        *,
        observer: CallObserver | None = None,
        sleep: Sleep = time.sleep,
        max_attempts: int = 4,
        max_sleep: float = 10.0,
        backoff_base: float = 0.5,
    ) -> None:
        self.service = service
        self._observer = observer
        self._sleep = sleep
        self._max_attempts = max(1, max_attempts)
        self._max_sleep = max_sleep
        self._backoff_base = backoff_base

    def _report(self, operation: str, status: int, started: float) -> None:
        if self._observer is None:
            return
        call = ProviderCall(
            provider=PROVIDER,
            operation=operation,
            status=status,
            duration_ms=(time.monotonic() - started) * 1000.0,
        )
        try:
            self._observer(call)
        except Exception:  # an observer must never break a sync
            log.exception("call observer failed for %s", operation)

    def _backoff(self, attempt: int) -> float:
        return min(self._max_sleep, self._backoff_base * (2 ** (attempt - 1)))

    def execute(self, operation: str, request: HttpRequest) -> Any:
        """Run one API request with retries; raises `ConnectorError` subclasses only."""
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                result = request.execute()
            except HttpError as err:
                self._report(operation, int(err.resp.status), started)
                error = translate_http_error(err, operation)
                delay = self._retry_delay(error, attempt)
                if delay is None:
                    raise error from err
                log.info(
                    "google %s: HTTP %s, retry %d in %.2fs",
                    operation,
                    err.resp.status,
                    attempt,
                    delay,
                )
            except RefreshError as err:
                self._report(operation, 401, started)
                raise translate_refresh_error(err) from err
            except _NETWORK_ERRORS as err:
                self._report(operation, 0, started)
                error = Transient(f"google {operation}: network error {type(err).__name__}")
                delay = self._retry_delay(error, attempt)
                if delay is None:
                    raise error from err
                log.info("google %s: network error, retry %d in %.2fs", operation, attempt, delay)
            else:
                self._report(operation, 200 if result is not None else 204, started)
                return result
            self._sleep(delay)

    def _retry_delay(self, error: ConnectorError, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, None to give up (raise `error`)."""
        if not isinstance(error, RateLimited | Transient) or attempt >= self._max_attempts:
            return None
        delay = self._backoff(attempt)
        if isinstance(error, RateLimited) and error.retry_after is not None:
            delay = error.retry_after
        if delay > self._max_sleep:
            return None  # too long to wait in-process: the worker retries later
        return delay

    # -- API methods ------------------------------------------------------------------------

    def list_events(self, calendar_id: str, **params: Any) -> Any:
        """events.list: https://developers.google.com/calendar/api/v3/reference/events/list"""
        return self.execute(
            "events.list", self.service.events().list(calendarId=calendar_id, **params)
        )

    def get_event(self, calendar_id: str, event_id: str) -> Any:
        """events.get: https://developers.google.com/calendar/api/v3/reference/events/get"""
        request = self.service.events().get(calendarId=calendar_id, eventId=event_id)
        return self.execute("events.get", request)

    def patch_event(
        self, calendar_id: str, event_id: str, body: dict[str, Any], *, etag: str | None
    ) -> Any:
        """events.patch with If-Match, attendees not notified.

        https://developers.google.com/calendar/api/v3/reference/events/patch and
        https://developers.google.com/calendar/api/guides/version-resources
        """
        request = self.service.events().patch(
            calendarId=calendar_id, eventId=event_id, body=body, sendUpdates="none"
        )
        if etag:
            request.headers["If-Match"] = etag
        return self.execute("events.patch", request)

    def freebusy(self, body: dict[str, Any]) -> Any:
        """freebusy.query: https://developers.google.com/calendar/api/v3/reference/freebusy/query"""
        return self.execute("freebusy.query", self.service.freebusy().query(body=body))

    def watch(self, calendar_id: str, body: dict[str, Any]) -> Any:
        """events.watch: https://developers.google.com/calendar/api/v3/reference/events/watch"""
        request = self.service.events().watch(calendarId=calendar_id, body=body)
        return self.execute("events.watch", request)

    def stop_channel(self, channel_id: str, resource_id: str | None) -> None:
        """channels.stop: https://developers.google.com/calendar/api/v3/reference/channels/stop"""
        body = {"id": channel_id, "resourceId": resource_id}
        self.execute("channels.stop", self.service.channels().stop(body=body))

    def calendar_list(self, **params: Any) -> Any:
        """calendarList.list: https://developers.google.com/calendar/api/v3/reference/calendarList/list"""
        return self.execute("calendarList.list", self.service.calendarList().list(**params))
