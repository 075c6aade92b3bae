"""Push notifications: channels open where a public URL exists, notifications trigger a sync,
forged ones are refused."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select

from application.web.webhooks import webhook_router
from service.accounts.crypto import Vault
from service.calendars.models import Calendar
from service.pairs.models import Occurrence, OccurrenceStatus
from workers import actors

from .conftest import Harness, ProviderCase


@pytest.fixture
def public_url(harness: Harness) -> Iterator[str]:
    """Our webhook endpoints served on a free local port, as they would be in production."""
    app = FastAPI()
    app.include_router(webhook_router(factory=harness.runtime.factory,
                                      vault=Vault.from_settings(harness.settings),
                                      enqueue_sync=actors.sync_calendar.send))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    harness.runtime.settings = harness.settings.model_copy(update={"public_url": url})
    yield url
    server.should_exit = True
    thread.join(timeout=5)


def _notify(harness: Harness, case: ProviderCase) -> None:
    if case.provider == "google":
        harness.google.notify(case.manager)
    else:
        harness.graph.notify(case.manager)


def test_a_notification_triggers_the_sync_that_sees_the_change(
        harness: Harness, case: ProviderCase, public_url: str) -> None:
    harness.connect(case.manager)
    harness.sync()
    actors.reconcile.send()
    harness.run()
    with harness.session() as session:
        calendars = session.scalars(select(Calendar)).all()
        assert calendars and all(c.subscription_id for c in calendars)
    sandbox = harness.sandbox(case.provider)
    start = next(s for s in sandbox.occurrence_starts(case.series_key,
                                                      until=harness.clock() + timedelta(days=30))
                 if s > harness.clock() + timedelta(days=8))
    sandbox.cancel_occurrence(case.series_key, start)
    _notify(harness, case)
    harness.run()
    with harness.session() as session:
        status = session.scalar(select(Occurrence.status).where(Occurrence.original_start == start))
    assert status == OccurrenceStatus.CANCELLED


def test_a_notification_with_a_wrong_token_is_refused_and_syncs_nothing(
        harness: Harness, public_url: str) -> None:
    harness.connect("maya@acme.test")
    harness.sync()
    actors.reconcile.send()
    harness.run()
    with harness.session() as session:
        channel = session.scalars(select(Calendar.subscription_id)).first()
    before = harness.provider_calls()
    forged = httpx.post(f"{public_url}/webhooks/google", headers={
        "X-Goog-Channel-ID": str(channel), "X-Goog-Channel-Token": "guessed",
        "X-Goog-Resource-State": "exists"})
    graph = httpx.post(f"{public_url}/webhooks/microsoft", json={"value": [
        {"subscriptionId": "nope", "clientState": "guessed"}]})
    harness.run()
    assert (forged.status_code, graph.status_code) == (403, 403)
    assert harness.provider_calls() == before


def test_graph_validation_handshake_echoes_the_token(harness: Harness, public_url: str) -> None:
    reply = httpx.post(f"{public_url}/webhooks/microsoft", params={"validationToken": "abc 123"})
    assert reply.status_code == 200 and reply.text == "abc 123"
    assert reply.headers["content-type"].startswith("text/plain")
