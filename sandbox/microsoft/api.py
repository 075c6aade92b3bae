"""Graph v1.0 routes of the sandbox: me, calendars, calendarView delta, events, getSchedule,
subscriptions; plus the middleware that authenticates, records and throttles.

Throttling answers 429 with ``Retry-After`` and code ``TooManyRequests``
(https://learn.microsoft.com/en-us/graph/throttling); a bad bearer token answers 401
``InvalidAuthenticationToken`` (https://learn.microsoft.com/en-us/graph/errors).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import anyio
import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from sandbox.admin import RecordedRequest
from sandbox.edge import EdgeFaults, request_kind
from sandbox.microsoft.authority import (
    DELEGATED_TENANTS,
    TENANT,
    Grants,
    authority_router,
    object_id,
)
from sandbox.microsoft.consent import code_grant, consent_router
from sandbox.microsoft.delta import DeltaEngine
from sandbox.microsoft.directory import authorize_app, directory_router, render_user
from sandbox.microsoft.listing import ListQuery, QueryError, selected, selection
from sandbox.microsoft.render import (
    graph_error,
    iana_zone,
    preferred_page_size,
    preferred_zone,
    removed,
    render_event,
    stamp,
    windows_zone,
)
from sandbox.microsoft.store import Store
from sandbox.microsoft.tenants import Tenants

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
MAX_SUBSCRIPTION_MINUTES = 10080  # Outlook event subscriptions: under 7 days
MAX_BATCH = 20  # requests in one JSON batch


@dataclass
class Faults:
    """Injected misbehaviour and the request log."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    throttle: int = 0
    retry_after: float = 1.0
    schedule_retry_after: float | None = None  # every getSchedule answers 429 while set
    malformed_reads: set[str] = field(default_factory=set)  # event ids GET/PATCH break
    batched_throttle: int = 0  # the next batched requests that answer 429 on their own
    event_lists: list[int | None] = field(default_factory=list)  # the next events lists'
    # statuses, in order (None: served); 429 carries `retry_after`
    edge: EdgeFaults = field(default_factory=EdgeFaults)  # delays and refused writes
    requests: list[RecordedRequest] = field(default_factory=list)


@dataclass
class SubscriptionRecord:
    """A Graph subscription (https://learn.microsoft.com/en-us/graph/api/resources/subscription)."""

    id: str
    owner: str
    resource: str
    change_type: str
    notification_url: str
    client_state: str | None
    expires: datetime
    creator: str | None = None  # the app's client id for an app-only subscription
    lifecycle_url: str | None = None  # lifecycleNotificationUrl, validated like the other


@dataclass
class GraphState:
    """Everything the routes share."""

    store: Store
    delta: DeltaEngine
    grants: Grants
    faults: Faults
    root: Callable[[], str]  # https origin, known once the server listens
    tenants: Tenants
    tenant: str = TENANT  # where delegated sign-in works, besides Entra's aliases
    subscriptions: dict[str, SubscriptionRecord] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.root() + "/v1.0"


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(graph_error(code, message), status_code=status, headers=headers)


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _select(request: Request) -> list[str] | None:
    value = request.query_params.get("$select")
    return [s.strip() for s in value.split(",")] if value else None


def _zoned(value: dict[str, str]) -> datetime:
    name = value.get("timeZone", "UTC")
    zone = ZoneInfo(iana_zone(name))
    naive = datetime.fromisoformat(value["dateTime"][:19])
    return naive.replace(tzinfo=zone).astimezone(UTC)


async def _truncated(response: Response) -> Response:
    """Fault injection: the same 200 answer with its body cut off half-way."""
    chunks = [chunk async for chunk in response.body_iterator]  # type: ignore[attr-defined]
    body = b"".join(c if isinstance(c, bytes) else str(c).encode() for c in chunks)
    return Response(body[: len(body) // 2], status_code=200, media_type="application/json")


def create_app(state: GraphState) -> FastAPI:
    """The FastAPI app serving the authority and Graph v1.0."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(consent_router(state.grants))
    app.include_router(authority_router(
        state.grants, state.root, state.tenants, DELEGATED_TENANTS | {state.tenant.lower()},
        more_grants={"authorization_code": code_grant(state.grants, state.root)}))
    app.include_router(directory_router(state.tenants, lambda: state.base_url))

    @app.middleware("http")
    async def graph_edge(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        user: str | None = None
        response: Response
        if not path.startswith("/v1.0"):  # the authority: remote too, so the latency applies
            await state.faults.edge.wait(None)
            response = await call_next(request)
        else:
            header = request.headers.get("authorization", "")
            token = header[7:] if header.lower().startswith("bearer ") else ""
            user, problem = (
                state.grants.user_of(token) if token else (None, "Access token is empty.")
            )
            app_token, refusal = None, None
            if token and token not in state.grants.access:  # app-only: acts on the path's
                app_token, problem = state.tenants.app_of(token)  # mailbox, if it may
                if app_token is not None:
                    user, refusal = authorize_app(state.tenants, app_token, request.method, path)
            with state.faults.lock:
                throttled = state.faults.throttle > 0
                if throttled:
                    state.faults.throttle -= 1
            if throttled:
                response = _error(
                    429,
                    "TooManyRequests",
                    "Please retry after the time given in Retry-After.",
                    {"Retry-After": f"{state.faults.retry_after:g}"},
                )
            elif refusal is not None:
                response = _error(*refusal)
            elif user is None and app_token is None:
                response = _error(401, "InvalidAuthenticationToken", problem)
            elif path.endswith("/calendar/getSchedule") and \
                    state.faults.schedule_retry_after is not None:
                # documented: thresholds vary by request type, so one kind of request can be
                # throttled while others work (learn.microsoft.com/graph/throttling)
                response = _error(
                    429,
                    "TooManyRequests",
                    "Please retry after the time given in Retry-After.",
                    {"Retry-After": f"{state.faults.schedule_retry_after:g}"},
                )
            elif path.endswith("/calendarView/delta") and \
                    (failure := state.faults.edge.list_failure(user)) is not None:
                # https://learn.microsoft.com/en-us/graph/errors: 500 generalException
                response = _error(failure, "generalException",
                                  "An unspecified error has occurred.")
            else:
                request.state.user = user
                request.state.app = app_token
                response = await _at_edge(request, user, call_next)
                if path.endswith("/calendarView/delta") and state.faults.edge.list_truncated(user):
                    response = await _truncated(response)
        with state.faults.lock:
            state.faults.requests.append(
                RecordedRequest(
                    method=request.method,
                    path=path,
                    query=dict(request.query_params),
                    status=response.status_code,
                    user=user,
                )
            )
        return response

    async def _at_edge(request: Request, user: str | None,
                       call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Serve after any injected delay; an injected write failure answers its status
        (410 Gone is in https://learn.microsoft.com/en-us/graph/errors)."""
        edge = state.faults.edge
        kind = request_kind(request.method, request.url.path)
        edge.enter(kind, user)
        try:
            await edge.wait(kind)
            status = edge.write_failure(kind, user)
            if status is not None:
                return _error(status, "ErrorItemNotFound" if status in (404, 410)
                              else "generalException", "The item is no longer available.")
            response = await call_next(request)
        finally:
            edge.leave(kind, user)
        return response

    def _maybe_malformed(data: dict[str, object]) -> dict[str, object]:
        """Fault injection: an event whose start no client can parse."""
        with state.faults.lock:
            if data.get("id") in state.faults.malformed_reads:
                data["start"] = {"dateTime": "not-a-date", "timeZone": "UTC"}
        return data

    def owner(request: Request, uid: str | None) -> str | None:
        user: str = request.state.user
        if uid is None or uid.lower() in (user, object_id(user)):
            return user
        return None

    def me(request: Request, uid: str | None = None) -> Any:
        email = owner(request, uid)
        if email is None:
            return _error(
                403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
            )
        listed = state.tenants.user_by_email(email) if request.state.app else None
        if listed is not None:
            return render_user(listed, _select(request))
        p = state.store.population.person(email)
        return {
            "id": object_id(email),
            "displayName": p.name,
            "mail": email,
            "userPrincipalName": email,
        }

    def calendars(request: Request, uid: str | None = None) -> Any:
        email = owner(request, uid)
        if email is None:
            return _error(
                403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
            )
        return {
            "@odata.context": f"{state.base_url}/$metadata#users('{email}')/calendars",
            "value": [
                {
                    "id": state.store.calendar_id(email),
                    "name": "Calendar",
                    "color": "auto",
                    "isDefaultCalendar": True,
                    "canEdit": True,
                    "canShare": True,
                    "canViewPrivateItems": True,
                    "changeKey": "sandbox",
                    "owner": {"name": email, "address": email},
                }
            ],
        }

    def mailbox_settings(request: Request, uid: str | None = None) -> Any:
        """GET /me/mailboxSettings, documented shape, shortened
        (https://learn.microsoft.com/en-us/graph/api/user-get-mailboxsettings): ``timeZone``
        in the Windows form, which is Graph's default unless an administrator chose IANA."""
        email = owner(request, uid)
        if email is None:
            return _error(
                403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
            )
        return settings_of(email)

    def settings_of(email: str) -> dict[str, Any]:
        listed = state.tenants.user_by_email(email)
        zone = windows_zone(listed.time_zone if listed is not None
                            else state.store.population.person(email).time_zone)
        return {
            "@odata.context": f"{state.base_url}/$metadata#users('{email}')/mailboxSettings",
            "timeZone": zone,
            "language": {"locale": "en-GB", "displayName": "English (United Kingdom)"},
            "workingHours": {
                "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                "startTime": "09:00:00.0000000",
                "endTime": "17:00:00.0000000",
                "timeZone": {"name": zone},
            },
            "dateFormat": "dd/MM/yyyy",
            "timeFormat": "HH:mm",
        }

    async def batch(request: Request) -> Any:
        """POST /$batch (https://learn.microsoft.com/en-us/graph/json-batching): up to 20
        requests, each answered on its own (status, headers, body), the batch itself 200.
        The sandbox batches app-only mailbox settings reads, what the directory sync sends."""
        payload = await request.json()
        requests = payload.get("requests") if isinstance(payload, dict) else None
        if not isinstance(requests, list) or not 1 <= len(requests) <= MAX_BATCH:
            return _error(400, "BadRequest", f"A batch holds 1 to {MAX_BATCH} requests.")
        app_token = request.state.app
        answers = []
        for sub in requests:
            url = "/v1.0/" + str(sub.get("url", "")).lstrip("/").split("?")[0]
            status, body = 400, graph_error("BadRequest", "The sandbox batches app-only GET "
                                            "/users/{id}/mailboxSettings only.")
            if app_token is not None and sub.get("method") == "GET" and \
                    url.endswith("/mailboxSettings"):
                email, refusal = authorize_app(state.tenants, app_token, "GET", url)
                with state.faults.lock:
                    throttled = state.faults.batched_throttle > 0
                    state.faults.batched_throttle -= throttled
                if throttled:  # documented: each request of a batch is throttled on its own
                    status, body = 429, graph_error("TooManyRequests", "Retry later.")
                elif refusal is not None:
                    status, body = refusal[0], graph_error(refusal[1], refusal[2])
                elif email is not None:
                    status, body = 200, settings_of(email)
            answers.append({"id": sub.get("id"), "status": status,
                            "headers": {"Content-Type": "application/json"}, "body": body})
        return {"responses": answers}

    def delta(request: Request, uid: str | None = None, cid: str | None = None) -> Any:
        email = owner(request, uid)
        if email is None or (cid is not None and cid != state.store.calendar_id(email)):
            return _error(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        prefer = request.headers.get("prefer")
        zone_name, zone = preferred_zone(prefer)
        size = preferred_page_size(prefer, DEFAULT_PAGE_SIZE)
        q = request.query_params
        if "$skiptoken" in q:
            key: str | None = q["$skiptoken"]
        elif "$deltatoken" in q:
            key = state.delta.resume(q["$deltatoken"])
        else:
            start, end = _parse_time(q.get("startDateTime")), _parse_time(q.get("endDateTime"))
            if start is None or end is None:
                return _error(
                    400,
                    "ErrorInvalidParameter",
                    "This request requires a time window specified by the query string "
                    "parameters StartDateTime and EndDateTime.",
                )
            key = state.delta.begin(email, start, end)
        page = state.delta.page(key, size) if key else None
        if page is None or page.owner != email:
            return _error(
                410,
                "syncStateNotFound",
                "The sync state generation is not found. Resync is required.",
            )
        values = []
        with state.store.lock:
            for item_id in page.item_ids:
                item = state.store.mailboxes[email][item_id]
                values.append(
                    removed(item)
                    if item.removed
                    else render_event(item, zone_name, zone, state.base_url)
                )
        link = f"{state.base_url}{request.url.path.removeprefix('/v1.0')}"
        body: dict[str, Any] = {
            "@odata.context": f"{state.base_url}/$metadata#Collection(event)",
            "value": values,
        }
        if page.skiptoken:
            body["@odata.nextLink"] = f"{link}?$skiptoken={page.skiptoken}"
        else:
            body["@odata.deltaLink"] = f"{link}?$deltatoken={page.deltatoken}"
        applied = f'odata.maxpagesize={size}, outlook.timezone="{zone_name}"'
        return JSONResponse(body, headers={"Preference-Applied": applied})

    def get_event(request: Request, event_id: str, uid: str | None = None) -> Any:
        email = owner(request, uid)
        item = state.store.find(email, event_id) if email else None
        if item is None:
            return _error(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        zone_name, zone = preferred_zone(request.headers.get("prefer"))
        data = _maybe_malformed(render_event(item, zone_name, zone, state.base_url))
        return JSONResponse(selected(data, selection(request.query_params.get("$select"))))

    def list_events(request: Request, uid: str | None = None, cid: str | None = None) -> Any:
        """GET /me/events, /me/calendars/{id}/events: the calendar's single instances and
        series masters (`sandbox.microsoft.listing`), `$top` a page, ordered by start."""
        email = owner(request, uid)
        if email is None or (cid is not None and cid != state.store.calendar_id(email)):
            return _error(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        with state.faults.lock:
            failure = state.faults.event_lists.pop(0) if state.faults.event_lists else None
        if failure == 429:
            return _error(429, "TooManyRequests",
                          "Please retry after the time given in Retry-After.",
                          {"Retry-After": f"{state.faults.retry_after:g}"})
        if failure is not None:
            return _error(failure, "generalException", "An unspecified error has occurred.")
        params = dict(request.query_params)
        try:
            query = ListQuery.parse(params)
        except QueryError as err:
            return _error(400, "BadRequest", str(err))
        zone_name, zone = preferred_zone(request.headers.get("prefer"))
        with state.store.lock:
            items = sorted((i for i in state.store.mailboxes.get(email, {}).values()
                            if i.kind in query.kinds and not i.removed),
                           key=lambda i: (i.start, i.id))
            values = [selected(render_event(i, zone_name, zone, state.base_url), query.select)
                      for i in items[query.skip:query.skip + query.top]]
        body: dict[str, Any] = {
            "@odata.context": f"{state.base_url}/$metadata#users('{email}')/events",
            "value": values,
        }
        if query.skip + query.top < len(items):
            body["@odata.nextLink"] = query.next_link(
                f"{state.base_url}{request.url.path.removeprefix('/v1.0')}", params)
        return JSONResponse(body)

    async def patch_event(request: Request, event_id: str, uid: str | None = None) -> Any:
        email = owner(request, uid)
        payload = await request.json()
        with state.store.lock:
            item = state.store.find(email, event_id) if email else None
            if item is None:
                return _error(
                    404, "ErrorItemNotFound", "The specified object was not found in the store."
                )
            if_match = request.headers.get("if-match")
            if if_match and if_match not in ("*", f'W/"{item.etag}"', item.etag):
                return _error(
                    412,
                    "ErrorIrresolvableConflict",
                    "The send or update operation could not be performed because the "
                    "change key passed in the request does not match the current change "
                    "key for the item.",
                )
            body = payload.get("body")
            if isinstance(body, dict):
                item.body = str(body.get("content", ""))
                item.body_type = (
                    "html" if str(body.get("contentType", "")).lower() == "html" else "text"
                )
            if "subject" in payload:
                item.subject = str(payload["subject"])
            if item.kind == "occurrence":
                item.kind = "exception"
            state.store.touch(item)
            zone_name, zone = preferred_zone(request.headers.get("prefer"))
            return JSONResponse(_maybe_malformed(render_event(item, zone_name, zone,
                                                              state.base_url)))

    async def get_schedule(request: Request, uid: str | None = None) -> Any:
        payload = await request.json()
        zone_name, zone = preferred_zone(request.headers.get("prefer"))
        try:
            start, end = _zoned(payload["startTime"]), _zoned(payload["endTime"])
        except (KeyError, ValueError, ZoneInfoNotFoundError):
            return _error(400, "ErrorInvalidParameter", "startTime and endTime are required.")
        step = timedelta(minutes=int(payload.get("availabilityViewInterval", 30)))
        out = []
        for address in payload.get("schedules", []):
            email = str(address).lower()
            if email not in state.store.mailboxes:
                # documented: scheduleInformation carries ``error`` (freeBusyError: message,
                # responseCode) for a schedule Graph cannot read; the request still answers 200
                # (https://learn.microsoft.com/en-us/graph/api/resources/scheduleinformation)
                out.append(
                    {
                        "scheduleId": address,
                        "availabilityView": "",
                        "scheduleItems": [],
                        "error": {
                            "message": "The requested user is not found.",
                            "responseCode": "ErrorMailRecipientNotFound",
                        },
                    }
                )
                continue
            busy = [
                i
                for i in state.store.in_window(email, start, end)
                if not i.removed and not i.is_cancelled and i.response != "declined"
            ]
            view, slot = [], start
            while slot < end:
                view.append(
                    "2" if any(i.start < slot + step and i.end > slot for i in busy) else "0"
                )
                slot += step
            out.append(
                {
                    "scheduleId": address,
                    "availabilityView": "".join(view),
                    "scheduleItems": [
                        {
                            "isPrivate": False,
                            "status": "busy",
                            "subject": i.subject,
                            "location": i.location,
                            "start": {
                                "dateTime": i.start.astimezone(zone).strftime(
                                    "%Y-%m-%dT%H:%M:%S.0000000"
                                ),
                                "timeZone": zone_name,
                            },
                            "end": {
                                "dateTime": i.end.astimezone(zone).strftime(
                                    "%Y-%m-%dT%H:%M:%S.0000000"
                                ),
                                "timeZone": zone_name,
                            },
                        }
                        for i in busy
                    ],
                    "workingHours": {},
                }
            )
        return {
            "@odata.context": f"{state.base_url}/$metadata#Collection(microsoft.graph.scheduleInformation)",  # noqa: E501
            "value": out,
        }

    def create_subscription(request: Request, payload: dict[str, Any]) -> Any:
        """Validation handshake: https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks."""
        url = str(payload.get("notificationUrl", ""))
        expires = _parse_time(payload.get("expirationDateTime"))
        now = state.store.now().astimezone(UTC)
        if not url or expires is None or expires <= now:
            return _error(
                400,
                "InvalidRequest",
                "notificationUrl and a future expirationDateTime are required.",
            )
        if expires > now + timedelta(minutes=MAX_SUBSCRIPTION_MINUTES):
            return _error(
                400,
                "InvalidRequest",
                "Subscription expiration can only be 10070 minutes in the future.",
            )
        owner, creator = request.state.user, None
        app_token = request.state.app
        if app_token is not None:  # app-only: the resource names the mailbox (/users/{id}/events)
            resource = "/v1.0/" + str(payload.get("resource", "")).lstrip("/")
            owner, refusal = authorize_app(state.tenants, app_token, "GET", resource)
            if refusal is not None:
                return _error(*refusal)
            if owner is None or not resource.rstrip("/").endswith("/events"):
                return _error(400, "InvalidRequest", "The resource must be /users/{id}/events.")
            creator = app_token.client_id
        lifecycle_url = payload.get("lifecycleNotificationUrl") or None
        if not all(_validates(u) for u in (url, lifecycle_url) if u):  # both, as Graph does
            return _error(
                400,
                "InvalidRequest",
                "Subscription validation request failed. Notification endpoint must respond "
                "with 200 OK to validation request.",
            )
        sub = SubscriptionRecord(
            id=str(secrets.token_hex(16)),
            owner=owner,
            resource=str(payload.get("resource", "")),
            change_type=str(payload.get("changeType", "created,updated,deleted")),
            notification_url=url,
            client_state=payload.get("clientState"),
            expires=expires,
            creator=creator,
            lifecycle_url=lifecycle_url,
        )
        state.subscriptions[sub.id] = sub
        return JSONResponse(
            {
                "@odata.context": f"{state.base_url}/$metadata#subscriptions/$entity",
                "id": sub.id,
                "resource": sub.resource,
                "applicationId": "sandbox",
                "changeType": sub.change_type,
                "clientState": sub.client_state,
                "notificationUrl": url,
                "expirationDateTime": stamp(expires),
                "creatorId": object_id(sub.owner),
            },
            status_code=201,
        )

    async def post_subscription(request: Request) -> Any:
        payload = await request.json()
        return await anyio.to_thread.run_sync(create_subscription, request, payload)

    def delete_subscription(request: Request, sub_id: str) -> Any:
        sub = state.subscriptions.get(sub_id)
        app_token = request.state.app
        mine = sub is not None and (sub.creator == app_token.client_id if app_token
                                    else sub.creator is None and sub.owner == request.state.user)
        if sub is None or not mine:
            return _error(404, "ResourceNotFound", "The object was not found.")
        del state.subscriptions[sub_id]
        return Response(status_code=204)

    for prefix in ("/v1.0/me", "/v1.0/users/{uid}"):
        app.add_api_route(prefix, me, methods=["GET"], response_model=None)
        app.add_api_route(prefix + "/calendars", calendars, methods=["GET"], response_model=None)
        app.add_api_route(
            prefix + "/mailboxSettings", mailbox_settings, methods=["GET"], response_model=None
        )
        app.add_api_route(
            prefix + "/calendarView/delta", delta, methods=["GET"], response_model=None
        )
        app.add_api_route(
            prefix + "/calendars/{cid}/calendarView/delta",
            delta,
            methods=["GET"],
            response_model=None,
        )
        app.add_api_route(prefix + "/events", list_events, methods=["GET"], response_model=None)
        app.add_api_route(prefix + "/calendars/{cid}/events", list_events, methods=["GET"],
                          response_model=None)
        app.add_api_route(
            prefix + "/events/{event_id}", get_event, methods=["GET"], response_model=None
        )
        app.add_api_route(
            prefix + "/events/{event_id}", patch_event, methods=["PATCH"], response_model=None
        )
        app.add_api_route(
            prefix + "/calendar/getSchedule", get_schedule, methods=["POST"], response_model=None
        )
    app.add_api_route(
        "/v1.0/subscriptions", post_subscription, methods=["POST"], response_model=None
    )
    app.add_api_route("/v1.0/$batch", batch, methods=["POST"], response_model=None)
    app.add_api_route(
        "/v1.0/subscriptions/{sub_id}", delete_subscription, methods=["DELETE"], response_model=None
    )
    return app


def _validates(url: str) -> bool:
    """The validation handshake: the endpoint echoes `validationToken` as text/plain, 200
    (https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks)."""
    token = secrets.token_urlsafe(16)
    try:
        answer = httpx.post(url, params={"validationToken": token}, timeout=10,
                            headers={"Content-Type": "text/plain; charset=utf-8"})
    except httpx.HTTPError:
        return False
    return answer.status_code == 200 and answer.text == token


LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")


def send_lifecycle(state: GraphState, email: str, event: str) -> int:
    """POST a lifecycle notification to the mailbox's subscriptions that asked for them
    (https://learn.microsoft.com/graph/change-notifications-lifecycle-events); on
    `subscriptionRemoved` Graph has already deleted the subscription. Returns how many."""
    if event not in LIFECYCLE_EVENTS:
        raise ValueError(event)
    subs = [s for s in state.subscriptions.values() if s.owner == email and s.lifecycle_url]
    for sub in subs:
        if event == "subscriptionRemoved":
            state.subscriptions.pop(sub.id, None)
        body = {"value": [{
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": stamp(sub.expires),
            "tenantId": "sandbox",
            "clientState": sub.client_state,
            "lifecycleEvent": event,
        }]}
        try:
            httpx.post(str(sub.lifecycle_url), json=body, timeout=10)
        except httpx.HTTPError as err:
            log.warning("lifecycle notification to subscription %s failed: %s", sub.id, err)
    return len(subs)


def send_notifications(state: GraphState, email: str) -> int:
    """POST a change notification to every subscription on the mailbox; returns how many."""
    subs = [s for s in state.subscriptions.values() if s.owner == email]
    for sub in subs:
        body = {
            "value": [
                {
                    "subscriptionId": sub.id,
                    "subscriptionExpirationDateTime": stamp(sub.expires),
                    "changeType": "updated",
                    "clientState": sub.client_state,
                    "tenantId": "sandbox",
                    "resource": f"Users/{object_id(email)}/Events/sandbox",
                    "resourceData": {
                        "@odata.type": "#Microsoft.Graph.Event",
                        "@odata.id": f"Users/{object_id(email)}/Events/sandbox",
                        "id": "sandbox",
                    },
                }
            ]
        }
        try:
            httpx.post(sub.notification_url, json=body, timeout=10)
        except httpx.HTTPError as err:
            log.warning("notification to subscription %s failed: %s", sub.id, err)
    return len(subs)
