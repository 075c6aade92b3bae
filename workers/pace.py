"""One pace per account: its "not before" from the database, and a cap on calls in flight.

A message for an account that was told to wait (`service.accounts.pace`) goes back to the
queue with the remaining delay before any provider call. At most
`RAPPORT_{GOOGLE,MICROSOFT}_ACCOUNT_CONCURRENCY` messages call the provider for one account at
once, counted in slots that each expire on their own (`workers.call_slots`; dramatiq's
`ConcurrentRateLimiter`, https://dramatiq.io/cookbook.html#rate-limiting, kept a killed
worker's slot for as long as the account stayed busy) on the broker's Redis when there is
one, in this process otherwise (the in-process broker runs every worker thread here; with
RabbitMQ the cap holds per worker process). A message that finds every slot taken waits a
second or two on the queue instead of in a thread.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dramatiq

from service.accounts.pace import ActingAccount
from workers.call_slots import CallSlots, MemoryCallSlots, RedisCallSlots, call_slot
from workers.runtime import current

log = logging.getLogger(__name__)

# A slot of a worker killed mid-call frees itself after this, however busy the account (the
# sync lease's length: a killed worker costs one lease period, not two minutes; a longer call
# only lets a fifth request in early).
SLOT_TTL_MS = 30_000
BUSY_DELAY_MS = (500, 2_000)  # back on the queue for this long when every slot is taken

_lock = threading.Lock()
_slots: dict[int, CallSlots] = {}


def _slots_of(broker: dramatiq.Broker) -> CallSlots:
    """The broker's Redis (shared by every worker process), else one set per process."""
    with _lock:
        slots = _slots.get(id(broker))
        if slots is None:
            client = getattr(broker, "client", None)  # RedisBroker's connection
            slots = RedisCallSlots(client) if client is not None else MemoryCallSlots()
            _slots[id(broker)] = slots
        return slots


@contextmanager
def account_turn(account: ActingAccount | None) -> Iterator[None]:
    """Run the block when the account may call its provider; else send the message back
    to the queue (`dramatiq.Retry`) with the delay it has to wait. The account was read by
    this very message's `account_of`, so its `not_before` is as fresh as a read here."""
    if account is None:
        yield
        return
    rt = current()
    account_id, pace = account.id, account.pace()
    if pace.wait is not None:
        delay_ms = max(int(pace.wait.total_seconds() * 1000), 1)
        log.debug("account %s waits (provider asked); message back in %d ms", account_id,
                  delay_ms)
        raise dramatiq.Retry(f"account {account_id} was asked to wait", delay=delay_ms)
    limit = (rt.settings.microsoft_account_concurrency if pace.provider == "microsoft"
             else rt.settings.google_account_concurrency)
    # a key of its own type (a sorted set): the counter dramatiq's limiter kept under
    # "rapport:account-calls:<id>" may still be there during an upgrade
    with call_slot(_slots_of(dramatiq.get_broker()), f"rapport:account-slots:{account_id}",
                   limit=limit, ttl_ms=SLOT_TTL_MS) as acquired:
        if not acquired:
            delay_ms = random.randint(*BUSY_DELAY_MS)
            log.debug("account %s has %d calls in flight; message back in %d ms",
                      account_id, limit, delay_ms)
            raise dramatiq.Retry(f"account {account_id} is at its concurrency limit",
                                 delay=delay_ms)
        yield
