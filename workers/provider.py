"""What every actor that talks to a provider shares: its context and its errors.

`provider_actor` declares such an actor once for all of them: the `account_of` option that
`workers.context.MessageContexts` opens the message's context with, and connector errors
mapped onto dramatiq's own control flow, the way dramatiq documents it: `Retry(delay=...)`
for "try again later", `throws=` for "failed, do not retry". Before any call the account's
pace is respected (`workers.pace.account_turn`: its "not before", its calls in flight).
Rate limited → the account waits (`accounts.not_before`, for every message of it) and this
message goes back with `Retry` after the provider's Retry-After; auth revoked → the account
is flagged and the message is done (no retry storm); a refusal or a malformed event → done,
not retried; anything else transient → dramatiq's backoff.
`workers.observability.FailureLog` logs each failure in one line, so nothing is logged here
but the throttling.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec

import dramatiq
from dramatiq.brokers.stub import StubBroker

from connectors.errors import (
    AuthRevoked,
    BadRequest,
    Forbidden,
    MalformedEvent,
    NotFound,
    RateLimited,
)
from service.accounts.pace import hold_account
from service.accounts.service import mark_needs_reconsent
from workers import context
from workers.context import AccountOf, message_context
from workers.pace import account_turn
from workers.runtime import current

log = logging.getLogger(__name__)

P = ParamSpec("P")


class AccountUnavailable(Exception):
    """The account cannot be used now (needs re-consent); the message is dropped."""


class Refused(Exception):
    """The provider refused for good (403, 404, 400): retrying would not help."""


class BackedOff(Exception):
    """The work failed and its own backoff in the database says when it is tried again
    (a failing calendar's `retry_not_before`): dramatiq's retries would only add calls."""


NOT_RETRIED: tuple[type[Exception], ...] = (AccountUnavailable, Refused, BackedOff)

DEFAULT_RETRY_AFTER = 30.0  # seconds, when a throttled provider does not say


@contextmanager
def provider_errors() -> Iterator[None]:
    """Map connector errors raised inside the block onto dramatiq control flow."""
    try:
        yield
    except RateLimited as err:
        seconds = max(err.retry_after or DEFAULT_RETRY_AFTER, 1.0)
        delay_ms = int(seconds * 1000)
        account_id = message_context().account_id
        if account_id is not None:
            with current().factory.begin() as session:
                hold_account(session, account_id=account_id, seconds=seconds, reason=str(err))
        log.info("account %s throttled; no call for it for %d ms", account_id, delay_ms)
        raise dramatiq.Retry(str(err), delay=delay_ms) from err
    except AuthRevoked as err:
        account_id = message_context().account_id
        if account_id is not None:
            with current().factory.begin() as session:
                mark_needs_reconsent(session, account_id=account_id, reason=str(err))
        raise AccountUnavailable(str(err)) from err
    except (Forbidden, NotFound, BadRequest) as err:
        raise Refused(f"account {message_context().account_id}: provider refused: {err}") \
            from err
    except MalformedEvent as err:  # the same broken event again on a retry: abandon the write
        raise Refused(f"event {err.event_id} is malformed; skipped: {err}") from err


def provider_actor(*, broker: dramatiq.Broker, queue_name: str, account_of: AccountOf,
                   paced: bool = True, max_retries: int | None = None
                   ) -> Callable[[Callable[P, None]], dramatiq.Actor[P, None]]:
    """Declare an actor that acts for one account at a provider (`account_of` may answer
    None: a company grant's directory acts for no one account); `max_retries` bounds its
    retries below the worker's default.

    With `paced` (the default) the actor runs only when its account may call the provider
    (`workers.pace.account_turn`); an actor whose work must not wait for the provider (an
    alert, which goes out without free/busy) checks the pace itself.
    dramatiq runs middleware only around delivered messages; an actor called directly, as a
    function (`check_occurrence(7)`), opens the same context itself.
    """
    options: dict[str, Any] = {} if max_retries is None else {"max_retries": max_retries}

    def declare(fn: Callable[P, None]) -> dramatiq.Actor[P, None]:
        def paced_call(*args: P.args, **kwargs: P.kwargs) -> None:
            with provider_errors():
                if not paced:
                    return fn(*args, **kwargs)
                with account_turn(message_context().account):
                    return fn(*args, **kwargs)

        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> None:
            if context.in_message():
                return paced_call(*args, **kwargs)
            arguments = context.arguments_of(fn, args, kwargs)
            with context.MessageContext(account_of, arguments, what=f"{fn.__name__}{args!r}"):
                return paced_call(*args, **kwargs)

        return dramatiq.actor(broker=broker, queue_name=queue_name, throws=NOT_RETRIED,
                              account_of=account_of, **options)(run)

    return declare


def placeholder_broker() -> dramatiq.Broker:
    """The broker actors are declared on until `workers.broker.install_broker` binds them
    to the real one (it knows the `account_of` option)."""
    broker = StubBroker()
    context.install(broker)
    return broker

