"""The HTTP edge to Google Calendar: googleapiclient calls, error translation, the shared retry.

Every provider call goes through `GoogleClient.execute`, which

- runs each attempt under the connectors' one `RetryPolicy` (`connectors.retry`): 429,
  403 ``rateLimitExceeded``/``userRateLimitExceeded`` and 5xx or network errors are retried,
  honouring ``Retry-After``, within a few seconds per call
  (https://developers.google.com/calendar/api/guides/errors#429_too_many_requests,
  https://developers.google.com/calendar/api/guides/quota#backoff); a longer wait is raised as
  `RateLimited(retry_after=...)` so a worker can schedule the retry;
- reports each attempt to the `CallObserver` (operation, status, duration);
- translates `HttpError` / `RefreshError` / network errors into `connectors.errors`, keeping
  the cause; a 200 whose body is not JSON (cut off mid-body) is `Transient` and retried too:
  googleapiclient's `JsonModel.deserialize` hands such a body back as the raw text instead of
  raising, so it is caught here, before anything reads it as a page.

The API description (`SharedApi`) is one per process, shared by every client; each request
goes out on its account's own authorized HTTP. httplib2 is not thread-safe, so a client is
thread-safe when built as `connectors.google.provider` builds it: a `PerThreadHttp`
transport and `SerializedRefresh` credentials.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import google_auth_httplib2
import httplib2
from google.auth.credentials import Credentials
from google.auth.exceptions import RefreshError, TransportError
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest

from connectors.base import CallObserver
from connectors.calls import NO_ANSWER, CallReporter
from connectors.errors import (
    AuthRevoked,
    ConnectorError,
    CursorExpired,
    DelegationRefused,
    RateLimited,
    Transient,
    error_for_status,
)
from connectors.retry import RetryPolicy, retry_after_seconds

PROVIDER = "google"
_RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}
_NETWORK_ERRORS = (httplib2.HttpLib2Error, TransportError, socket.timeout, ConnectionError, OSError)


class SharedApi:
    """One googleapiclient service per API, version and endpoint for the whole process, and
    its collections (``events()``, ``users()``, ...) built once.

    googleapiclient parses the discovery document on every `build` and builds a collection's
    every method, docstrings rendered from the schemas included, on every ``events()`` call:
    per connector and per call, that cost more CPU than reading the pages, and every cached
    connector held its own parsed copy in memory. The service holds no account: each request
    it makes is sent with the account's own authorized HTTP (`HttpRequest.execute(http=...)`),
    so one service serves every account and thread (a request object is built per call)."""

    def __init__(self, api: str, version: str, api_url: str) -> None:
        self._service = build(api, version, http=httplib2.Http(), static_discovery=True,
                              cache_discovery=False,
                              client_options={"api_endpoint": api_url if api_url.endswith("/")
                                              else api_url + "/"})
        self._collections: dict[str, Any] = {}
        self._lock = threading.Lock()

    def collection(self, name: str) -> Any:
        found = self._collections.get(name)
        if found is None:
            with self._lock:
                found = self._collections.get(name)
                if found is None:
                    found = self._collections[name] = getattr(self._service, name)()
        return found


_shared_lock = threading.Lock()
_shared: dict[tuple[str, str, str], SharedApi] = {}


def shared_api(api: str, version: str, api_url: str) -> SharedApi:
    """The process's `SharedApi` for this API at `api_url` (Google's or a sandbox's)."""
    key = (api, version, api_url)
    with _shared_lock:
        found = _shared.get(key)
        if found is None:
            found = _shared[key] = SharedApi(api, version, api_url)
    return found


@dataclass(frozen=True)
class GoogleService:
    """What a `GoogleClient` sends with: the shared API description and one account's HTTP."""

    api: SharedApi
    http: google_auth_httplib2.AuthorizedHttp


def build_service(api: str, version: str, credentials: Credentials, *, api_url: str,
                  http: httplib2.Http | None = None, ca_bundle: str | Path | None = None,
                  timeout: float = 30.0) -> GoogleService:
    """The packaged (static) discovery document's API at `api_url`, sent with `credentials`
    refreshed by google-auth."""
    if http is None:
        http = httplib2.Http(timeout=timeout,
                             ca_certs=str(ca_bundle) if ca_bundle is not None else None)
    return GoogleService(api=shared_api(api, version, api_url),
                         http=google_auth_httplib2.AuthorizedHttp(credentials, http=http))


def fetch_token(credentials: Credentials, *, ca_bundle: str | Path | None = None,
                timeout: float = 30.0) -> None:
    """Ask the token endpoint for an access token now (to check a grant before saving it);
    raises `ConnectorError` subclasses only."""
    http = httplib2.Http(timeout=timeout,
                         ca_certs=str(ca_bundle) if ca_bundle is not None else None)
    try:
        credentials.refresh(google_auth_httplib2.Request(http))
    except RefreshError as err:
        raise translate_refresh_error(err) from err
    except _NETWORK_ERRORS as err:
        raise Transient(f"google token endpoint: network error {type(err).__name__}") from err


def _reasons(err: HttpError) -> list[str]:
    """The ``errors[].reason`` values of Google's error JSON (empty when unreadable)."""
    try:
        body = json.loads(err.content.decode("utf-8", "replace"))
        return [str(e.get("reason", "")) for e in body.get("error", {}).get("errors", [])]
    except (ValueError, AttributeError, TypeError):
        return []


def translate_http_error(err: HttpError, operation: str) -> ConnectorError:
    """One `ConnectorError` for a Google HTTP error (not raised: the caller raises from err)."""
    status = int(err.resp.status)
    reasons = _reasons(err)
    message = f"google {operation}: HTTP {status} {','.join(reasons) or ''}".rstrip()
    retry_after = retry_after_seconds(err.resp.get("retry-after"))
    if status == 403 and _RATE_REASONS.intersection(reasons):  # Google throttles with 403 too
        return RateLimited(message, retry_after=retry_after)
    if status == 410 and ("fullSyncRequired" in reasons or operation == "events.list"):
        return CursorExpired(message)  # the sync token is gone (410 fullSyncRequired)
    return error_for_status(status, message, retry_after=retry_after)


def translate_refresh_error(err: RefreshError) -> ConnectorError:
    """A failed token refresh: ``invalid_grant`` (and other permanent refusals) -> AuthRevoked;
    a service account's ``unauthorized_client`` (scopes not authorised for domain-wide
    delegation, https://developers.google.com/identity/protocols/oauth2/service-account#error-codes)
    -> DelegationRefused."""
    if "unauthorized_client" in str(err):
        return DelegationRefused("google refused the service account's grant "
                                 "(unauthorized_client): its client id is not authorised "
                                 "for these scopes")
    if getattr(err, "retryable", False) and "invalid_grant" not in str(err):
        return Transient(f"google token refresh failed: {err}")
    return AuthRevoked("google token refresh refused (invalid_grant or similar): re-consent needed")


class GoogleClient:
    """Executes googleapiclient requests with the shared retry, observation and translation."""

    def __init__(
        self,
        service: GoogleService,
        *,
        observer: CallObserver | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._api, self._http = service.api, service.http
        self._calls = CallReporter(PROVIDER, observer)
        self.retry = retry or RetryPolicy()

    def execute(self, operation: str, request: HttpRequest) -> Any:
        """Run one API request under the retry policy; raises `ConnectorError` subclasses only."""
        return self.retry.call(
            lambda: self._attempt(operation, request), provider=PROVIDER, operation=operation
        )

    def _attempt(self, operation: str, request: HttpRequest) -> Any:
        """One HTTP exchange, reported and translated."""
        started = time.monotonic()
        try:
            result = request.execute(http=self._http)
        except HttpError as err:
            self._calls.report(operation, int(err.resp.status), started)
            raise translate_http_error(err, operation) from err
        except RefreshError as err:
            self._calls.report(operation, 401, started)
            raise translate_refresh_error(err) from err
        except _NETWORK_ERRORS as err:
            self._calls.report(operation, NO_ANSWER, started)
            raise Transient(f"google {operation}: network error {type(err).__name__}") from err
        self._calls.report(operation, 200 if result is not None else 204, started)
        if isinstance(result, (str, bytes)) and result.strip():
            raise Transient(f"google {operation}: the answer's body is not JSON (cut off?)")
        return result

    # -- API methods ------------------------------------------------------------------------

    def list_events(self, calendar_id: str, **params: Any) -> Any:
        """events.list: https://developers.google.com/calendar/api/v3/reference/events/list"""
        return self.execute(
            "events.list", self._api.collection("events").list(calendarId=calendar_id, **params)
        )

    def get_event(self, calendar_id: str, event_id: str) -> Any:
        """events.get: https://developers.google.com/calendar/api/v3/reference/events/get"""
        request = self._api.collection("events").get(calendarId=calendar_id, eventId=event_id)
        return self.execute("events.get", request)

    def patch_event(
        self, calendar_id: str, event_id: str, body: dict[str, Any], *, etag: str | None
    ) -> Any:
        """events.patch with If-Match, attendees not notified.

        https://developers.google.com/calendar/api/v3/reference/events/patch and
        https://developers.google.com/calendar/api/guides/version-resources
        """
        request = self._api.collection("events").patch(
            calendarId=calendar_id, eventId=event_id, body=body, sendUpdates="none"
        )
        if etag:
            request.headers["If-Match"] = etag
        return self.execute("events.patch", request)

    def freebusy(self, body: dict[str, Any]) -> Any:
        """freebusy.query: https://developers.google.com/calendar/api/v3/reference/freebusy/query"""
        return self.execute("freebusy.query", self._api.collection("freebusy").query(body=body))

    def watch(self, calendar_id: str, body: dict[str, Any]) -> Any:
        """events.watch: https://developers.google.com/calendar/api/v3/reference/events/watch"""
        request = self._api.collection("events").watch(calendarId=calendar_id, body=body)
        return self.execute("events.watch", request)

    def stop_channel(self, channel_id: str, resource_id: str | None) -> None:
        """channels.stop: https://developers.google.com/calendar/api/v3/reference/channels/stop"""
        body = {"id": channel_id, "resourceId": resource_id}
        self.execute("channels.stop", self._api.collection("channels").stop(body=body))

    def list_users(self, **params: Any) -> Any:
        """users.list: https://developers.google.com/workspace/admin/directory/reference/rest/v1/users/list"""
        return self.execute("users.list", self._api.collection("users").list(**params))

    def get_user(self, user_key: str) -> Any:
        """users.get: https://developers.google.com/workspace/admin/directory/reference/rest/v1/users/get"""
        return self.execute("users.get", self._api.collection("users").get(userKey=user_key))

    def list_members(self, group_key: str, **params: Any) -> Any:
        """members.list: https://developers.google.com/workspace/admin/directory/reference/rest/v1/members/list"""
        request = self._api.collection("members").list(groupKey=group_key, **params)
        return self.execute("members.list", request)

    def calendar_list(self, **params: Any) -> Any:
        """calendarList.list: https://developers.google.com/calendar/api/v3/reference/calendarList/list"""
        request = self._api.collection("calendarList").list(**params)
        return self.execute("calendarList.list", request)
