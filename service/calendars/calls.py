"""Counting provider calls: connectors report them, the service stores them."""

from __future__ import annotations

import logging

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
