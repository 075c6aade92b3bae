"""What the workers tell operators: one log line per expected failure, metrics, broker health.

dramatiq logs every failed message with a full traceback, and `Retries` adds a line per
retry. A provider that is down is not a bug, so for expected failures (connector errors and
our own `AccountUnavailable` / `Refused`) `FailureLog` writes one line naming the calendar
(id and address) and the reason, and `QuietExpectedFailures` drops dramatiq's own lines for
that message. Anything else keeps its traceback: that is a bug to look at.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name, q_name
from dramatiq.middleware import Middleware, Retries
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from connectors.errors import ConnectorError
from service.accounts.models import Account
from service.agenda.models import AgendaRecord
from service.agenda.planner import target_copy
from service.calendars.models import Calendar
from service.db import read_session
from service.observability import SYNCS
from workers.provider import AccountUnavailable, BackedOff, Refused
from workers.runtime import current

log = logging.getLogger(__name__)

EXPECTED: tuple[type[BaseException], ...] = (ConnectorError, AccountUnavailable, Refused,
                                            BackedOff)

# dramatiq's loggers whose lines about an expected failure repeat ours
WORKER_LOGGER = "dramatiq.worker.WorkerThread"
RETRIES_LOGGER = "dramatiq.middleware.retries.Retries"
_EXPECTED_EXCEPTION_LINE = "Failed to process message %s with expected exception %s."
_RETRIES_LINES = ("Retrying message %r in %d milliseconds.", "Aborting message %r.",
                  "Retries exceeded for message %r.")
REASON_LIMIT = 300  # characters of the reason kept in the line


def is_expected(error: BaseException) -> bool:
    """A failure of the outside world (provider down, grant revoked), not a bug of ours."""
    return isinstance(error, EXPECTED)


class _Handled:
    """Ids of messages whose failure `FailureLog` already reported (bounded, thread-safe)."""

    def __init__(self, limit: int = 10_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._limit = limit

    def add(self, message_id: str) -> None:
        with self._lock:
            self._ids[message_id] = None
            while len(self._ids) > self._limit:
                self._ids.popitem(last=False)

    def take(self, message_id: object) -> bool:
        with self._lock:
            return self._ids.pop(str(message_id), 0) is None


class QuietExpectedFailures(logging.Filter):
    """Drops dramatiq's traceback and retry lines for failures `FailureLog` reports itself."""

    def __init__(self, handled: _Handled) -> None:
        super().__init__()
        self.handled = handled

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            return not is_expected(record.exc_info[1])
        if record.msg == _EXPECTED_EXCEPTION_LINE:
            return False  # an actor's `throws`: ours are all expected and logged by FailureLog
        if record.msg in _RETRIES_LINES and isinstance(record.args, tuple) and record.args:
            return not self.handled.take(record.args[0])
        return True


_HANDLED = _Handled()
_QUIET = QuietExpectedFailures(_HANDLED)

Describe = Callable[[Session, int], str]


def _calendar(calendar: Calendar | None, calendar_id: int) -> str:
    if calendar is None:
        return f"calendar {calendar_id}"
    return f"calendar {calendar.id} ({calendar.owner_email or calendar.provider_calendar_id})"


def _describe_calendar(session: Session, calendar_id: int) -> str:
    return _calendar(session.get(Calendar, calendar_id), calendar_id)


def _describe_account(session: Session, account_id: int) -> str:
    account = session.get(Account, account_id)
    return f"account {account_id}" + (f" ({account.email})" if account else "")


def _describe_agenda(session: Session, agenda_id: int) -> str:
    record = session.get(AgendaRecord, agenda_id)
    copy = target_copy(session, record.occurrence_id) if record else None
    if copy is None:
        return f"agenda {agenda_id}"
    return f"agenda {agenda_id} in {_describe_calendar(session, copy.calendar_id)}"


DESCRIBE: dict[str, Describe] = {
    "sync_calendar": _describe_calendar,
    "renew_channel": _describe_calendar,
    "stop_channel": _describe_calendar,
    "sync_account": _describe_account,
    "write_agenda": _describe_agenda,
    "check_occurrence": lambda _session, occurrence_id: f"occurrence {occurrence_id}",
}


def describe(actor_name: str, args: tuple[Any, ...]) -> str:
    """What a message is about, for people: the calendar with its address, the account..."""
    if not args or not isinstance(args[0], int):
        return actor_name
    describer = DESCRIBE.get(actor_name)
    if describer is None:
        return f"{actor_name} {args[0]}"
    try:
        with read_session(current().factory) as session:
            return describer(session, args[0])
    except (SQLAlchemyError, RuntimeError) as err:  # the database is down too: ids only
        log.debug("cannot describe %s%r: %s", actor_name, args, err)
        return f"{actor_name} {args[0]}"


def reason_of(error: BaseException) -> str:
    """The connector error behind ours (its class and message), on one line."""
    wrapped = isinstance(error, (AccountUnavailable, Refused, BackedOff))
    cause = error.__cause__ if wrapped else None
    shown = cause if isinstance(cause, ConnectorError) else error
    text = " ".join(str(shown).split()) or "no details"
    if len(text) > REASON_LIMIT:
        text = text[: REASON_LIMIT - 1] + "…"
    return f"{type(shown).__name__}: {text}"


class FailureLog(Middleware):
    """One line per expected failure, with what it was about and what happens next; counts
    syncs by result."""

    handled = _HANDLED

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *,
                              result: Any = None, exception: BaseException | None = None
                              ) -> None:
        if message.actor_name == "sync_calendar":
            SYNCS.labels(_result(exception)).inc()
        if exception is None:
            return
        if isinstance(exception, dramatiq.Retry):  # throttled: provider_errors said so
            self.handled.add(message.message_id)
            return
        if not is_expected(exception):
            return
        self.handled.add(message.message_id)
        log.warning("%s for %s failed, %s: %s", message.actor_name,
                    describe(message.actor_name, tuple(message.args)),
                    _next_step(broker, message, exception), reason_of(exception))


def _result(exception: BaseException | None) -> str:
    """The `result` label of `rapport_syncs_total`."""
    if exception is None:
        return "ok"
    if isinstance(exception, dramatiq.Retry):
        return "throttled"
    return "failed" if is_expected(exception) else "error"


def _next_step(broker: dramatiq.Broker, message: Any, exception: BaseException) -> str:
    """What dramatiq's `Retries` (which runs after us) is about to do with the message."""
    actor = broker.get_actor(message.actor_name)
    throws = message.options.get("throws") or actor.options.get("throws")
    if isinstance(exception, BackedOff):
        return "tried again after its backoff"
    if throws and isinstance(exception, throws):
        return "not retried"
    retries = next((m for m in broker.middleware if isinstance(m, Retries)), None)
    if retries is None:
        return "not retried"
    done = int(message.options.get("retries", 0))
    limit = message.options.get("max_retries", actor.options.get("max_retries",
                                                                 retries.max_retries))
    if limit is not None and done >= limit:
        return f"giving up after {done + 1} attempts"
    return f"will retry (attempt {done + 1} of {'∞' if limit is None else limit + 1})"


def install(broker: dramatiq.Broker) -> None:
    """Add `FailureLog` to the broker and its filter to dramatiq's loggers, once each."""
    for name in (WORKER_LOGGER, RETRIES_LOGGER):
        logger = logging.getLogger(name)
        if _QUIET not in logger.filters:
            logger.addFilter(_QUIET)
    if not any(isinstance(m, FailureLog) for m in broker.middleware):
        broker.add_middleware(FailureLog())


# -- broker health and queue depth (for /healthz and /metrics) ---------------------------


def broker_reachable(broker: dramatiq.Broker) -> bool:
    """Whether the broker answers now: Redis PING, a RabbitMQ connection; in-process always."""
    if isinstance(broker, StubBroker):
        return True
    try:
        if _is(broker, "dramatiq.brokers.redis", "RedisBroker"):
            return bool(broker.client.ping())  # type: ignore[attr-defined]
        if _is(broker, "dramatiq.brokers.rabbitmq", "RabbitmqBroker"):
            pika = sys.modules["pika"]
            pika.BlockingConnection(broker.parameters).close()  # type: ignore[attr-defined]
            return True
    except Exception as err:  # every client error means "not reachable", said in one line
        log.warning("broker unreachable: %s: %s", type(err).__name__, err)
        return False
    return True


def queue_depths(broker: dramatiq.Broker) -> Mapping[str, int]:
    """Messages waiting per declared queue (delayed ones included), read from the broker."""
    queues = sorted({q_name(q) for q in broker.get_declared_queues()})  # delay queues folded in
    if isinstance(broker, StubBroker):
        return {q: sum(broker.queues[name].qsize() for name in (q, dq_name(q))
                       if name in broker.queues) for q in queues}
    if _is(broker, "dramatiq.brokers.redis", "RedisBroker"):
        client, namespace = broker.client, broker.namespace  # type: ignore[attr-defined]
        return {q: int(client.hlen(f"{namespace}:{q}.msgs"))
                + int(client.hlen(f"{namespace}:{dq_name(q)}.msgs")) for q in queues}
    if _is(broker, "dramatiq.brokers.rabbitmq", "RabbitmqBroker"):
        counts = {q: broker.get_queue_message_counts(q)  # type: ignore[attr-defined]
                  for q in queues}
        return {q: ready + delayed for q, (ready, delayed, _dead) in counts.items()}
    return {}


def _is(broker: dramatiq.Broker, module: str, name: str) -> bool:
    """An instance of an optional broker class (its extra may not be installed)."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(broker, getattr(loaded, name))
