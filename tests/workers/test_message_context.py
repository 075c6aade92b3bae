"""The per-message middleware on a real dramatiq Worker: a provider actor's calls are stored
however the message ends, and connector errors become dramatiq's own control flow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from cryptography.fernet import Fernet
from dramatiq import Worker
from dramatiq.middleware import Middleware
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.base import ProviderCall
from connectors.errors import BadRequest, RateLimited
from service.accounts.models import Account
from service.accounts.pace import ActingAccount
from service.calendars.calls import record_call
from service.calendars.models import ProviderCallLog
from service.calendars.queries import active_account
from service.db import make_engine, migrate, read_session, session_factory
from service.settings import Settings
from workers import context
from workers.broker import create_broker
from workers.provider import Refused, provider_actor
from workers.runtime import Runtime, install


class _NoConnectors:
    """The tiny actors report their calls themselves; they build no connector."""

    def for_calendar(self, calendar_id: int) -> Any:
        raise AssertionError("not used")

    def for_account(self, account_id: int) -> Any:
        raise AssertionError("not used")


class _Outcomes(Middleware):
    """Remembers how each attempt ended and the delay of each enqueue, as dramatiq saw them."""

    def __init__(self) -> None:
        self.exceptions: list[BaseException | None] = []
        self.delays: list[int | None] = []

    def after_enqueue(self, broker: dramatiq.Broker, message: Any, delay: int | None) -> None:
        self.delays.append(delay)

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *,
                              result: Any = None, exception: BaseException | None = None
                              ) -> None:
        self.exceptions.append(exception)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(data_dir=tmp_path, secret_key=SecretStr(Fernet.generate_key().decode()))
    engine = make_engine(f"sqlite:///{tmp_path / 'rapport.db'}")
    migrate(engine)
    yield install(Runtime(settings=settings, engine=engine, factory=session_factory(engine),
                          connectors=_NoConnectors()))
    engine.dispose()


@pytest.fixture
def account_id(runtime: Runtime) -> int:
    with runtime.factory.begin() as session:
        account = Account(provider="google", email="maya@acme.test",
                          credentials_encrypted=b"unused")
        session.add(account)
        session.flush()
        return account.id


def _the_account(session: Session, *, account_id: int) -> ActingAccount | None:
    """`account_of` of the tiny actors: the account named by the message."""
    return active_account(session, account_id=account_id)


def _call(status: int) -> ProviderCall:
    return ProviderCall(provider="google", operation="events.list", status=status,
                        duration_ms=3.0)


def _stored(runtime: Runtime) -> list[tuple[int | None, int]]:
    with runtime.factory() as session:
        return [(row.account_id, row.status) for row in session.scalars(
            select(ProviderCallLog).order_by(ProviderCallLog.id))]


def _run(broker: dramatiq.Broker) -> None:
    worker = Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        broker.join("tiny", fail_fast=False)  # type: ignore[call-arg]  # a StubBroker
        worker.join()
    finally:
        worker.stop()


def test_calls_of_a_failing_provider_actor_are_stored_and_the_refusal_is_not_retried(
        runtime: Runtime, account_id: int) -> None:
    broker = create_broker(runtime.settings)
    context.install(broker)
    outcomes = _Outcomes()
    broker.add_middleware(outcomes)
    attempts: list[int] = []

    @provider_actor(broker=broker, queue_name="tiny", account_of=_the_account)
    def refused(account_id: int) -> None:
        attempts.append(account_id)
        record_call(_call(400))
        raise BadRequest("the provider says no")

    refused.send(account_id)
    _run(broker)

    assert attempts == [account_id]
    assert _stored(runtime) == [(account_id, 400)]
    [exception] = outcomes.exceptions
    assert isinstance(exception, Refused)
    assert isinstance(exception.__cause__, BadRequest)


def test_a_throttled_provider_actor_is_retried_after_the_retry_after_delay(
        runtime: Runtime, account_id: int) -> None:
    broker = create_broker(runtime.settings)
    context.install(broker)
    outcomes = _Outcomes()
    broker.add_middleware(outcomes)
    attempts: list[int] = []

    @provider_actor(broker=broker, queue_name="tiny", account_of=_the_account)
    def throttled_once(account_id: int) -> None:
        attempts.append(account_id)
        if len(attempts) == 1:
            record_call(_call(429))
            raise RateLimited("slow down", retry_after=1.5)
        record_call(_call(200))

    throttled_once.send(account_id)
    _run(broker)

    assert attempts == [account_id, account_id]
    first, second = outcomes.exceptions
    assert isinstance(first, dramatiq.Retry) and first.delay == 1500
    assert second is None
    # the send, the retry after Retry-After, and the worker moving it back once due
    assert outcomes.delays == [None, 1500, None]
    assert _stored(runtime) == [(account_id, 429), (account_id, 200)]


def test_a_provider_actor_called_directly_stores_its_calls_too(
        runtime: Runtime, account_id: int) -> None:
    broker = create_broker(runtime.settings)
    context.install(broker)

    @provider_actor(broker=broker, queue_name="tiny", account_of=_the_account)
    def direct(account_id: int) -> None:
        assert context.message_context().account_id == account_id
        record_call(_call(200))

    direct(account_id)

    assert _stored(runtime) == [(account_id, 200)]
    with pytest.raises(RuntimeError):
        context.message_context()  # closed again after the call


def test_recorded_calls_ride_along_with_the_actors_own_commit(
        runtime: Runtime, account_id: int) -> None:
    """A message's calls go into the next transaction it commits, not one of their own;
    a transaction that rolls back gives them back, and the message's end stores them."""
    broker = create_broker(runtime.settings)
    context.install(broker)
    seen: dict[str, list[tuple[int | None, int]]] = {}

    @provider_actor(broker=broker, queue_name="tiny", account_of=_the_account)
    def writes(account_id: int) -> None:
        assert context.message_context().account_id == account_id
        record_call(_call(200))
        with read_session(runtime.factory) as session:  # a reader takes none (SQLite)
            session.scalar(select(Account.id))
            session.commit()
        with runtime.factory.begin() as session:  # the actor's own write
            session.get(Account, account_id).status_reason = "kept"  # type: ignore[union-attr]
        seen["after commit"] = _stored(runtime)
        record_call(_call(201))
        with pytest.raises(LookupError), runtime.factory.begin() as session:
            session.get(Account, account_id).status_reason = "lost"  # type: ignore[union-attr]
            raise LookupError("rolled back")
        seen["after rollback"] = _stored(runtime)

    writes(account_id)

    assert seen["after commit"] == [(account_id, 200)]
    assert seen["after rollback"] == [(account_id, 200)]
    assert _stored(runtime) == [(account_id, 200), (account_id, 201)]
    with runtime.factory() as session:
        assert session.get(Account, account_id).status_reason == "kept"  # type: ignore[union-attr]
