"""`SerializedRefresh`: threads sharing one account's google-auth credentials refresh once."""

from __future__ import annotations

import threading
import time
from typing import Any

from google.auth import credentials as auth_credentials

from connectors.google.auth import SerializedRefresh

THREADS = 6


class SlowTokenEndpoint(auth_credentials.Credentials):
    """Credentials whose refresh takes a while, as a token endpoint round trip does."""

    def __init__(self) -> None:
        super().__init__()
        self.refreshes = 0

    def refresh(self, request: Any) -> None:
        self.refreshes += 1
        time.sleep(0.05)
        self.token = f"token-{self.refreshes}"


def _together(work: Any) -> list[dict[str, str]]:
    """Run `work(headers, barrier)` in `THREADS` threads released together."""
    barrier = threading.Barrier(THREADS)
    headers: list[dict[str, str]] = [{} for _ in range(THREADS)]

    def run(i: int) -> None:
        barrier.wait()
        work(headers[i], barrier)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return headers


def test_threads_that_start_at_once_share_one_refresh() -> None:
    inner = SlowTokenEndpoint()
    shared = SerializedRefresh(inner)

    headers = _together(lambda h, _: shared.before_request(None, "GET", "https://x/", h))

    assert inner.refreshes == 1
    assert {h["authorization"] for h in headers} == {"Bearer token-1"}


def test_threads_refused_with_the_same_token_ask_for_one_new_token() -> None:
    inner = SlowTokenEndpoint()
    shared = SerializedRefresh(inner)

    def refused_then_retried(h: dict[str, str], barrier: threading.Barrier) -> None:
        shared.before_request(None, "GET", "https://x/", {})  # sent token-1: answered 401
        barrier.wait()  # every thread holds the refused token
        shared.refresh(None)  # what AuthorizedHttp does on a 401
        shared.before_request(None, "GET", "https://x/", h)

    headers = _together(refused_then_retried)

    assert inner.refreshes == 2  # the first token, then one replacement for every thread
    assert {h["authorization"] for h in headers} == {"Bearer token-2"}
