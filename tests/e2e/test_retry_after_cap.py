"""A provider asking for a minute's pause is answered by re-queueing, not by a sleeping thread."""

from __future__ import annotations

import pytest

from connectors.errors import RateLimited
from service.calendars.connectors import AccountConnectors

from .conftest import Harness, ProviderCase
from .helpers import calls


def test_a_retry_after_of_a_minute_raises_rate_limited_after_one_request(
        harness: Harness, case: ProviderCase) -> None:
    account_id = harness.connect(case.manager)
    connector = AccountConnectors(harness.settings, harness.runtime.factory).for_account(
        account_id)  # built as the workers build it: production retry policy, real sleep
    connector.list_calendars()  # tokens fetched, so only API requests remain
    sandbox = harness.sandbox(case.provider)
    sandbox.clear_requests()
    sandbox.inject_throttle(3, retry_after=60)

    with pytest.raises(RateLimited) as caught:
        connector.list_calendars()

    assert caught.value.retry_after == 60.0
    served = calls(sandbox)
    assert [r.status for r in served.api] == [429]  # asked once; the worker retries later
