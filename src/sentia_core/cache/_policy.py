"""Eviction policies for the L1: which entry leaves when the cache is full.

A policy only orders keys; the L1 owns the entries, sizes and limits. The L1
calls :meth:`~EvictionPolicy.on_insert`, :meth:`~EvictionPolicy.on_update`,
:meth:`~EvictionPolicy.on_remove` and :meth:`~EvictionPolicy.victim` under its
lock. A write that overflows a bound is told to the policy first
(``on_insert``), then ``victim`` is asked once per entry to evict; it may
name the key just written (the write is then not kept; LRU and W-TinyLFU
never do). ``on_hit`` is different: it is
called on the lock-free hit path, so it must be a single call that is atomic
under the GIL (a C method such as ``OrderedDict.move_to_end``) or ``None``
(the policy does not care about hits, e.g. FIFO); it may raise ``KeyError``
for a key removed a moment before, which the hit path ignores.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["EvictionPolicy", "LRUPolicy"]

# W-TinyLFU, the default, is TinyLFUPolicy in _tinylfu.py.


@runtime_checkable
class EvictionPolicy(Protocol):
    """Orders the keys of one L1 for eviction. One instance per cache.

    Attributes:
        on_hit: called with the key on every hit (lock-free; see module doc),
            or ``None``.
    """

    on_hit: Callable[[str], object] | None

    def on_insert(self, key: str, size: int) -> None:
        """``key`` (of ``size`` bytes) was stored; it is not already tracked."""
        ...

    def on_update(self, key: str, size: int) -> None:
        """``key``, already tracked, was rewritten with a value of ``size`` bytes."""
        ...

    def on_remove(self, key: str) -> None:
        """``key`` left the cache (deleted, expired, invalidated or evicted)."""
        ...

    def victim(self) -> str:
        """The key to evict next (evicted before the next call). Called only while
        the cache is over a bound, after the write that put it there."""
        ...

    def clear(self) -> None:
        """Forget every key."""
        ...


class LRUPolicy:
    """Least recently used: a hit or a write moves the key to the back of the line.

    The order is an ``OrderedDict`` whose ``move_to_end`` (C, O(1)) is the hit
    hook; measured faster than re-inserting into a plain ``dict``, which also
    leaves holes that make ``next(iter(d))`` slower as they accumulate.
    """

    __slots__ = ("_order", "on_hit")

    def __init__(self) -> None:
        self._order: OrderedDict[str, None] = OrderedDict()
        self.on_hit: Callable[[str], object] | None = self._order.move_to_end

    def on_insert(self, key: str, size: int) -> None:
        self._order[key] = None

    def on_update(self, key: str, size: int) -> None:
        self._order.move_to_end(key)

    def on_remove(self, key: str) -> None:
        self._order.pop(key, None)

    def victim(self) -> str:
        return next(iter(self._order))

    def clear(self) -> None:
        self._order.clear()

    def __len__(self) -> int:
        return len(self._order)

    def __repr__(self) -> str:
        return f"LRUPolicy({len(self._order)} keys)"
