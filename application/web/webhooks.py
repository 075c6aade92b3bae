"""Webhook endpoints for Google channels and Graph subscriptions: check, authenticate, enqueue.

Google (https://developers.google.com/calendar/api/guides/push): a POST with no useful body
and X-Goog-Channel-ID (the id we chose, up to 64 characters), X-Goog-Channel-Token (ours, up
to 256 characters) and X-Goog-Resource-State (`sync` for the first message of a channel,
then `exists` / `not_exists`).

Graph (https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks and
the changeNotificationCollection / changeNotification resources): the validation handshake
is a POST with `?validationToken=...` to be echoed as text/plain with 200 within 10 s;
notifications are `{"value": [changeNotification, ...]}` (value required), each with a
`subscriptionId` and the `clientState` we set (a string of at most 255 characters); we
answer 202.

Graph lifecycle notifications
(https://learn.microsoft.com/graph/change-notifications-lifecycle-events) come to
/webhooks/microsoft/lifecycle (validated with the same handshake) in the same collection
shape, with `lifecycleEvent` and our clientState: `reauthorizationRequired` and
`subscriptionRemoved` open a fresh subscription (`enqueue_renew`), `missed` syncs the
calendar now; a lifecycle item arriving on the change URL is handled the same way.

Hygiene: every body and header is validated with a pydantic model (garbage is a 400, never a
500); the echoed token is capped and served as text/plain with `nosniff`; bodies are capped;
calls that fail a check, and handshakes (unauthenticated by nature), cost the client's
address one token of a small bucket (20 at once, one more every 2 s): an empty bucket is a
429 with Retry-After before any lookup, while authenticated notifications cost nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from application.web.ratelimit import TokenBuckets
from service.accounts.crypto import Vault
from service.calendars.push import calendar_for_notification

log = logging.getLogger(__name__)

MAX_VALIDATION_TOKEN = 1024  # Graph's tokens are far shorter; anything longer is not Graph
MAX_BODY_BYTES = 256 * 1024
MAX_NOTIFICATIONS = 1000
RESUBSCRIBE_ON = frozenset({"reauthorizationRequired", "subscriptionRemoved"})
_NOSNIFF = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


class GraphNotification(BaseModel):
    """One changeNotification: only what we use is required, the rest is let through."""

    model_config = ConfigDict(extra="ignore")

    subscriptionId: str = Field(min_length=1, max_length=255)  # noqa: N815 - Graph's name
    clientState: str | None = Field(default=None, max_length=255)  # noqa: N815
    changeType: str | None = Field(default=None, max_length=64)  # noqa: N815
    lifecycleEvent: str | None = Field(default=None, max_length=64)  # noqa: N815


class GraphNotifications(BaseModel):
    """changeNotificationCollection: `value` is required and holds at least one item."""

    model_config = ConfigDict(extra="ignore")

    value: list[GraphNotification] = Field(min_length=1, max_length=MAX_NOTIFICATIONS)


class GoogleNotice(BaseModel):
    """The X-Goog-* headers of one Google push message."""

    channel_id: str = Field(min_length=1, max_length=64)
    token: str | None = Field(default=None, max_length=256)
    resource_state: Literal["sync", "exists", "not_exists"]


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def webhook_router(*, factory: sessionmaker[Session], vault: Vault,
                   enqueue_sync: Callable[[int], Any],
                   enqueue_renew: Callable[[int], Any] | None = None,
                   buckets: TokenBuckets | None = None) -> APIRouter:
    """Routes under /webhooks; `enqueue_sync(calendar_id)` sends the sync message,
    `enqueue_renew(calendar_id)` the one that opens a fresh channel (default: a sync)."""
    router = APIRouter(prefix="/webhooks")
    limiter = buckets or TokenBuckets()
    renew = enqueue_renew or enqueue_sync

    def accept(subscription_id: str, token: str | None,
               lifecycle_event: str | None = None) -> bool:
        with factory() as session:
            calendar_id = calendar_for_notification(session, vault=vault,
                                                    subscription_id=subscription_id, token=token)
        if calendar_id is None:
            return False
        if lifecycle_event in RESUBSCRIBE_ON:
            log.info("calendar %s: Graph lifecycle %s, subscribing again", calendar_id,
                     lifecycle_event)
            renew(calendar_id)
        else:  # a change, `missed`, or a lifecycle event we do not know: sync now
            enqueue_sync(calendar_id)
        return True

    def refuse(client: str, status: int, why: str) -> Response:
        limiter.spend(client)
        log.info("webhook call from %s refused (%d): %s", client, status, why)
        return Response(status_code=status, headers=_NOSNIFF)

    def throttled(client: str) -> Response | None:
        wait = limiter.retry_after(client)
        if not wait:
            return None
        return Response(status_code=429, headers={**_NOSNIFF, "Retry-After": str(wait)})

    @router.post("/google")
    async def google(request: Request) -> Response:
        client = _client(request)
        if (answer := throttled(client)) is not None:
            return answer
        headers = request.headers
        try:
            notice = GoogleNotice.model_validate({
                "channel_id": headers.get("x-goog-channel-id", ""),
                "token": headers.get("x-goog-channel-token"),
                "resource_state": headers.get("x-goog-resource-state", "")})
        except ValidationError:
            return refuse(client, 400, "malformed Google channel headers")
        if notice.resource_state == "sync":
            return Response(status_code=200, headers=_NOSNIFF)
        if not await run_in_threadpool(accept, notice.channel_id, notice.token):
            return refuse(client, 403, "unknown channel or wrong token")
        return Response(status_code=200, headers=_NOSNIFF)

    @router.post("/microsoft")
    @router.post("/microsoft/lifecycle")
    async def microsoft(request: Request) -> Response:
        client = _client(request)
        if (answer := throttled(client)) is not None:
            return answer
        validation = request.query_params.get("validationToken")
        if validation is not None:
            if not validation or len(validation) > MAX_VALIDATION_TOKEN:
                return refuse(client, 400, "validation token empty or too long")
            limiter.spend(client)
            return Response(content=validation, media_type="text/plain", headers=_NOSNIFF)
        body = await _read_capped(request)
        if body is None:
            return refuse(client, 413, "body too large")
        try:
            notifications = GraphNotifications.model_validate_json(body)
        except ValidationError:
            return refuse(client, 400, "not a Graph change notification")
        refused = 0
        for item in notifications.value:
            ok = await run_in_threadpool(accept, item.subscriptionId, item.clientState,
                                         item.lifecycleEvent)
            refused += not ok
        if refused:
            return refuse(client, 403, f"{refused} notification(s) with an unknown "
                                       "subscription or wrong clientState")
        return Response(status_code=202, headers=_NOSNIFF)

    return router


async def _read_capped(request: Request) -> bytes | None:
    """The body, or None once it passes MAX_BODY_BYTES (read no further)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
