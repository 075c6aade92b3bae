"""HTTP routes of the Google sandbox: the Calendar v3 shapes the real client library speaks.

Paths follow the discovery document (``/calendar/v3/`` + method path), error bodies follow
https://developers.google.com/calendar/api/guides/errors. Per route, the reference page
it follows is named in its docstring.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.admin import RecordedRequest
from sandbox.edge import request_kind
from sandbox.google import recurrence
from sandbox.google.consent import AUTHORIZE_PATH, DECIDE_PATH, GoogleConsent
from sandbox.google.runtime import Channel, PageSnapshot, Runtime
from sandbox.google.store import GoogleStore, rfc3339
from sandbox.google.workspace import CALENDAR_SCOPE_PREFIX, JWT_BEARER, GrantRefused

log = logging.getLogger(__name__)

API = "/calendar/v3"
DEFAULT_PAGE = 250
MAX_PAGE = 2500
_RESTRICTIONS = (
    "timeMin",
    "timeMax",
    "orderBy",
    "q",
    "iCalUID",
    "updatedMin",
    "privateExtendedProperty",
    "sharedExtendedProperty",
)


class ApiError(Exception):
    """Answer the request with Google's error JSON."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        headers: dict[str, str] | None = None,
        **extra: str,
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.domain = code, reason, message, domain
        self.headers = headers or {}
        self.extra = extra

    def response(self) -> JSONResponse:
        """The documented ``{"error": {"errors": [...], "code", "message"}}`` body."""
        item: dict[str, Any] = {
            "domain": self.domain,
            "reason": self.reason,
            "message": self.message,
        }
        item.update(self.extra)
        body = {"error": {"errors": [item], "code": self.code, "message": self.message}}
        return JSONResponse(body, status_code=self.code, headers=self.headers)


def _parse_time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as err:
        raise ApiError(
            400, "invalid", f"Bad Request: {name}", locationType="parameter", location=name
        ) from err
    if parsed.tzinfo is None:
        raise ApiError(
            400,
            "invalid",
            f"Bad Request: {name} needs an offset",
            locationType="parameter",
            location=name,
        )
    return parsed.astimezone(UTC)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


def _page_size(request: Request) -> int:
    raw = request.query_params.get("maxResults")
    try:
        size = int(raw) if raw is not None else DEFAULT_PAGE
    except ValueError as err:
        raise ApiError(400, "invalid", "Invalid value for maxResults") from err
    return max(1, min(size, MAX_PAGE))


class SandboxApp:
    """Builds the Starlette app over a store and runtime state."""

    def __init__(self, store: GoogleStore, runtime: Runtime, base_url: Callable[[], str],
                 consent: GoogleConsent | None = None) -> None:
        self.store = store
        self.rt = runtime
        self.base_url = base_url
        self.consent = consent or GoogleConsent(runtime)

    def horizon(self) -> datetime:
        """How far ahead infinite series are expanded."""
        return self.rt.now().astimezone(UTC) + recurrence.HORIZON

    # -- plumbing -------------------------------------------------------------------------

    def build(self) -> Starlette:
        """The ASGI app."""
        routes = [
            Route("/token", self.token, methods=["POST"]),
            Route(AUTHORIZE_PATH, self.consent.authorize, methods=["GET"]),
            Route(DECIDE_PATH, self.consent.decide, methods=["POST"]),
            Route(f"{API}/users/me/calendarList", self.api(self.calendar_list), methods=["GET"]),
            Route(f"{API}/calendars/{{cid}}/events", self.api(self.failing_list), methods=["GET"]),
            Route(
                f"{API}/calendars/{{cid}}/events/watch",
                self.api(self.events_watch),
                methods=["POST"],
            ),
            Route(
                f"{API}/calendars/{{cid}}/events/{{eid}}",
                self.api(self.events_get),
                methods=["GET"],
            ),
            Route(
                f"{API}/calendars/{{cid}}/events/{{eid}}",
                self.api(self.events_patch),
                methods=["PATCH"],
            ),
            Route(
                f"{API}/calendars/{{cid}}/events/{{eid}}/instances",
                self.api(self.events_instances),
                methods=["GET"],
            ),
            Route(f"{API}/freeBusy", self.api(self.freebusy), methods=["POST"]),
            Route(f"{API}/channels/stop", self.api(self.channels_stop), methods=["POST"]),
        ]
        return Starlette(routes=routes)

    def api(
        self, handler: Callable[[Request, str], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a handler with bearer auth, throttling, error JSON and request recording."""

        async def endpoint(request: Request) -> Response:
            user: str | None = None
            try:
                auth = request.headers.get("authorization", "")
                token = auth[7:] if auth.lower().startswith("bearer ") else ""
                user = self.rt.user_for(token) if token else None
                if user is None:
                    raise ApiError(
                        401,
                        "authError",
                        "Invalid Credentials",
                        locationType="header",
                        location="Authorization",
                        headers={"WWW-Authenticate": 'Bearer realm="sandbox"'},
                    )
                self._require_calendar_scope(token, request.url.path)
                retry_after = self.rt.take_throttle()
                if retry_after is not None:
                    raise ApiError(
                        429,
                        "rateLimitExceeded",
                        "Rate Limit Exceeded",
                        domain="usageLimits",
                        headers={"Retry-After": f"{retry_after:g}"},
                    )
                if request.url.path.endswith("/freeBusy") and \
                        self.rt.free_busy_retry_after is not None:
                    # documented: 429 rateLimitExceeded (domain usageLimits), "Too many
                    # requests" (developers.google.com/calendar/api/guides/errors)
                    raise ApiError(
                        429,
                        "rateLimitExceeded",
                        "Rate Limit Exceeded",
                        domain="usageLimits",
                        headers={"Retry-After": f"{self.rt.free_busy_retry_after:g}"},
                    )
                response = await self._at_edge(request, user, handler)
            except ApiError as err:
                response = err.response()
            self._record(request, response.status_code, user)
            return response

        return endpoint

    def _require_calendar_scope(self, token: str, path: str) -> None:
        """A delegated (service account) token reaches Calendar only with a calendar scope:
        documented 403 ``insufficientPermissions``
        (https://developers.google.com/calendar/api/guides/errors#403_insufficient_permissions)."""
        scopes = self.rt.workspace.scopes_of(token)
        if scopes is None or not path.startswith(API):
            return
        if not any(s.startswith(CALENDAR_SCOPE_PREFIX) for s in scopes):
            raise ApiError(403, "insufficientPermissions",
                           "Request had insufficient authentication scopes.")

    async def _at_edge(self, request: Request, user: str,
                       handler: Callable[[Request, str], Awaitable[Response]]) -> Response:
        """Serve under the store lock, after any injected delay; an injected write failure
        answers Google's 410 ``deleted``
        (https://developers.google.com/calendar/api/guides/errors#410_gone)."""
        edge = self.rt.edge
        kind = request_kind(request.method, request.url.path)
        edge.enter(kind, user)
        try:
            await edge.wait(kind)
            status = edge.write_failure(kind, user)
            if status is not None:
                raise ApiError(status, "deleted" if status == 410 else "backendError",
                               "Resource has been deleted" if status == 410 else "Backend Error")
            with self.store.lock:
                response = await handler(request, user)
        finally:
            edge.leave(kind, user)
        return response

    def _record(self, request: Request, status: int, user: str | None) -> None:
        self.rt.record(
            RecordedRequest(
                method=request.method,
                path=request.url.path,
                query=dict(request.query_params),
                status=status,
                user=user,
            )
        )

    async def failing_list(self, request: Request, user: str) -> Response:
        """events.list, unless a failure was injected for this calendar: then Google's
        documented 500 ``backendError`` (https://developers.google.com/calendar/api/guides/errors#500_backend_error)."""
        status = self.rt.edge.list_failure(user)
        if status is not None:
            raise ApiError(status, "backendError", "Backend Error")
        response = await self.events_list(request, user)
        if self.rt.edge.list_truncated(user):  # the body breaks off half-way, the status says 200
            body = bytes(response.body)
            return Response(body[: len(body) // 2], status_code=200,
                            media_type="application/json")
        return response

    def calendar_of(self, cid: str, user: str) -> str:
        """The calendar a request addresses; people may only read their own."""
        calendar = user if cid == "primary" else cid.lower()
        if calendar != user or calendar not in self.store.calendars:
            raise ApiError(404, "notFound", "Not Found")
        return calendar

    # -- OAuth ----------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        """OAuth 2.0 token endpoint: refresh_token and (service accounts) jwt-bearer grants
        here, authorization_code grants in `GoogleConsent.grant`.

        https://developers.google.com/identity/protocols/oauth2/web-server#offline and
        https://developers.google.com/identity/protocols/oauth2/service-account#httprest
        """
        await self.rt.edge.wait(None)  # a remote endpoint: the all-requests latency applies
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        grant = form.get("grant_type")
        refresh_token: str | None = None
        if grant == JWT_BEARER:
            return self._jwt_grant(request, form.get("assertion", ""))
        if grant == "authorization_code":
            answer = await self.consent.grant(request, form)
            self._record(request, answer.status_code, None)
            return answer
        if grant == "refresh_token":
            refresh_token = form.get("refresh_token", "")
        else:
            self._record(request, 400, None)
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        access = self.rt.refresh(refresh_token)
        if access is None:
            self._record(request, 400, None)
            return JSONResponse(
                {
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                },
                status_code=400,
            )
        body: dict[str, Any] = {
            "access_token": access,
            "expires_in": 3599,
            "token_type": "Bearer",
            "scope": "https://www.googleapis.com/auth/calendar",
        }
        self._record(request, 200, self.rt.user_for(access))
        return JSONResponse(body)

    def _jwt_grant(self, request: Request, assertion: str) -> Response:
        """A service account's signed assertion (RFC 7523): an access token acting as ``sub``
        (checks in `sandbox.google.workspace`); refusals in Google's OAuth error shape."""
        token_url = str(request.url).split("?", 1)[0]
        try:
            user, scopes = self.rt.workspace.grant(assertion, token_url=token_url,
                                                   now=self.rt.now())
        except GrantRefused as err:
            self._record(request, err.status, None)
            return JSONResponse({"error": err.error, "error_description": err.description},
                                status_code=err.status)
        access = self.rt.issue(user)
        self.rt.workspace.remember(access, scopes)
        self._record(request, 200, user)
        return JSONResponse({"access_token": access, "expires_in": 3599,
                             "token_type": "Bearer", "scope": " ".join(sorted(scopes))})

    # -- calendars ------------------------------------------------------------------------

    async def calendar_list(self, request: Request, user: str) -> Response:
        """calendarList.list: https://developers.google.com/calendar/api/v3/reference/calendarList/list"""
        cal = self.store.calendars[user]
        item = {
            "kind": "calendar#calendarListEntry",
            "etag": '"1"',
            "id": cal.owner,
            "summary": cal.owner,
            "timeZone": cal.time_zone,
            "accessRole": "owner",
            "primary": True,
        }
        return JSONResponse(
            {
                "kind": "calendar#calendarList",
                "etag": '"1"',
                "items": [item],
                "nextSyncToken": "calendar-list",
            }
        )

    # -- events ---------------------------------------------------------------------------

    def _page(
        self,
        snapshot: PageSnapshot,
        snap_id: str,
        offset: int,
        size: int,
        envelope: dict[str, Any],
        with_sync: bool,
    ) -> JSONResponse:
        items = snapshot.items[offset : offset + size]
        body = dict(envelope, items=items)
        if offset + size < len(snapshot.items):
            body["nextPageToken"] = f"{snap_id}.{offset + size}"
        elif with_sync:
            body["nextSyncToken"] = snapshot.next_sync_token
        return JSONResponse(body)

    def _continue(
        self, request: Request, calendar: str, envelope: dict[str, Any], with_sync: bool
    ) -> JSONResponse:
        token = request.query_params["pageToken"]
        snap_id, _, offset = token.rpartition(".")
        with self.rt.lock:
            snapshot = self.rt.pages.get(snap_id)
        if snapshot is None or snapshot.calendar != calendar or not offset.isdigit():
            raise ApiError(
                400, "invalid", "Invalid page token", locationType="parameter", location="pageToken"
            )
        return self._page(snapshot, snap_id, int(offset), _page_size(request), envelope, with_sync)

    def _envelope(self, calendar: str) -> dict[str, Any]:
        cal = self.store.calendars[calendar]
        return {
            "kind": "calendar#events",
            "etag": f'"{self.store.seq}"',
            "summary": cal.owner,
            "updated": rfc3339(self.rt.now()),
            "timeZone": cal.time_zone,
            "accessRole": "owner",
            "defaultReminders": [],
        }

    async def events_list(self, request: Request, user: str) -> Response:
        """events.list with paging and sync tokens.

        https://developers.google.com/calendar/api/v3/reference/events/list and
        https://developers.google.com/calendar/api/guides/sync: ``nextSyncToken`` only on the
        last page; ``syncToken`` cannot be combined with timeMin/timeMax/orderBy/q/...
        (400); an invalid or expired token answers 410 ``fullSyncRequired``; deleted items
        are always included in an incremental result.
        """
        calendar = self.calendar_of(request.path_params["cid"], user)
        envelope = self._envelope(calendar)
        if "pageToken" in request.query_params:
            return self._continue(request, calendar, envelope, with_sync=True)
        q = request.query_params
        sync_token = q.get("syncToken")
        since: int | None = None
        if sync_token is not None:
            bad = [name for name in _RESTRICTIONS if name in q]
            if bad:
                raise ApiError(
                    400,
                    "invalid",
                    "Sync token cannot be used with other request restrictions.",
                    locationType="parameter",
                    location=bad[0],
                )
            since = self.rt.read_sync_token(calendar, sync_token)
            if since is None:
                raise ApiError(
                    410,
                    "fullSyncRequired",
                    "Sync token is no longer valid, a full sync is required.",
                )
        items = self.store.list_items(
            calendar,
            single_events=_flag(request, "singleEvents"),
            show_deleted=_flag(request, "showDeleted") or since is not None,
            since=since,
            time_min=_parse_time(q.get("timeMin"), "timeMin"),
            time_max=_parse_time(q.get("timeMax"), "timeMax"),
            horizon=self.horizon(),
        )
        snapshot = PageSnapshot(calendar, items, self.rt.sync_token(calendar, self.store.seq))
        snap_id = secrets.token_urlsafe(12)
        with self.rt.lock:
            self.rt.pages[snap_id] = snapshot
        return self._page(snapshot, snap_id, 0, _page_size(request), envelope, with_sync=True)

    def _resolve(self, calendar: str, event_id: str) -> tuple[Any, datetime | None]:
        found = self.store.resolve(calendar, event_id, self.horizon())
        if found is None:
            raise ApiError(404, "notFound", "Not Found")
        return found

    def _json(self, calendar: str, rec: Any, original: datetime | None) -> dict[str, Any]:
        if original is None:
            out = self.store.event_json(rec, calendar)
        else:
            out = self.store.instance_json(rec, original, calendar)
        with self.rt.lock:
            if out.get("id") in self.rt.malformed_reads:  # fault injection: unparseable event
                out.pop("start", None)
        return out

    async def events_get(self, request: Request, user: str) -> Response:
        """events.get: https://developers.google.com/calendar/api/v3/reference/events/get"""
        calendar = self.calendar_of(request.path_params["cid"], user)
        rec, original = self._resolve(calendar, request.path_params["eid"])
        return JSONResponse(self._json(calendar, rec, original))

    async def events_patch(self, request: Request, user: str) -> Response:
        """events.patch of the description, honouring If-Match.

        https://developers.google.com/calendar/api/v3/reference/events/patch and
        https://developers.google.com/calendar/api/guides/version-resources: a stale
        If-Match answers 412 ``conditionNotMet``; patching one instance makes it an
        exception; only the organizer may change shared properties. A cancelled event is
        still there to patch: https://developers.google.com/calendar/api/v3/reference/events
        (``status``): "The get method always returns them", and on the organizer's calendar
        cancelled events keep their details "so that they can be restored (undeleted)". The
        patch changes the description and the event stays cancelled.
        """
        calendar = self.calendar_of(request.path_params["cid"], user)
        rec, original = self._resolve(calendar, request.path_params["eid"])
        if rec.raw is not None:
            raise ApiError(400, "invalid", "Invalid event")
        if rec.organizer != calendar:
            raise ApiError(
                403,
                "forbiddenForNonOrganizer",
                "Shared properties can only be changed by the organizer of the event.",
                domain="calendar",
            )
        if_match = request.headers.get("if-match")
        if if_match and if_match != "*" and if_match != self.store.current_etag(rec, original):
            raise ApiError(
                412,
                "conditionNotMet",
                "Precondition Failed",
                locationType="header",
                location="If-Match",
            )
        body = await request.json()
        if not isinstance(body, dict):
            raise ApiError(400, "parseError", "Parse Error")
        now = self.rt.now()
        if original is None:
            if "description" in body:
                rec.description = str(body["description"] or "")
            if "summary" in body:
                rec.summary = str(body["summary"] or "")
            self.store.touch(rec, now)
        else:
            override = self.store.touch_instance(rec, original, now)
            if "description" in body:
                override.description = str(body["description"] or "")
        return JSONResponse(self._json(calendar, rec, original))

    async def events_instances(self, request: Request, user: str) -> Response:
        """events.instances: https://developers.google.com/calendar/api/v3/reference/events/instances"""
        calendar = self.calendar_of(request.path_params["cid"], user)
        envelope = self._envelope(calendar)
        if "pageToken" in request.query_params:
            return self._continue(request, calendar, envelope, with_sync=False)
        rec, original = self._resolve(calendar, request.path_params["eid"])
        if original is not None or not rec.recurrence:
            raise ApiError(400, "invalid", "Not a recurring event")
        time_min = _parse_time(request.query_params.get("timeMin"), "timeMin")
        time_max = _parse_time(request.query_params.get("timeMax"), "timeMax")
        show_deleted = _flag(request, "showDeleted")
        items = []
        for start in self.store.instance_starts(
            rec, min(self.horizon(), time_max or self.horizon())
        ):
            if self.store.instance_status(rec, start) == "cancelled" and not show_deleted:
                continue
            s, e = self.store.instance_times(rec, start)
            if (time_min is None or e > time_min) and (time_max is None or s < time_max):
                items.append(self.store.instance_json(rec, start, calendar))
        snap_id = secrets.token_urlsafe(12)
        snapshot = PageSnapshot(calendar, items, "")
        with self.rt.lock:
            self.rt.pages[snap_id] = snapshot
        return self._page(snapshot, snap_id, 0, _page_size(request), envelope, with_sync=False)

    # -- free/busy and push -----------------------------------------------------------------

    async def freebusy(self, request: Request, user: str) -> Response:
        """freebusy.query: https://developers.google.com/calendar/api/v3/reference/freebusy/query"""
        body = await request.json()
        time_min = _parse_time(body.get("timeMin"), "timeMin")
        time_max = _parse_time(body.get("timeMax"), "timeMax")
        if time_min is None or time_max is None:
            raise ApiError(400, "required", "Missing timeMin or timeMax")
        if time_max <= time_min:
            raise ApiError(
                400,
                "timeRangeEmpty",
                "The specified time range is empty.",
                domain="calendar",
                locationType="parameter",
                location="timeMax",
            )
        calendars: dict[str, Any] = {}
        for item in body.get("items", []):
            cid = str(item.get("id", "")).lower()
            if cid in self.store.calendars:
                spans = self.store.busy(cid, time_min, time_max, self.horizon())
                calendars[cid] = {
                    "busy": [{"start": rfc3339(s), "end": rfc3339(e)} for s, e in spans]
                }
            else:  # documented: a calendar it cannot see gets per-calendar ``errors``
                # (FreeBusyCalendar.errors, reason notFound), the request still answers 200
                calendars[cid] = {
                    "errors": [{"domain": "global", "reason": "notFound"}],
                    "busy": [],
                }
        return JSONResponse(
            {
                "kind": "calendar#freeBusy",
                "timeMin": rfc3339(time_min),
                "timeMax": rfc3339(time_max),
                "calendars": calendars,
            }
        )

    async def events_watch(self, request: Request, user: str) -> Response:
        """events.watch: https://developers.google.com/calendar/api/guides/push"""
        calendar = self.calendar_of(request.path_params["cid"], user)
        body = await request.json()
        if (
            body.get("type") not in ("web_hook", "webhook")
            or not body.get("id")
            or not body.get("address")
        ):
            raise ApiError(400, "required", "Channel id, type web_hook and address are required")
        ttl = float((body.get("params") or {}).get("ttl", 604800))
        now_ms = int(self.rt.now().timestamp() * 1000)
        expiration = int(body["expiration"]) if body.get("expiration") else now_ms + int(ttl * 1000)
        channel = Channel(
            id=str(body["id"]),
            resource_id="res-" + secrets.token_urlsafe(12),
            calendar=calendar,
            address=str(body["address"]),
            token=body.get("token"),
            expiration_ms=expiration,
        )
        with self.rt.lock:
            self.rt.channels[channel.id] = channel
        return JSONResponse(
            {
                "kind": "api#channel",
                "id": channel.id,
                "resourceId": channel.resource_id,
                "resourceUri": f"{self.base_url()}calendars/{calendar}/events?alt=json",
                "token": channel.token,
                "expiration": str(channel.expiration_ms),
            }
        )

    async def channels_stop(self, request: Request, user: str) -> Response:
        """channels.stop: https://developers.google.com/calendar/api/v3/reference/channels/stop"""
        body = await request.json()
        with self.rt.lock:
            channel = self.rt.channels.get(str(body.get("id")))
            if (
                channel is None
                or channel.resource_id != body.get("resourceId")
                or channel.calendar != user
            ):
                raise ApiError(404, "notFound", "Channel not found")
            del self.rt.channels[channel.id]
        return Response(status_code=204)
