"""One message's context: the account a provider actor acts for and the recorder of its calls.

dramatiq wraps each message in middleware (its own `CurrentMessage`, `TimeLimit` and
`Retries` work this way), so the per-message plumbing lives here too: `MessageContexts`
opens a `MessageContext` before the actor runs and stores the provider calls it recorded
after it, whether it succeeded, failed or will be retried, so every call a provider answered
is counted. An actor names how to find its account with the `account_of` actor option, a
service function called with the actor's own arguments by name (`writing_account(session,
agenda_id=...)`); the actor reads the context with `message_context()`.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware
from sqlalchemy.exc import SQLAlchemyError

from service.accounts.pace import ActingAccount
from service.calendars.calls import CallRecorder, start_recording, stop_recording
from service.db import read_session
from workers.runtime import current

log = logging.getLogger(__name__)

AccountOf = Callable[..., ActingAccount | None]
"""`(session, **the actor's arguments) -> account`, None when there is none to act for; read
with its pace columns, so the pace needs no second read."""

ACCOUNT_OF = "account_of"


class MessageContext:
    """The account of one message and the recorder its provider calls go to, current in
    this thread between `open` and `close`.

    The account is looked up when the actor first asks for it, inside the actor, so a
    database that is down fails the message like any other error of the actor would.
    """

    def __init__(self, account_of: AccountOf, arguments: dict[str, Any], *,
                 what: str) -> None:
        self._account_of = account_of
        self._arguments = arguments
        self._resolved = False
        self._account: ActingAccount | None = None
        self._tokens: tuple[Token[MessageContext | None], Token[CallRecorder | None]] | None \
            = None
        self.what = what
        self.recorder = CallRecorder(None)

    @property
    def account(self) -> ActingAccount | None:
        """What `account_of` answered for this message, looked up on first use."""
        if not self._resolved:
            with read_session(current().factory) as session:
                self._account = self._account_of(session, **self._arguments)
            self._resolved = True
            self.recorder.account_id = self.account_id
        return self._account

    @property
    def account_id(self) -> int | None:
        """The account this message acts for (its grant, its recorded calls)."""
        account = self.account
        return account.id if account is not None else None

    def open(self) -> MessageContext:
        """Make this the current context; connectors' calls are recorded into it."""
        self._tokens = (_CURRENT.set(self), start_recording(self.recorder))
        return self

    def close(self) -> None:
        """Stop being current and store the calls not stored yet."""
        if self._tokens is None:
            return
        current_token, recording_token = self._tokens
        self._tokens = None
        stop_recording(recording_token)
        _CURRENT.reset(current_token)
        self._store_calls()

    def __enter__(self) -> MessageContext:
        return self.open()

    def __exit__(self, *_exc_info: object) -> None:
        self.close()

    def _store_calls(self) -> None:
        """If the database cannot take the calls, say so in one line and go on: the
        message's own outcome stands."""
        if not self.recorder.pending:
            return
        try:
            self.recorder.account_id = self.account_id
            with current().factory.begin() as session:
                self.recorder.flush_into(session)
        except SQLAlchemyError as err:
            log.warning("%s: %d provider calls not stored: %s", self.what,
                        len(self.recorder.pending), " ".join(str(err).split())[:200])


_CURRENT: ContextVar[MessageContext | None] = ContextVar("rapport_message_context",
                                                         default=None)


def message_context() -> MessageContext:
    """The context of the provider actor running in this thread."""
    context = _CURRENT.get()
    if context is None:
        raise RuntimeError("no message context: provider actors are declared with "
                           "workers.provider.provider_actor")
    return context


def in_message() -> bool:
    """Whether a message context is open in this thread."""
    return _CURRENT.get() is not None


def arguments_of(fn: Callable[..., Any], args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> dict[str, Any]:
    """The actor's arguments by name, as `account_of` takes them."""
    return dict(inspect.signature(fn).bind(*args, **kwargs).arguments)


class MessageContexts(Middleware):
    """Opens a `MessageContext` for each message of an actor with `account_of`, and closes
    it after the message, however it ended (done, failed, to be retried, skipped)."""

    @property
    def actor_options(self) -> set[str]:
        return {ACCOUNT_OF}

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        actor = broker.get_actor(message.actor_name)
        account_of: AccountOf | None = actor.options.get(ACCOUNT_OF)
        if account_of is not None:
            MessageContext(account_of, arguments_of(actor.fn, message.args, message.kwargs),
                           what=f"{message.actor_name}{tuple(message.args)!r}").open()

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *,
                              result: Any = None, exception: BaseException | None = None
                              ) -> None:
        _close_current()

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        _close_current()


def _close_current() -> None:
    context = _CURRENT.get()
    if context is not None:
        context.close()


def install(broker: dramatiq.Broker) -> None:
    """Add `MessageContexts` to the broker, once."""
    if not any(isinstance(m, MessageContexts) for m in broker.middleware):
        broker.add_middleware(MessageContexts())
