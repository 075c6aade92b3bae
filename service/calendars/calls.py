"""Counting provider calls: connectors report them, the service stores them.

A connector keeps the observer it was built with for as long as it is cached (one worker
thread reuses it across messages), so it is given `record_call`, which reports to whichever
`CallRecorder` is recording in this thread at the time of the call (a `ContextVar`, like
dramatiq's own `CurrentMessage`). Calls made while nothing records are not stored.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar, Token

from sqlalchemy.orm import Session

from connectors.base import ProviderCall
from service.calendars.models import ProviderCallLog
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

    def flush_into(self, session: Session) -> None:
        """Add the buffered calls to `session` (committed by the caller)."""
        for call in self.pending:
            session.add(ProviderCallLog(account_id=self.account_id, provider=call.provider,
                                        operation=call.operation, status=call.status,
                                        duration_ms=call.duration_ms))
        self.pending.clear()


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


def record_call(call: ProviderCall) -> None:
    """The `CallObserver` every cached connector keeps: report to the current recorder."""
    recorder = _RECORDING.get()
    if recorder is not None:
        recorder(call)
