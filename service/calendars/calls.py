"""Counting provider calls: connectors report them, the service stores them.

A connector keeps the observer it was built with for as long as it is cached (one worker
thread reuses it across messages), so it is given `record_call`, which reports to whichever
`CallRecorder` is recording in this thread at the time of the call (a `ContextVar`, like
dramatiq's own `CurrentMessage`). Calls made while nothing records are not stored.

The calls recorded so far ride along with the next transaction this thread commits (a
sync's page, an agenda write's record): a message then spends no transaction of its own on
them. A transaction that rolls back gives them back to the recorder, and what no commit
carried is stored when the message ends (`workers.context`).
"""

from __future__ import annotations

import logging
from contextvars import ContextVar, Token
from typing import Any

from sqlalchemy import event, insert
from sqlalchemy.orm import Session, SessionTransaction

from connectors.base import ProviderCall
from service.calendars.models import ProviderCallLog
from service.db import READ_ONLY
from service.observability import PROVIDER_CALLS

log = logging.getLogger(__name__)


class CallRecorder:
    """A `CallObserver` that buffers calls and writes them with the next commit."""

    def __init__(self, account_id: int | None) -> None:
        self.account_id = account_id
        self.pending: list[ProviderCall] = []
        self.total = 0

    def __call__(self, call: ProviderCall) -> None:
        self.pending.append(call)
        self.total += 1
        PROVIDER_CALLS.labels(call.provider, call.operation, str(call.status)).inc()
        log.debug("provider call %s %s -> %s in %.0f ms", call.provider, call.operation,
                  call.status, call.duration_ms)

    def flush_into(self, session: Session) -> list[ProviderCall]:
        """Insert the buffered calls in `session`'s transaction (one executemany; committed
        by the caller); the calls it took."""
        taken, self.pending = self.pending, []
        if taken:
            session.execute(insert(ProviderCallLog), [
                {"account_id": self.account_id, "provider": call.provider,
                 "operation": call.operation, "status": call.status,
                 "duration_ms": call.duration_ms} for call in taken])
        return taken

    def give_back(self, calls: list[ProviderCall]) -> None:
        """Calls whose transaction rolled back: stored with a later commit after all."""
        self.pending[:0] = calls


_RECORDING: ContextVar[CallRecorder | None] = ContextVar("rapport_call_recorder", default=None)


def start_recording(recorder: CallRecorder) -> Token[CallRecorder | None]:
    """Make `recorder` the one `record_call` reports to in this thread, until `stop_recording`."""
    return _RECORDING.set(recorder)


def stop_recording(token: Token[CallRecorder | None]) -> None:
    """Put back whatever recorded before the matching `start_recording`."""
    _RECORDING.reset(token)


def recording() -> CallRecorder | None:
    """The recorder calls made now are reported to, if any."""
    return _RECORDING.get()


_CARRIED = "rapport.carried_calls"  # session.info: [(recorder, calls)] until the commit ends


@event.listens_for(Session, "before_commit")
def _carry_recorded_calls(session: Session) -> None:
    """Put this thread's recorded calls into the transaction being committed: the outermost
    one only (a savepoint released now may still roll back with its parent), never a
    read-only one (SQLite's reader refuses writes), and only once the calls' account is known
    (a message looks it up first; until then they wait for the message's end)."""
    recorder = _RECORDING.get()
    if recorder is None or not recorder.pending or recorder.account_id is None:
        return
    if session.in_nested_transaction() or session.get_bind().get_execution_options().get(
            READ_ONLY):
        return
    session.info.setdefault(_CARRIED, []).append((recorder, recorder.flush_into(session)))


@event.listens_for(Session, "after_commit")
def _carried_calls_stored(session: Session) -> None:
    if not session.in_transaction():
        session.info.pop(_CARRIED, None)


@event.listens_for(Session, "after_soft_rollback")
def _carried_calls_back(session: Session, previous: SessionTransaction) -> None:
    """The outermost transaction rolled back (a failed commit included): its calls were not
    stored, so they go back to their recorder."""
    if previous.parent is not None:
        return
    carried: list[tuple[CallRecorder, Any]] = session.info.pop(_CARRIED, [])
    for recorder, calls in reversed(carried):
        recorder.give_back(calls)


def record_call(call: ProviderCall) -> None:
    """The `CallObserver` every cached connector keeps: report to the current recorder."""
    recorder = _RECORDING.get()
    if recorder is not None:
        recorder(call)
