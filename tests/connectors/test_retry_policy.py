"""The one retry policy of both connectors: Retry-After, the per-call cap, bounded attempts."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from connectors.base import ProviderCall
from connectors.errors import AuthRevoked, ConnectorError, RateLimited, Transient
from connectors.google import GoogleConnector, google_credentials
from connectors.microsoft import GraphConnector
from connectors.retry import MAX_SLEEP_PER_CALL, RetryPolicy, retry_after_seconds
from sandbox.google import GoogleSandbox
from sandbox.team import person

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Sleeps:
    """An injected sleep that records the waits and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class Script:
    """An attempt that raises the given errors in turn, then answers "done"."""

    def __init__(self, *errors: ConnectorError) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def policy(sleeps: Sleeps, **kwargs: float) -> RetryPolicy:
    return RetryPolicy(sleep=sleeps, **kwargs)  # type: ignore[arg-type]


def closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),  # IMF-fixdate
        ("Monday, 02-Mar-26 09:01:00 GMT", 60.0),  # obsolete RFC 850 form
        ("Mon Mar  2 09:00:30 2026", 30.0),  # obsolete asctime form, no zone: GMT
        (format_datetime(NOW - timedelta(minutes=5), usegmt=True), 0.0),  # already past
    ],
)
def test_retry_after_is_read_as_seconds_or_as_an_http_date(header: str, seconds: float) -> None:
    assert retry_after_seconds(header, now=NOW) == pytest.approx(seconds)


@pytest.mark.parametrize("header", [None, "", "soon", "Mon, 99 Foo 2026 25:00:00 GMT"])
def test_a_missing_or_unreadable_retry_after_gives_none(header: str | None) -> None:
    assert retry_after_seconds(header, now=NOW) is None


def test_a_short_retry_after_is_waited_and_the_call_then_answers() -> None:
    sleeps = Sleeps()
    attempt = Script(RateLimited("429", retry_after=2), RateLimited("429", retry_after=1.5))

    answer = policy(sleeps).call(attempt, provider="test", operation="op")

    assert answer == "done" and attempt.calls == 3
    assert sleeps.waits == [2.0, 1.5]


def test_a_retry_after_longer_than_the_cap_raises_rate_limited_without_sleeping() -> None:
    sleeps = Sleeps()
    attempt = Script(RateLimited("429", retry_after=60))

    with pytest.raises(RateLimited) as caught:
        policy(sleeps).call(attempt, provider="test", operation="op")

    assert caught.value.retry_after == 60.0
    assert sleeps.waits == [] and attempt.calls == 1


def test_waits_stop_where_their_sum_would_pass_the_cap() -> None:
    sleeps = Sleeps()
    attempt = Script(*(RateLimited("429", retry_after=3) for _ in range(4)))

    with pytest.raises(RateLimited) as caught:
        policy(sleeps).call(attempt, provider="test", operation="op")

    assert MAX_SLEEP_PER_CALL < 6.0  # so a second 3 s wait is over the default cap
    assert sleeps.waits == [3.0] and attempt.calls == 2
    assert caught.value.retry_after == 3.0


def test_a_failure_that_never_ends_is_tried_a_bounded_number_of_times() -> None:
    sleeps = Sleeps()
    cause = ConnectionRefusedError("refused")
    attempts = 0

    def attempt() -> str:
        nonlocal attempts
        attempts += 1
        raise Transient("network error") from cause

    with pytest.raises(Transient) as caught:
        policy(sleeps, attempts=3).call(attempt, provider="test", operation="op")

    assert attempts == 3 and len(sleeps.waits) == 2
    assert caught.value.__cause__ is cause  # translated once at the edge, cause kept
    assert sum(sleeps.waits) <= MAX_SLEEP_PER_CALL


def test_backoff_without_retry_after_grows_with_jitter_and_stays_capped() -> None:
    sleeps = Sleeps()
    attempt = Script(*(Transient("503") for _ in range(6)))

    with pytest.raises(Transient):
        policy(sleeps, attempts=6, backoff=1.0, max_backoff=2.5, budget=100.0).call(
            attempt, provider="test", operation="op")

    assert len(sleeps.waits) == 5
    floors = [1.0, 2.0, 2.5, 2.5, 2.5]  # exponential, truncated at max_backoff
    assert all(f <= w <= f + 1.0 for f, w in zip(floors, sleeps.waits, strict=True))


def test_other_errors_are_final_on_the_first_answer() -> None:
    sleeps = Sleeps()
    attempt = Script(AuthRevoked("invalid_grant"))

    with pytest.raises(AuthRevoked):
        policy(sleeps).call(attempt, provider="test", operation="op")

    assert attempt.calls == 1 and sleeps.waits == []


def test_graph_stops_retrying_a_refused_connection_after_its_attempts() -> None:
    sleeps, calls = Sleeps(), list[ProviderCall]()
    connector = GraphConnector(
        token_provider=lambda: "token", api_url=f"http://127.0.0.1:{closed_port()}/v1.0",
        observer=calls.append, owner_email="dana@acme.test",
        retry=RetryPolicy(attempts=3, sleep=sleeps),
    )
    try:
        with pytest.raises(Transient) as caught:
            connector.list_calendars()
    finally:
        connector.close()

    assert isinstance(caught.value.__cause__, Exception)
    assert [(c.operation, c.status) for c in calls] == [("calendars.list", 0)] * 3
    assert len(sleeps.waits) == 2 and sum(sleeps.waits) <= MAX_SLEEP_PER_CALL


def test_google_stops_retrying_a_refused_connection_after_its_attempts(
    google_sandbox: GoogleSandbox,
) -> None:
    sleeps, calls = Sleeps(), list[ProviderCall]()
    who = person("maya@acme.test")
    credentials = google_credentials(who.refresh_token, "sandbox-client", "sandbox-secret",
                                     google_sandbox.token_url)
    connector = GoogleConnector(
        credentials, api_url=f"http://127.0.0.1:{closed_port()}/calendar/v3/",
        observer=calls.append, retry=RetryPolicy(attempts=3, sleep=sleeps),
    )

    with pytest.raises(Transient) as caught:
        connector.list_calendars()

    assert isinstance(caught.value.__cause__, OSError)
    assert [(c.operation, c.status) for c in calls] == [("calendarList.list", 0)] * 3
    assert len(sleeps.waits) == 2 and sum(sleeps.waits) <= MAX_SLEEP_PER_CALL


def test_a_failing_call_observer_never_breaks_the_call() -> None:
    def broken(call: ProviderCall) -> None:
        raise RuntimeError("metrics are down")

    observer: Callable[[ProviderCall], None] = broken
    connector = GraphConnector(
        token_provider=lambda: "token", api_url=f"http://127.0.0.1:{closed_port()}/v1.0",
        observer=observer, owner_email="dana@acme.test",
        retry=RetryPolicy(attempts=1, sleep=Sleeps()),
    )
    try:
        with pytest.raises(Transient):  # the network error, not the observer's
            connector.list_calendars()
    finally:
        connector.close()
