"""Webhook endpoints for Google channels and Graph subscriptions: authenticate, enqueue a sync.

Google: https://developers.google.com/calendar/api/guides/push (X-Goog-Channel-ID / -Token /
-Resource-State headers; the first message has state "sync"). Graph:
https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks (answer the
validationToken in plain text within 10 s; notifications carry clientState; reply 202).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Header, Request, Response
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from service.accounts.crypto import Vault
from service.calendars.push import calendar_for_notification

log = logging.getLogger(__name__)


def webhook_router(*, factory: sessionmaker[Session], vault: Vault,
                   enqueue_sync: Callable[[int], Any]) -> APIRouter:
    """Routes under /webhooks; `enqueue_sync(calendar_id)` sends the sync message."""
    router = APIRouter(prefix="/webhooks")

    def accept(subscription_id: str, token: str | None) -> bool:
        with factory() as session:
            calendar_id = calendar_for_notification(session, vault=vault,
                                                    subscription_id=subscription_id, token=token)
        if calendar_id is None:
            return False
        enqueue_sync(calendar_id)
        return True

    @router.post("/google")
    def google(x_goog_channel_id: str = Header(default=""),
               x_goog_channel_token: str | None = Header(default=None),
               x_goog_resource_state: str = Header(default="")) -> Response:
        if x_goog_resource_state == "sync":
            return Response(status_code=200)
        ok = accept(x_goog_channel_id, x_goog_channel_token)
        return Response(status_code=200 if ok else 403)

    @router.post("/microsoft")
    async def microsoft(request: Request, validationToken: str | None = None) -> Response:  # noqa: N803
        if validationToken is not None:
            return Response(content=validationToken, media_type="text/plain")
        try:
            body = await request.json()
        except ValueError:
            return Response(status_code=400)
        refused = 0
        for item in body.get("value", []) if isinstance(body, dict) else []:
            ok = await run_in_threadpool(accept, str(item.get("subscriptionId", "")),
                                         item.get("clientState"))
            refused += not ok
        return Response(status_code=403 if refused else 202)

    return router
