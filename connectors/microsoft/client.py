"""HTTP edge to Microsoft Graph: bearer token, retries on throttling, error translation.

Throttling: Graph answers 429 (sometimes 503/504) with ``Retry-After`` in seconds
(https://learn.microsoft.com/en-us/graph/throttling); we wait that long, a few times, then
raise `RateLimited` so the worker can ``Retry(delay)``. Errors follow
https://learn.microsoft.com/en-us/graph/errors. httpx's own transport retries cover only
connection failures, so the status-code policy lives here, small and injectable.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

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

RETRY_STATUSES = frozenset({429, 503, 504})
SYNC_RESET_CODES = frozenset({"syncstatenotfound", "syncstateinvalid", "resyncrequired"})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait on 429/503/504 and network errors."""

    attempts: int = 4  # total tries, the first included
    backoff: float = 1.0  # seconds, doubled each try, when no Retry-After is given
    max_wait: float = 60.0  # a longer Retry-After is handed to the worker instead
    sleep: Callable[[float], None] = time.sleep

    def delay(self, response: httpx.Response | None, attempt: int) -> float:
        """Seconds to wait before the next try: Retry-After when given, else backoff."""
        if response is not None:
            value = retry_after(response)
            if value is not None:
                return value
        return self.backoff * (2 ** (attempt - 1))


def retry_after(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds, when it is a number."""
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


def _error_code(response: httpx.Response) -> tuple[str, str]:
    try:
        error = response.json().get("error") or {}
        return str(error.get("code", "")), str(error.get("message", ""))
    except (ValueError, AttributeError):
        return "", response.text[:200]


def translate(response: httpx.Response, operation: str) -> ConnectorError:
    """The `connectors.errors` exception for a failed Graph response."""
    code, message = _error_code(response)
    status = response.status_code
    text = f"Graph {operation} failed: {status} {code}: {message}"
    if code.lower() in SYNC_RESET_CODES or (status == 410 and operation == "calendarView.delta"):
        return CursorExpired(text)
    if status == 401:
        return AuthRevoked(text)
    if status == 403:
        return Forbidden(text)
    if status in (404, 410):
        return NotFound(text)
    if status == 412:
        return PreconditionFailed(text)
    if status in (429, 503):
        return RateLimited(text, retry_after=retry_after(response))
    if 400 <= status < 500:
        return BadRequest(text)
    return Transient(text)


class GraphClient:
    """Sends Graph requests with a fresh bearer token; retries throttling; raises our errors."""

    provider = "microsoft"

    def __init__(
        self,
        *,
        token_provider: Callable[[], str],
        api_url: str,
        verify: str | bool = True,
        observer: CallObserver | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._token = token_provider
        self._observer = observer
        self.retry = retry or RetryPolicy()
        tls: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        )
        self._http = httpx.Client(verify=tls, timeout=timeout, trust_env=verify is True)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def url(self, path: str) -> str:
        """An absolute URL for a path under the Graph root (absolute links pass through)."""
        return path if path.startswith("https://") else f"{self.api_url}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: dict[str, str] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One Graph call with retries; returns the 2xx response or raises a ConnectorError."""
        url = self.url(path)
        for attempt in range(1, self.retry.attempts + 1):
            all_headers = {"Authorization": f"Bearer {self._token()}", **(headers or {})}
            started = time.monotonic()
            try:
                response = self._http.request(
                    method, url, params=params, json=json, headers=all_headers
                )
            except httpx.TransportError as err:
                self._observe(operation, 0, started)
                if attempt == self.retry.attempts:
                    raise Transient(f"Graph {operation} failed: {type(err).__name__}") from err
                wait = self.retry.delay(None, attempt)
                log.warning(
                    "Graph %s network error (%s), retry %d in %.1fs",
                    operation,
                    type(err).__name__,
                    attempt,
                    wait,
                )
                self.retry.sleep(wait)
                continue
            self._observe(operation, response.status_code, started)
            if response.is_success:
                return response
            if response.status_code in RETRY_STATUSES and attempt < self.retry.attempts:
                wait = self.retry.delay(response, attempt)
                if wait <= self.retry.max_wait:
                    log.info(
                        "Graph %s answered %d, retry %d in %.1fs",
                        operation,
                        response.status_code,
                        attempt,
                        wait,
                    )
                    self.retry.sleep(wait)
                    continue
            error = translate(response, operation)
            try:
                response.raise_for_status()
            except httpx.HTTPStatusError as err:
                raise error from err
        raise AssertionError("unreachable")  # pragma: no cover

    def json(self, method: str, path: str, *, operation: str, **kwargs: Any) -> Any:
        """`request` and decode the JSON body."""
        response = self.request(method, path, operation=operation, **kwargs)
        try:
            return response.json()
        except ValueError as err:
            raise Transient(f"Graph {operation} returned invalid JSON") from err

    def _observe(self, operation: str, status: int, started: float) -> None:
        if self._observer is not None:
            self._observer(
                ProviderCall(self.provider, operation, status, (time.monotonic() - started) * 1000)
            )
