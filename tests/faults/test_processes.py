"""Faults a deployment meets, against real `rapport worker` / `scheduler` processes."""

from __future__ import annotations

import time

from .stack import Stack, settled, wait_for_recovery


def test_smoke(stack: Stack) -> None:
    stack.begin()
    stack.add_topics("smoke")
    stack.cancel_next_free("google")
    got = wait_for_recovery(stack, since=time.monotonic(), label="smoke")
    assert not got.left, stack.fleet.tail()
    assert settled(stack) == []
    print(stack.writes())
