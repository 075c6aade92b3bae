"""Webhook hygiene over HTTP against the served endpoints: garbage is a 400 (never a 500 or a
202), the Graph handshake echo is capped, plain text and nosniff, and a client that keeps
failing checks is slowed down before any lookup."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography.fernet import Fernet
from fastapi import FastAPI

from application.web.ratelimit import TokenBuckets
from application.web.webhooks import MAX_VALIDATION_TOKEN, webhook_router
from service.accounts.crypto import Vault
from service.accounts.models import Account
from service.calendars.models import Calendar
from service.db import make_engine, migrate, session_factory

TOKEN = "channel-token-we-issued"


@dataclass
class Served:
    url: str
    synced: list[int] = field(default_factory=list)
    calendars: dict[str, int] = field(default_factory=dict)  # provider -> calendar id


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The webhook router on a real uvicorn, with one subscribed calendar per provider."""
    engine = make_engine(f"sqlite:///{tmp_path / 'rapport.db'}")
    migrate(engine)
    factory = session_factory(engine)
    vault = Vault(Fernet.generate_key())
    calendars: dict[str, int] = {}
    with factory.begin() as session:
        for provider, sub in (("google", "chan-1"), ("microsoft", "sub-1")):
            account = Account(provider=provider, email=f"{provider}@example.com",
                              credentials_encrypted=vault.encrypt("{}"))
            session.add(account)
            session.flush()
            calendar = Calendar(account_id=account.id, provider_calendar_id="primary",
                                subscription_id=sub,
                                subscription_token_encrypted=vault.encrypt(TOKEN))
            session.add(calendar)
            session.flush()
            calendars[provider] = calendar.id
    synced: list[int] = []
    app = FastAPI()
    app.include_router(webhook_router(factory=factory, vault=vault, enqueue_sync=synced.append,
                                      buckets=TokenBuckets(capacity=5, per_second=0.001)))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield Served(f"http://127.0.0.1:{port}", synced, calendars)
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


GARBAGE = [
    b'{"value":[1]}',
    b'{"value":[{"subscriptionId":"sub-1","clientState":5}]}',
    b'{"value":[{"subscriptionId":"sub-1","clientState":["x"]}]}',
    b'{"value":[{"clientState":"x"}]}',
    b"{}",
    b'{"value":[]}',
    b'{"value":"sub-1"}',
    b"[]",
    b"not json",
    b"\xff\xfe",
]


@pytest.mark.parametrize("body", GARBAGE)
def test_a_graph_notification_that_is_not_one_is_a_400(served: Served, body: bytes) -> None:
    answer = httpx.post(f"{served.url}/webhooks/microsoft", content=body,
                        headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert served.synced == []


def test_a_real_graph_notification_is_accepted_and_a_wrong_client_state_refused(
        served: Served) -> None:
    good = {"value": [{"subscriptionId": "sub-1", "clientState": TOKEN, "changeType": "updated",
                       "tenantId": "t", "resource": "Users/x/Events/y",
                       "subscriptionExpirationDateTime": "2026-12-07T00:00:00Z"}]}
    assert httpx.post(f"{served.url}/webhooks/microsoft", json=good).status_code == 202
    assert served.synced == [served.calendars["microsoft"]]
    wrong = {"value": [{"subscriptionId": "sub-1", "clientState": "guessed"}]}
    assert httpx.post(f"{served.url}/webhooks/microsoft", json=wrong).status_code == 403
    assert served.synced == [served.calendars["microsoft"]]


def test_the_validation_echo_is_capped_plain_text_and_nosniff(served: Served) -> None:
    token = "Validation: <b>ok</b>"
    echoed = httpx.post(f"{served.url}/webhooks/microsoft", params={"validationToken": token})
    assert echoed.status_code == 200 and echoed.text == token
    assert echoed.headers["content-type"].startswith("text/plain")
    assert echoed.headers["x-content-type-options"] == "nosniff"
    at_cap = httpx.post(f"{served.url}/webhooks/microsoft",
                        params={"validationToken": "a" * MAX_VALIDATION_TOKEN})
    assert at_cap.status_code == 200 and len(at_cap.text) == MAX_VALIDATION_TOKEN
    huge = httpx.post(f"{served.url}/webhooks/microsoft",
                      params={"validationToken": "a" * 60_000})
    assert huge.status_code == 400 and huge.content == b""


def test_an_oversized_graph_body_is_refused_unread(served: Served) -> None:
    body = b'{"value":[{"subscriptionId":"' + b"x" * 400_000 + b'"}]}'
    answer = httpx.post(f"{served.url}/webhooks/microsoft", content=body)
    assert answer.status_code == 413


@pytest.mark.parametrize("headers", [
    {"X-Goog-Channel-ID": "chan-1", "X-Goog-Channel-Token": TOKEN,
     "X-Goog-Resource-State": "bogus"},
    {"X-Goog-Channel-Token": TOKEN, "X-Goog-Resource-State": "exists"},
    {"X-Goog-Channel-ID": "c" * 65, "X-Goog-Channel-Token": TOKEN,
     "X-Goog-Resource-State": "exists"},
    {"X-Goog-Channel-ID": "chan-1", "X-Goog-Channel-Token": "t" * 257,
     "X-Goog-Resource-State": "exists"},
])
def test_malformed_google_channel_headers_are_a_400(served: Served,
                                                    headers: dict[str, str]) -> None:
    answer = httpx.post(f"{served.url}/webhooks/google", headers=headers)
    assert answer.status_code == 400
    assert served.synced == []


def test_a_google_notification_with_our_token_triggers_a_sync(served: Served) -> None:
    headers = {"X-Goog-Channel-ID": "chan-1", "X-Goog-Channel-Token": TOKEN,
               "X-Goog-Resource-State": "exists"}
    answer = httpx.post(f"{served.url}/webhooks/google", headers=headers)
    assert answer.status_code == 200
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert served.synced == [served.calendars["google"]]


def test_a_client_that_keeps_failing_checks_is_slowed_down_and_others_are_not(
        served: Served) -> None:
    forged = {"X-Goog-Channel-ID": "chan-1", "X-Goog-Channel-Token": "guess",
              "X-Goog-Resource-State": "exists"}
    answers = [httpx.post(f"{served.url}/webhooks/google", headers=forged).status_code
               for _ in range(7)]
    assert answers[:5] == [403] * 5 and answers[5:] == [429, 429]
    limited = httpx.post(f"{served.url}/webhooks/google", headers=forged)
    assert int(limited.headers["retry-after"]) >= 1
    # Even our own token is not looked at from a client whose bucket is empty ...
    good = {**forged, "X-Goog-Channel-Token": TOKEN}
    assert httpx.post(f"{served.url}/webhooks/google", headers=good).status_code == 429
    assert served.synced == []


def test_the_bucket_refills_and_is_per_client() -> None:
    now = [0.0]
    buckets = TokenBuckets(capacity=2, per_second=0.5, clock=lambda: now[0])
    buckets.spend("a")
    buckets.spend("a")
    assert buckets.retry_after("a") == 2 and buckets.retry_after("b") == 0
    now[0] = 2.0
    assert buckets.retry_after("a") == 0
