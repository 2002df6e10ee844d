"""Single-flight: one loader run per missing key, however many callers ask.

Theory of operation. The core keeps ``flights: key -> Flight`` under its lock.
The first caller to miss a key creates the flight and *leads*: it runs the
loader (in its own thread or task) and settles the flight with the value or
the error. Callers that miss the same key while the flight is in the table
*join*: a thread waits on the flight's ``threading.Event``, a task awaits an
``asyncio.Future`` registered (under the core lock, so no wake-up is lost) on
its own event loop and resolved with ``call_soon_threadsafe``. So threads and
tasks on any loop can wait for a leader of either kind.

A flight leaves the table when it settles, or earlier when an invalidation of
its key or tags *poisons* it: the leader still returns (and its waiters still
get) the value it loads, but that value is not stored, and callers arriving
after the invalidation start a fresh flight instead of joining one that may
read pre-invalidation data (aiocache#95).

A leader that dies of a ``BaseException`` (task cancelled, KeyboardInterrupt)
*abandons* the flight: waiters wake, find no outcome, and retry -- one of them
becomes the new leader. Joining a flight led by one's own thread (a loader
calling ``get_or_set`` for its own key, or a sync call blocking the event loop
whose task leads) would deadlock, so such a caller *bypasses*: it runs the
loader itself without storing.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

__all__ = ["Flight"]


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Flight:
    """One in-progress load (all fields change under the core's lock)."""

    __slots__ = (
        "background",
        "done",
        "error",
        "event",
        "futures",
        "key",
        "ok",
        "owner_task",
        "owner_thread",
        "poisoned",
        "stale",
        "tags",
        "value",
        "waiters",
    )

    def __init__(
        self,
        key: str,
        tags: tuple[str, ...],
        stale: Any,
        owner_task: object | None,
    ) -> None:
        self.key = key
        self.tags = tags
        #: an expired value still within ``stale_ttl``, or the MISS sentinel.
        self.stale = stale
        self.poisoned = False
        self.background = False
        self.done = False
        self.ok = False
        self.value: Any = None
        self.error: BaseException | None = None
        #: created by the first thread that waits (under the core lock), so a
        #: load nobody waits for costs no Event
        self.event: threading.Event | None = None
        self.futures: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.owner_thread: int | None = threading.get_ident()
        self.owner_task = owner_task
        self.waiters = 0

    def would_deadlock(self, task: object | None) -> bool:
        """True if a caller in this thread (running ``task``, or sync if None) must not wait."""
        if self.owner_thread != threading.get_ident():
            return False
        return task is None or self.owner_task is None or task is self.owner_task

    def wait_event(self) -> threading.Event:
        """The event a waiting thread blocks on (call under the lock)."""
        if self.event is None:
            self.event = threading.Event()
        return self.event

    def future(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        """A future on ``loop`` resolved when the flight settles (call under the lock)."""
        fut: asyncio.Future[None] = loop.create_future()
        self.futures.append((loop, fut))
        return fut

    def settle(self, ok: bool, value: Any = None, error: BaseException | None = None) -> None:
        """Record the outcome (call under the lock, then :meth:`wake` outside it).

        ``ok=False`` with no ``error`` means abandoned: waiters retry.
        """
        self.done = True
        self.ok = ok
        self.value = value
        self.error = error

    def wake(self) -> None:
        """Release every waiter (threads and tasks)."""
        if self.event is not None:
            self.event.set()
        futures, self.futures = self.futures, []
        for loop, fut in futures:
            # a closed loop raises RuntimeError: nobody is waiting there any more
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, fut)

    def __repr__(self) -> str:
        state = "done" if self.done else "running"
        return f"Flight({self.key!r}, {state}, poisoned={self.poisoned})"
