"""In-process backend: two generations of plain dicts per tier, one short lock.

Theory of operation: each tier keeps ``key -> state`` in two dicts, *young*
and *old*. A decision reads the key from young (the hot path: one dict get
and one set, under a lock held for the arithmetic only). A key missing from
young is taken from old (moved up), or starts fresh. When young reaches
``max_keys // 2`` entries, or when one *lifetime* has passed since the last
rotation, old is dropped and young becomes old: so a key touched at least
once per generation keeps its state, and memory never exceeds ``max_keys``.

A state's lifetime is how long it can matter after its last change (GCRA:
the bucket's refill time, ``burst * period / limit``; sliding window: two
periods). Dropping a generation because its lifetime passed forgets only
idle states, which has no effect on any decision (counted as ``expired``).
Dropping it early, because young filled up, may forget live states, whose
keys then start again with a full allowance (counted as ``evictions``, an
upper bound): size ``max_keys`` above twice the keys active within a
lifetime. The dropped dict is released after the lock, when the deciding
call returns.

Plain dicts, not an LRU ``OrderedDict``: an ``OrderedDict`` pop + insert costs
three times a dict get + set, and this is the hot path.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ._core import GcraCore, RateDecision, WindowCore

__all__ = ["MemoryTier"]


class MemoryTier:
    """One tier's key states in process memory.

    Args:
        core: the tier's arithmetic.
        max_keys: the most keys held (two generations of ``max_keys // 2``).
        now: the clock's bound ``monotonic``.
    """

    __slots__ = (
        "acquire",
        "core",
        "evictions",
        "expired",
        "fresh",
        "generation_size",
        "lifetime",
        "lock",
        "now",
        "old",
        "release",
        "rotate_at",
        "take",
        "young",
    )

    def __init__(
        self, core: GcraCore | WindowCore, max_keys: int, now: Callable[[], float]
    ) -> None:
        self.core = core
        self.take: Callable[..., RateDecision] = core.take
        self.fresh: Any = core.fresh
        self.generation_size = max(1, max_keys // 2)
        self.lifetime = core.lifetime
        self.now = now
        self.young: dict[str, Any] = {}
        self.old: dict[str, Any] = {}
        self.rotate_at = now() + self.lifetime
        self.lock = threading.Lock()
        # Bound once: acquire()/release() cost half of ``with lock:``.
        self.acquire = self.lock.acquire
        self.release = self.lock.release
        self.evictions = 0
        self.expired = 0

    def decide(self, key: str, cost: int, consume: bool) -> RateDecision:
        """Decide one request (``consume=False``: a peek, which changes nothing).

        ``RateLimiter.hit`` runs these same lines inline (keep them in step).
        """
        now = self.now()
        self.acquire()
        try:
            young = self.young
            state = young.get(key)
            if state is None:
                # Not recently seen: the rare path. ``_dropped`` keeps a dropped
                # generation alive until this frame exits, after the release.
                state, _dropped = self.miss(key, now)
                young = self.young
            if consume:
                decision = self.take(young, key, state, now, cost)
            else:
                decision = self.core.peek(state, now, cost, key)
        finally:
            self.release()
        return decision

    async def adecide(self, key: str, cost: int, consume: bool) -> RateDecision:
        """:meth:`decide` for async callers (it never blocks, so it runs inline)."""
        return self.decide(key, cost, consume)

    def miss(self, key: str, now: float) -> tuple[Any, dict[str, Any] | None]:
        # Lock held. Moves the key's state (if any) from old to young, rotating
        # first when due; returns it and the dropped generation, if any.
        old = self.old
        state = old.pop(key, None) if old else None
        dropped = None
        if now >= self.rotate_at or len(self.young) >= self.generation_size:
            dropped = old
            if now >= self.rotate_at:
                self.expired += len(dropped)
            else:
                self.evictions += len(dropped)
            self.old = self.young
            self.young = {}
            self.rotate_at = now + self.lifetime
        if state is None:
            return self.fresh, dropped
        self.young[key] = state
        return state, dropped

    def reset(self, key: str) -> bool:
        """Forget ``key``'s state; returns whether there was any."""
        with self.lock:
            in_young = self.young.pop(key, None) is not None
            in_old = self.old.pop(key, None) is not None
        return in_young or in_old

    async def areset(self, key: str) -> bool:
        """:meth:`reset` for async callers."""
        return self.reset(key)

    def __len__(self) -> int:
        return len(self.young) + len(self.old)
