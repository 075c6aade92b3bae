"""HTTP edge to Microsoft Graph: bearer token, error translation, the shared retry policy.

Throttling: Graph answers 429 (sometimes 503) with ``Retry-After`` in seconds
(https://learn.microsoft.com/en-us/graph/throttling); the connectors' one `RetryPolicy`
(`connectors.retry`) waits that long while the call stays within a few seconds in all, and
otherwise raises `RateLimited` at once so the worker can ``Retry(delay)``. Errors follow
https://learn.microsoft.com/en-us/graph/errors; an app-only call to a mailbox an application
access policy leaves out answers 403 ErrorAccessDenied "Blocked by tenant configured AppOnly
AccessPolicy settings" (https://learn.microsoft.com/en-us/graph/auth-limit-mailbox-access),
which the message says in plain words. A 2xx whose JSON body does not parse (cut off
mid-body) is `Transient`, decoded inside the attempt so the same policy retries it. httpx's
own transport retries cover only connection failures, so the status-code policy is the
shared one.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx

from connectors.base import CallObserver
from connectors.calls import NO_ANSWER, CallReporter
from connectors.errors import (
    ConnectorError,
    CursorExpired,
    Forbidden,
    RateLimited,
    Transient,
    error_for_status,
)
from connectors.retry import RetryPolicy, retry_after_seconds

__all__ = ["GraphClient", "RetryPolicy", "graph_http", "translate"]

SYNC_RESET_CODES = frozenset({"syncstatenotfound", "syncstateinvalid", "resyncrequired"})


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
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    if code.lower() in SYNC_RESET_CODES or (status == 410 and operation == "calendarView.delta"):
        return CursorExpired(text)  # the delta link is gone (syncStateNotFound)
    if status == 503:  # Graph throttles with 503 and Retry-After too
        return RateLimited(text, retry_after=retry_after)
    if status == 403 and "AccessPolicy" in message:  # app-only, mailbox outside the scope
        return Forbidden(f"the tenant keeps this mailbox out of the app's reach (application "
                         f"access policy or RBAC for Applications in Exchange Online): {text}")
    return error_for_status(status, text, retry_after=retry_after)


def graph_http(*, verify: str | bool = True, timeout: float = 30.0) -> httpx.Client:
    """An httpx connection pool for Graph: `verify` is a CA bundle's path or True (httpx's
    own trust store, and then the environment's proxy settings too)."""
    tls: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
    )
    return httpx.Client(verify=tls, timeout=timeout, trust_env=verify is True)


class GraphClient:
    """Sends Graph requests with a fresh bearer token under the shared retry; raises our errors."""

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
        http: httpx.Client | None = None,
    ) -> None:
        """`http` is a connection pool to share (`graph_http`; httpx: "It can be shared
        between threads", `httpx.Client`'s docstring), left open by `close`; without it the
        client opens its own."""
        self.api_url = api_url.rstrip("/")
        self._token = token_provider
        self._calls = CallReporter(self.provider, observer)
        self.retry = retry or RetryPolicy()
        self._owns_http = http is None
        self._http = http or graph_http(verify=verify, timeout=timeout)

    def close(self) -> None:
        """Close the connection pool, if it is this client's own."""
        if self._owns_http:
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
        """One Graph call under the retry policy; the 2xx response or a ConnectorError."""
        return self._call(method, path, operation=operation, params=params, json=json,
                          headers=headers, decode=False)

    def json(self, method: str, path: str, *, operation: str, **kwargs: Any) -> Any:
        """`request` and decode the JSON body (an unreadable body is retried as `Transient`)."""
        return self._call(method, path, operation=operation, decode=True, **kwargs)

    def _call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        decode: bool,
        params: dict[str, str] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        url = self.url(path)

        def attempt() -> Any:
            all_headers = {"Authorization": f"Bearer {self._token()}", **(headers or {})}
            started = time.monotonic()
            try:
                response = self._http.request(
                    method, url, params=params, json=json, headers=all_headers
                )
            except httpx.TransportError as err:
                self._calls.report(operation, NO_ANSWER, started)
                raise Transient(f"Graph {operation} failed: {type(err).__name__}") from err
            self._calls.report(operation, response.status_code, started)
            if response.is_success:
                return _decoded(response, operation) if decode else response
            error = translate(response, operation)
            try:
                response.raise_for_status()
            except httpx.HTTPStatusError as err:
                raise error from err
            raise error

        return self.retry.call(attempt, provider=self.provider, operation=operation)


def _decoded(response: httpx.Response, operation: str) -> Any:
    """The JSON body of a 2xx answer; `Transient` when it does not parse."""
    try:
        return response.json()
    except ValueError as err:  # json.JSONDecodeError, UnicodeDecodeError
        raise Transient(f"Graph {operation} returned a body that is not JSON (cut off?)") \
            from err
