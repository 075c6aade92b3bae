"""`GraphConnector`: Rapport's `CalendarConnector` over Microsoft Graph v1.0.

Sync uses calendarView delta (https://learn.microsoft.com/en-us/graph/api/event-delta):
the window is fixed by the round's first request and carried inside the delta link, so
the cursor (the full ``@odata.deltaLink``) keeps following that window. When the service
wants the window to move (it rolls forward with the clock), it starts a new round with
``cursor=None``. A delta link is an absolute URL on the Graph host that issued it;
`cursor_is_stale` says when it points elsewhere than the configured API (another host, or a
sandbox on another port), so the service starts over instead of calling a dead address.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol
from urllib.parse import quote, urlsplit

import httpx

from connectors.base import (
    BusyInterval,
    CalendarEvent,
    CalendarInfo,
    CallObserver,
    ChangePage,
    FreeBusy,
    SkippedItem,
    Subscription,
)
from connectors.errors import AuthRevoked, ConnectorError, NotFound, RateLimited
from connectors.items import read_event
from connectors.microsoft.client import GraphClient
from connectors.microsoft.mailbox import mailbox_time_zone
from connectors.microsoft.parse import (
    parse_busy,
    parse_calendar,
    parse_event,
    parse_instant,
    parse_item,
    text_to_html,
)
from connectors.microsoft.types import DeltaPage, GraphEvent
from connectors.paging import RawPage, change_pages
from connectors.retry import RetryPolicy

log = logging.getLogger(__name__)

PAGE_SIZE = 100
PREFER = 'outlook.timezone="UTC", outlook.body-content-type="html"'
MAX_SUBSCRIPTION = timedelta(minutes=10070)  # Outlook events: a little under 7 days


def _graph_time(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SeriesUidStore(Protocol):
    """Where the service keeps what a Graph connector learnt: series master id -> the master's
    iCalUId, for one mailbox (master ids are the mailbox's event ids)."""

    def load(self, master_ids: Collection[str]) -> Mapping[str, str]:
        """The known iCalUIds of those masters (unknown ones are left out)."""
        ...

    def save(self, uids: Mapping[str, str]) -> None:
        """Keep newly read iCalUIds."""
        ...


class GraphConnector:
    """One Microsoft 365 account, through Graph v1.0; auth is handed in as `token_provider`."""

    provider: ClassVar[str] = "microsoft"

    def __init__(
        self,
        *,
        token_provider: Callable[[], str],
        api_url: str,
        verify: str | bool = True,
        observer: CallObserver | None = None,
        user: str | None = None,
        owner_email: str | None = None,
        page_size: int = PAGE_SIZE,
        retry: RetryPolicy | None = None,
        http: httpx.Client | None = None,
        series_uids: SeriesUidStore | None = None,
    ) -> None:
        """`http`: a shared connection pool (see `GraphClient`); `series_uids`: where series
        masters' iCalUIds are kept beyond this connector (the service's database), so a master
        is read once, not once per process. Thread-safe when `token_provider` is."""
        self.client = GraphClient(
            token_provider=token_provider,
            api_url=api_url,
            verify=verify,
            observer=observer,
            retry=retry,
            http=http,
        )
        self._root = f"users/{quote(user)}" if user else "me"
        self._owner = (owner_email or user or "").lower() or None
        self.page_size = page_size
        self._series_uids: dict[str, str | None] = {}
        self._listed: set[str] = set()  # calendars whose series masters were listed
        self._store = series_uids

    def close(self) -> None:
        """Release the HTTP connections."""
        self.client.close()

    def _calendar_path(self, calendar_id: str) -> str:
        if calendar_id in ("", "primary", "default"):
            return self._root
        return f"{self._root}/calendars/{quote(calendar_id)}"

    def owner_email(self) -> str | None:
        """The mailbox address (from GET /me, once): https://learn.microsoft.com/en-us/graph/api/user-get."""
        if self._owner is None:
            me = self.client.json(
                "GET",
                self._root,
                operation="user.get",
                params={"$select": "mail,userPrincipalName"},
            )
            address = me.get("mail") or me.get("userPrincipalName")
            self._owner = address.lower() if address else None
        return self._owner

    def list_calendars(self) -> list[CalendarInfo]:
        """GET /me/calendars: https://learn.microsoft.com/en-us/graph/api/user-list-calendars.

        A Graph calendar has no time zone of its own; the default calendar carries the
        mailbox's (`mailbox_time_zone`), which is what Outlook shows its times in.
        """
        data = self.client.json("GET", f"{self._root}/calendars", operation="calendars.list")
        calendars = [parse_calendar(c) for c in data.get("value", [])]
        if any(c.is_primary for c in calendars):
            zone = self.mailbox_time_zone()
            calendars = [replace(c, time_zone=zone) if c.is_primary else c for c in calendars]
        return calendars

    def mailbox_time_zone(self) -> str | None:
        """The mailbox's zone as an IANA name (`connectors.microsoft.mailbox`)."""
        return mailbox_time_zone(self.client, self._root)

    def list_changes(
        self, calendar_id: str, cursor: str | None, *, window_start: datetime, window_end: datetime
    ) -> Iterator[ChangePage]:
        """calendarView delta pages: https://learn.microsoft.com/en-us/graph/api/event-delta.

        `cursor` is the previous round's ``@odata.deltaLink``; the window applies only when
        it is None. Raises `CursorExpired` on 410 ``syncStateNotFound``.
        """
        headers = {"Prefer": f"{PREFER}, odata.maxpagesize={self.page_size}"}
        first = f"{self._calendar_path(calendar_id)}/calendarView/delta"
        window = {"startDateTime": _graph_time(window_start),
                  "endDateTime": _graph_time(window_end)}

        def fetch(next_link: str | None) -> RawPage:
            if next_link is not None:  # a next link or delta link carries its own query
                url, params = next_link, None
            elif cursor is not None:
                url, params = cursor, None
            else:
                url, params = first, window
            page: DeltaPage = self.client.json(
                "GET", url, operation="calendarView.delta", params=params, headers=headers
            )
            events, skipped = self._parse_page(calendar_id, page.get("value", []))
            return RawPage(events=events, skipped=skipped,
                           next_page=page.get("@odata.nextLink"),
                           cursor=page.get("@odata.deltaLink"))

        return change_pages(fetch, provider=self.provider, full_sync=cursor is None)

    def cursor_is_stale(self, cursor: str) -> bool:
        """A delta link whose origin (scheme, host, port) is not the configured Graph API's."""
        return is_foreign_link(cursor, api_url=self.client.api_url)

    def _parse_page(
        self, calendar_id: str, items: list[GraphEvent]
    ) -> tuple[list[CalendarEvent], list[SkippedItem]]:
        events: list[CalendarEvent] = []
        skipped: list[SkippedItem] = []
        owner = self.owner_email() if any("@removed" not in i for i in items) else self._owner
        masters = [raw.get("seriesMasterId") if isinstance(raw, dict) and "@removed" not in raw
                   else None for raw in items]
        self._learn_series_uids(calendar_id, (m for m in masters if m))
        for raw, master in zip(items, masters, strict=True):
            uid = self._series_uids.get(master) if master else None
            parsed = parse_item(raw, calendar_id=calendar_id, owner=owner, series_uid=uid)
            if isinstance(parsed, SkippedItem):
                skipped.append(parsed)  # logged once, by the service, with its calendar
            else:
                events.append(parsed)
        return events, skipped

    def _learn_series_uids(self, calendar_id: str, master_ids: Iterable[str]) -> None:
        """Know the iCalUId of each series master (an occurrence's own iCalUId differs per
        occurrence, https://learn.microsoft.com/en-us/graph/api/resources/event: "This ID is
        different for each occurrence in a recurring series"): from memory, else from the
        store, else from Graph. calendarView delta lists "single instances or occurrences and
        exceptions of a recurring series", never the master
        (https://learn.microsoft.com/en-us/graph/delta-query-events), so masters this mailbox
        never showed before are listed, the calendar's all at once (`_list_series_uids`),
        the first time this connector meets an unknown one there; any still unknown later
        (a series created since, a master left out of the list) costs one read each. What is
        learnt is saved to the store."""
        missing = {m for m in master_ids if m not in self._series_uids}
        if missing and self._store is not None:
            self._series_uids.update(self._store.load(missing))
            missing.difference_update(self._series_uids)
        found: dict[str, str] = {}
        if missing and calendar_id not in self._listed:
            found.update(self._list_series_uids(calendar_id))  # throttled: listed next time
            self._listed.add(calendar_id)
            self._series_uids.update(found)
            missing.difference_update(found)
        for master_id in sorted(missing):
            uid = self._read_series_uid(master_id)
            self._series_uids[master_id] = uid
            if uid:
                found[master_id] = uid
        if found and self._store is not None:
            self._store.save(found)

    def _list_series_uids(self, calendar_id: str) -> dict[str, str]:
        """Every series master of the calendar with its iCalUId, in pages of `page_size`:
        GET .../events lists "single instance meetings and series masters"
        (https://learn.microsoft.com/en-us/graph/api/calendar-list-events), ``$filter`` on
        the event's ``type`` keeps the masters, ``$select`` only their iCalUId, pages follow
        ``@odata.nextLink`` (https://learn.microsoft.com/en-us/graph/paging). One request per
        calendar instead of one per series. The page documents OData query parameters but
        lists no filterable properties, so a refused filter (400) is not fatal: throttling
        is the client's (waited or raised as `RateLimited`, like any call); any other
        failure keeps what the pages before it gave and the rest are read one by one."""
        found: dict[str, str] = {}
        url: str | None = f"{self._calendar_path(calendar_id)}/events"
        params: dict[str, str] | None = {"$filter": "type eq 'seriesMaster'",
                                         "$select": "iCalUId", "$top": str(self.page_size)}
        try:
            while url is not None:
                page = self.client.json("GET", url, operation="events.list", params=params)
                found.update((str(raw["id"]), str(raw["iCalUId"]))
                             for raw in page.get("value", [])
                             if isinstance(raw, dict) and raw.get("id") and raw.get("iCalUId"))
                url, params = page.get("@odata.nextLink"), None  # a next link carries its query
        except (RateLimited, AuthRevoked):
            raise
        except ConnectorError as err:
            log.info("series masters not listed (%s); reading them one by one",
                     type(err).__name__)
        return found

    def _read_series_uid(self, master_id: str) -> str | None:
        """GET the master's iCalUId alone; None when the master is gone."""
        try:
            data = self.client.json(
                "GET",
                f"{self._root}/events/{quote(master_id)}",
                operation="events.get",
                params={"$select": "iCalUId"},
            )
        except NotFound:
            return None
        uid = data.get("iCalUId")
        return str(uid) if uid else None

    def _parse(self, calendar_id: str, event_id: str, raw: GraphEvent) -> CalendarEvent:
        """One event from a read or a write's answer; a broken one raises `MalformedEvent`
        (the same errors `parse_item` turns into skipped items during a sync)."""

        def parse() -> CalendarEvent:
            master = raw.get("seriesMasterId")
            if master:
                self._learn_series_uids(calendar_id, [master])
            uid = self._series_uids.get(master) if master else None
            return parse_event(raw, calendar_id=calendar_id, owner=self.owner_email(),
                               series_uid=uid)

        return read_event(parse, event_id=event_id)

    def get_event(self, calendar_id: str, event_id: str) -> CalendarEvent:
        """GET /me/events/{id}: https://learn.microsoft.com/en-us/graph/api/event-get."""
        raw = self.client.json(
            "GET",
            f"{self._root}/events/{quote(event_id)}",
            operation="events.get",
            headers={"Prefer": PREFER},
        )
        return self._parse(calendar_id, event_id, raw)

    def patch_description(
        self, calendar_id: str, event_id: str, *, description: str, is_html: bool, etag: str | None
    ) -> CalendarEvent:
        """PATCH /me/events/{id} with If-Match: https://learn.microsoft.com/en-us/graph/api/event-update.

        Graph bodies are HTML; plain text is escaped first. 412 raises `PreconditionFailed`.
        """
        content = description if is_html else text_to_html(description)
        headers = {"Prefer": PREFER}
        if etag:
            headers["If-Match"] = etag
        raw = self.client.json(
            "PATCH",
            f"{self._root}/events/{quote(event_id)}",
            operation="events.patch",
            json={"body": {"contentType": "html", "content": content}},
            headers=headers,
        )
        return self._parse(calendar_id, event_id, raw)

    def free_busy(self, emails: list[str], start: datetime, end: datetime) -> FreeBusy:
        """POST /me/calendar/getSchedule: https://learn.microsoft.com/en-us/graph/api/calendar-getschedule.

        Graph answers a schedule it cannot read (another provider, another tenant) with an
        ``error`` (freeBusyError: ``message``, ``responseCode``) on that scheduleInformation
        (https://learn.microsoft.com/en-us/graph/api/resources/scheduleinformation); such
        people are reported as unreadable, never as free.
        """
        body: dict[str, Any] = {
            "schedules": emails,
            "startTime": {
                "dateTime": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            },
            "endTime": {
                "dateTime": end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            },
            "availabilityViewInterval": 30,
        }
        data = self.client.json(
            "POST",
            f"{self._root}/calendar/getSchedule",
            operation="calendar.getSchedule",
            json=body,
            headers={"Prefer": 'outlook.timezone="UTC"'},
        )
        busy: dict[str, list[BusyInterval]] = {}
        unreadable: set[str] = set()
        for info in data.get("value", []):
            schedule = str(info.get("scheduleId", "")).lower()
            if info.get("error"):
                log.info("no free/busy for a schedule: %s", info["error"].get("responseCode"))
                unreadable.add(schedule)
                continue
            busy[schedule] = parse_busy(info)
        return FreeBusy.answer(emails, busy=busy, unreadable=unreadable)

    def subscribe(
        self, calendar_id: str, *, address: str, token: str, ttl_seconds: int,
        lifecycle_address: str | None = None,
    ) -> Subscription:
        """POST /subscriptions: https://learn.microsoft.com/en-us/graph/api/subscription-post-subscriptions.

        `token` travels as clientState; Graph validates `address` (and `lifecycle_address`)
        before answering. Lifecycle notifications (reauthorizationRequired,
        subscriptionRemoved, missed: https://learn.microsoft.com/graph/change-notifications-lifecycle-events)
        only reach subscriptions created with a lifecycleNotificationUrl; it cannot be added
        later.
        """
        ttl = min(timedelta(seconds=ttl_seconds), MAX_SUBSCRIPTION)
        resource = f"{self._calendar_path(calendar_id)}/events"
        body = {
            "changeType": "created,updated,deleted",
            "notificationUrl": address,
            "resource": resource,
            "expirationDateTime": _graph_time(datetime.now(UTC) + ttl),
            "clientState": token,
        }
        if lifecycle_address:
            body["lifecycleNotificationUrl"] = lifecycle_address
        data = self.client.json(
            "POST", "subscriptions", operation="subscriptions.create", json=body
        )
        expires = parse_instant(data.get("expirationDateTime")) or datetime.now(UTC) + ttl
        return Subscription(id=data["id"], resource_id=data.get("resource"), expires_at=expires)

    def unsubscribe(self, subscription: Subscription) -> None:
        """DELETE /subscriptions/{id}: https://learn.microsoft.com/en-us/graph/api/subscription-delete."""
        try:
            self.client.request(
                "DELETE",
                f"subscriptions/{quote(subscription.id)}",
                operation="subscriptions.delete",
            )
        except NotFound:
            log.info("subscription %s was already gone", subscription.id)


def is_foreign_link(link: str, *, api_url: str) -> bool:
    """Whether an absolute `link` lives on another origin than `api_url` (relative: no)."""
    target = urlsplit(link)
    if not target.scheme or not target.netloc:
        return False
    home = urlsplit(api_url)
    return (target.scheme.lower(), target.netloc.lower()) != (home.scheme.lower(),
                                                              home.netloc.lower())
