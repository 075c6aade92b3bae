"""The one retry policy of every connector: bounded, jittered, and capped per call.

Both providers ask the same of a client (https://learn.microsoft.com/en-us/graph/throttling,
https://developers.google.com/calendar/api/guides/errors#implement_exponential_backoff):
wait the ``Retry-After`` they send, else back off exponentially. A connector runs inside a
worker thread, so it may sleep only a few seconds in all (`RetryPolicy.budget`) per call:
when the provider asks for longer, the `RateLimited` error (with its ``retry_after``) is raised
at once and the worker re-queues the message with that delay (dramatiq ``Retry(delay)``)
instead of holding a thread. Network errors and 5xx (`Transient`) are retried a bounded number
of times, never forever. Only `RateLimited` and `Transient` are retried; every other
`ConnectorError` is final on the first answer.

The libraries underneath add no long sleeps of their own: googleapiclient retries only when
asked (`execute(num_retries=0)`, its default); google-auth retries a token refresh at most
three times with a 1 s, then 2 s backoff (`google.auth._exponential_backoff`); MSAL does not
sleep on 429/5xx, its `ThrottledHttpClient` answers again from the throttled response until
its Retry-After has passed, which `MsalTokenProvider` raises as an error; httpx retries
nothing by default.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)
from tenacity.stop import stop_base

from connectors.errors import RateLimited, Transient

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_SLEEP_PER_CALL = 5.0  # seconds a worker thread may wait in one provider call, in all


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` value as seconds from now, None when absent or unreadable.

    RFC 9110 §10.2.3: ``Retry-After = HTTP-date / delay-seconds``. A decimal number is taken
    too (some servers send ``0.5``); a date in the past, or a negative number, means now.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT; the obsolete forms may carry no zone
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class _OverBudget(stop_base):
    """Stop when the next wait would take the call's total sleep past `budget` seconds."""

    def __init__(self, budget: float) -> None:
        self.budget = budget

    def __call__(self, retry_state: RetryCallState) -> bool:
        return retry_state.idle_for + retry_state.upcoming_sleep > self.budget


@dataclass(frozen=True)
class RetryPolicy:
    """How one provider call is retried: `attempts` tries at most, `budget` seconds asleep."""

    attempts: int = 4  # total tries, the first included
    budget: float = MAX_SLEEP_PER_CALL  # total seconds slept per call; a longer wait is raised
    backoff: float = 0.5  # first backoff (no Retry-After), doubled each try, plus jitter
    max_backoff: float = 4.0
    sleep: Callable[[float], None] = time.sleep

    def call(self, attempt: Callable[[], T], *, provider: str, operation: str) -> T:
        """Run `attempt` (one HTTP exchange that raises `ConnectorError`s) under this policy.

        The error of the last attempt is raised as it is, its cause kept.
        """
        # truncated exponential backoff plus up to one `backoff` of random jitter
        backoff = wait_exponential(multiplier=self.backoff, max=self.max_backoff) + wait_random(
            0, self.backoff
        )

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, RateLimited) and error.retry_after is not None:
                return error.retry_after  # the provider's own ask, not second-guessed
            return float(backoff(state))

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.info("%s %s: %s; retry %d in %.2fs", provider, operation, error,
                     state.attempt_number, state.upcoming_sleep)

        retrying = Retrying(
            retry=retry_if_exception_type((RateLimited, Transient)),
            stop=stop_after_attempt(max(1, self.attempts)) | _OverBudget(self.budget),
            wait=wait,
            sleep=lambda seconds: self.sleep(float(seconds)),
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(attempt)
