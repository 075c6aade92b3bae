"""`GoogleConnector`: the `CalendarConnector` for Google Calendar API v3.

Why expanded instances: Rapport works on occurrences (one agenda per occurrence, one
alert per dropped occurrence), so series are read with ``singleEvents=true``. Google then
does the expansion itself (time zones, DST, EXDATE, moved and cancelled instances) and every
occurrence arrives with ``recurringEventId`` and ``originalStartTime``, the same shape Graph's
calendarView delta gives; no local RRULE engine second-guesses the provider (see
`connectors.base`).

Sync (https://developers.google.com/calendar/api/guides/sync,
https://developers.google.com/calendar/api/v3/reference/events/list):

- A full round (no cursor) sends ``timeMin=window_start`` and **no** ``timeMax``. The docs
  allow restricting the initial full sync, but later incremental rounds only report items
  that *change*; with a ``timeMax`` an unchanged occurrence that slides into the window as
  time passes would never arrive. Without it Google returns every future instance once, and
  this connector drops what starts at or after ``window_end`` (on every round), so the pages
  hold what the contract promises: the window's occurrences, as Graph's calendarView gives.
- ``showDeleted=true`` on the full round too, so occurrences cancelled before the first sync
  are seen; incremental rounds always include deleted items. The same ``singleEvents`` and
  ``showDeleted`` values are sent on both, as the docs ask.
- ``nextSyncToken`` comes only with the last page; it becomes the last `ChangePage.cursor`.
  410 ``fullSyncRequired`` raises `CursorExpired`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import httplib2
from google.auth.credentials import Credentials

from connectors.base import (
    BusyInterval,
    CalendarEvent,
    CalendarInfo,
    CallObserver,
    ChangePage,
    FreeBusy,
    Subscription,
)
from connectors.google.auth import SerializedRefresh, SharedToken
from connectors.google.client import GoogleClient, build_service
from connectors.google.parsing import parse_event, parse_items, parse_timestamp
from connectors.google.transport import PerThreadHttp
from connectors.items import read_event
from connectors.paging import RawPage, change_pages
from connectors.retry import MAX_SLEEP_PER_CALL, RetryPolicy

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://www.googleapis.com/calendar/v3/"


def _rfc3339(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("aware datetimes only")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class GoogleConnector:
    """Google Calendar for one account; auth is handed in as google-auth credentials."""

    provider: ClassVar[str] = "google"

    def __init__(
        self,
        credentials: Credentials,
        *,
        api_url: str = DEFAULT_API_URL,
        observer: CallObserver | None = None,
        http: httplib2.Http | None = None,
        ca_bundle: str | Path | None = None,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 4,
        max_sleep: float = MAX_SLEEP_PER_CALL,
        retry: RetryPolicy | None = None,
        page_size: int = 250,
        shared_token: SharedToken | None = None,
    ) -> None:
        """`retry` is the shared policy; `sleep`, `max_attempts` and `max_sleep` (seconds a call
        may sleep in all) are its short form, used when `retry` is not given.

        Thread-safe: one connector per account can serve every worker thread. Requests go
        out on `http` (by default a `PerThreadHttp`: each thread its own httplib2.Http, as
        google-api-python-client asks), and the credentials refresh one thread at a time
        (`SerializedRefresh`), so an account costs one token however many threads use it;
        with `shared_token`, however many processes do (until it expires)."""
        if not isinstance(credentials, SerializedRefresh):
            credentials = SerializedRefresh(credentials, shared_token)
        if http is None:
            http = PerThreadHttp(timeout=timeout, ca_bundle=ca_bundle)
        service = build_service("calendar", "v3", credentials, api_url=api_url, http=http)
        policy = retry or RetryPolicy(attempts=max_attempts, budget=max_sleep, sleep=sleep)
        self._client = GoogleClient(service, observer=observer, retry=policy)
        self._page_size = page_size

    def list_calendars(self) -> list[CalendarInfo]:
        """The calendars this account can read (calendarList.list, all pages)."""
        calendars: list[CalendarInfo] = []
        page_token: str | None = None
        while True:
            params: dict[str, Any] = {"pageToken": page_token} if page_token else {}
            page = self._client.calendar_list(**params)
            for item in page.get("items", []):
                primary = bool(item.get("primary", False))
                calendars.append(
                    CalendarInfo(
                        id=item["id"],
                        name=item.get("summaryOverride") or item.get("summary") or item["id"],
                        time_zone=item.get("timeZone"),
                        is_primary=primary,
                        owner_email=item["id"].lower() if primary else None,
                    )
                )
            page_token = page.get("nextPageToken")
            if not page_token:
                return calendars

    def cursor_is_stale(self, cursor: str) -> bool:
        """Never: a sync token is an opaque string bound to the calendar, not to a host, and
        Google itself says when it is gone (410 ``fullSyncRequired``)."""
        return False

    def list_changes(
        self,
        calendar_id: str,
        cursor: str | None,
        *,
        window_start: datetime,
        window_end: datetime,
    ) -> Iterator[ChangePage]:
        """Changes since `cursor`, or every occurrence from `window_start` on when None."""
        full_sync = cursor is None
        params: dict[str, Any] = {
            "singleEvents": True,
            "showDeleted": True,
            "maxResults": self._page_size,
        }
        if cursor is None:
            params["timeMin"] = _rfc3339(window_start)
        else:
            params["syncToken"] = cursor

        def fetch(page_token: str | None) -> RawPage:
            page = self._client.list_events(
                calendar_id, **params, **({"pageToken": page_token} if page_token else {})
            )
            # no timeMax (above): the items past the window are left out here
            events, skipped = parse_items(page.get("items", []), calendar_id, before=window_end)
            return RawPage(
                events=events,
                skipped=skipped,
                next_page=page.get("nextPageToken"),
                cursor=page.get("nextSyncToken"),
            )

        return change_pages(fetch, provider=self.provider, full_sync=full_sync)

    def get_event(self, calendar_id: str, event_id: str) -> CalendarEvent:
        """Read one event or instance fresh, with its current etag."""
        raw = self._client.get_event(calendar_id, event_id)
        return read_event(lambda: parse_event(raw, calendar_id), event_id=event_id)

    def patch_description(
        self,
        calendar_id: str,
        event_id: str,
        *,
        description: str,
        is_html: bool,
        etag: str | None,
    ) -> CalendarEvent:
        """Replace the description if the event still has `etag` (412 -> PreconditionFailed).

        Google keeps one description field that may hold HTML, so `is_html` needs no flag here.
        """
        raw = self._client.patch_event(
            calendar_id, event_id, {"description": description}, etag=etag
        )
        return read_event(lambda: parse_event(raw, calendar_id), event_id=event_id,
                          after=" after patch")

    def free_busy(self, emails: list[str], start: datetime, end: datetime) -> FreeBusy:
        """Busy intervals per person (freebusy.query), and who Google could not read.

        Google answers a calendar it cannot see (someone on another provider, or not
        shared) with ``errors`` such as ``[{"domain": "global", "reason": "notFound"}]`` on
        that calendar instead of failing the request
        (https://developers.google.com/calendar/api/v3/reference/freebusy/query).
        """
        body = {
            "timeMin": _rfc3339(start),
            "timeMax": _rfc3339(end),
            "items": [{"id": email} for email in emails],
        }
        answer = self._client.freebusy(body)
        busy: dict[str, list[BusyInterval]] = {}
        unreadable: set[str] = set()
        for calendar_id, info in (answer.get("calendars") or {}).items():
            if info.get("errors"):
                reasons = ",".join(str(e.get("reason")) for e in info["errors"])
                log.info("google free/busy unavailable for one calendar: %s", reasons)
                unreadable.add(calendar_id.lower())
                continue
            busy[calendar_id.lower()] = [
                BusyInterval(start=parse_timestamp(b["start"]), end=parse_timestamp(b["end"]))
                for b in info.get("busy", [])
            ]
        return FreeBusy.answer(emails, busy=busy, unreadable=unreadable)

    def subscribe(
        self, calendar_id: str, *, address: str, token: str, ttl_seconds: int,
        lifecycle_address: str | None = None,
    ) -> Subscription:
        """Open a push channel for the calendar's events (events.watch); Google channels
        have no lifecycle notifications, so `lifecycle_address` is not used."""
        body = {
            "id": str(uuid.uuid4()),
            "type": "web_hook",
            "address": address,
            "token": token,
            "params": {"ttl": str(int(ttl_seconds))},
        }
        channel = self._client.watch(calendar_id, body)
        expiration = channel.get("expiration")
        expires_at = (
            datetime.fromtimestamp(int(expiration) / 1000, UTC)
            if expiration
            else datetime.now(UTC) + timedelta(seconds=ttl_seconds)
        )
        return Subscription(
            id=channel["id"], resource_id=channel.get("resourceId"), expires_at=expires_at
        )

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop a push channel (channels.stop)."""
        self._client.stop_channel(subscription.id, subscription.resource_id)
