"""Waiting for another thread, task, process or server to get somewhere: one helper.

These coordinate a test with work it does not drive step by step (a worker
thread, a pub/sub delivery, a restarted server). They poll with short real
sleeps and give up after a generous bound; how long the wait took is never
asserted (timings belong in benchmarks/).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

__all__ = ["async_eventually", "async_wait_until", "eventually", "wait_until"]

#: Seconds before a wait gives up: far beyond any healthy run, short of hanging CI.
GIVE_UP = 30.0
_POLL = 0.002


def eventually(condition: Callable[[], object], timeout: float = GIVE_UP) -> bool:
    """Poll ``condition`` until it is truthy (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL)
    return True


def wait_until(condition: Callable[[], object], what: str = "", timeout: float = GIVE_UP) -> None:
    """Poll ``condition`` until truthy; fail the test (never hang) after ``timeout`` seconds."""
    if not eventually(condition, timeout):
        pytest.fail(f"never reached within {timeout} s: {what or condition}")


async def async_eventually(condition: Callable[[], object], timeout: float = GIVE_UP) -> bool:
    """The asyncio twin of :func:`eventually`: yields to the loop between polls."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(_POLL)
    return True


async def async_wait_until(
    condition: Callable[[], object], what: str = "", timeout: float = GIVE_UP
) -> None:
    """The asyncio twin of :func:`wait_until`."""
    if not await async_eventually(condition, timeout):
        pytest.fail(f"never reached within {timeout} s: {what or condition}")
