"""Frozen event objects and the tiny listener registry every component uses.

Theory of operation: a component owns one :class:`Listeners`. Emitting is a
loop over an immutable tuple, so ``add``/``remove`` from another thread never
disturbs an emit in progress and no lock is held while a listener runs. Hot
paths test ``if self._listeners:`` before building an event, so a component
nobody listens to allocates nothing. A listener that raises is logged and
counted, never propagated: observing a component must not break it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Event", "Listener", "Listeners"]

_log = logging.getLogger("sentia_core.events")


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event: which component emitted it, and when.

    Attributes:
        source: the emitting component, e.g. ``"breaker:payments"``.
        at: wall-clock time of the event (the component clock's ``time()``).
    """

    source: str
    at: float


E = TypeVar("E", bound=Event)
Listener = Callable[[E], object]


class Listeners(Generic[E]):
    """A copy-on-write set of callables that receive events of type ``E``."""

    __slots__ = ("_fns", "_lock", "errors")

    def __init__(self) -> None:
        self._fns: tuple[Callable[[E], object], ...] = ()
        self._lock = threading.Lock()
        #: how many times a listener raised.
        self.errors = 0

    def add(self, fn: Callable[[E], object]) -> Callable[[], None]:
        """Subscribe ``fn``; returns a function that unsubscribes it."""
        with self._lock:
            self._fns = (*self._fns, fn)
        return lambda: self.remove(fn)

    def remove(self, fn: Callable[[E], object]) -> None:
        """Unsubscribe ``fn`` (no error if it was not subscribed)."""
        with self._lock:
            fns = list(self._fns)
            if fn in fns:
                fns.remove(fn)
            self._fns = tuple(fns)

    def __bool__(self) -> bool:
        return bool(self._fns)

    def __len__(self) -> int:
        return len(self._fns)

    def emit(self, event: E) -> None:
        """Deliver ``event`` to every listener; a failing listener is logged and counted."""
        for fn in self._fns:
            try:
                fn(event)
            except Exception:
                self.errors += 1
                _log.exception("event listener %r failed on %s", fn, type(event).__name__)
