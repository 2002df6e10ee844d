"""A lock-free event counter for hot paths.

``incr`` is the bound ``__next__`` of an ``itertools.count``: one C call, atomic
under the GIL and internally locked on free-threaded builds, no Python-level
lock. :meth:`Counter.value` recovers the count: each read also advances the
underlying counter, so the reader subtracts its own reads.
"""

from __future__ import annotations

import itertools
import threading

__all__ = ["Counter"]


class Counter:
    """Counts events; ``incr()`` is safe from any thread and costs one C call."""

    __slots__ = ("_count", "_lock", "_reads", "incr")

    def __init__(self) -> None:
        self._count = itertools.count()
        self.incr = self._count.__next__
        self._reads = 0
        self._lock = threading.Lock()

    def value(self) -> int:
        """How many times ``incr`` has been called."""
        with self._lock:
            total = next(self._count)
            value = total - self._reads
            self._reads += 1
        return value
