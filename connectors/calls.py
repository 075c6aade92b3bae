"""Report every provider call (operation, HTTP status, duration) to the service's observer.

Each attempt is one call, retries included, so the service counts what the provider saw. An
observer that fails is logged and ignored: counting must never break a sync.
"""

from __future__ import annotations

import logging
import time

from connectors.base import CallObserver, ProviderCall

log = logging.getLogger(__name__)

NO_ANSWER = 0  # the status reported when the network failed before any HTTP answer


class CallReporter:
    """Times and reports the calls of one provider client."""

    def __init__(self, provider: str, observer: CallObserver | None) -> None:
        self.provider = provider
        self._observer = observer

    def report(self, operation: str, status: int, started: float) -> None:
        """Report one call that began at `started` (``time.monotonic()``)."""
        if self._observer is None:
            return
        call = ProviderCall(
            provider=self.provider,
            operation=operation,
            status=status,
            duration_ms=(time.monotonic() - started) * 1000.0,
        )
        try:
            self._observer(call)
        except Exception:  # an observer must never break a sync
            log.exception("call observer failed for %s %s", self.provider, operation)
