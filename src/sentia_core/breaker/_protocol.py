"""``BreakerLike``: what the cache, the registry and ``Policy`` need from a breaker.

The three compose a circuit breaker without depending on how it decides:
:class:`~sentia_core.breaker.CircuitBreaker` is one, and any object with
these members can stand in for it (a breaker from another library behind a
thin adapter, a test double). One protocol, so a breaker that fits one of
them fits all three.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

from ._state import BreakerState

__all__ = ["BreakerLike"]

T = TypeVar("T")


@runtime_checkable
class BreakerLike(Protocol):
    """A circuit breaker as its users see it.

    ``call``/``call_async`` run the function through the breaker and raise
    :class:`~sentia_core.errors.CircuitOpenError` (carrying ``name``) without
    running it while the circuit refuses calls. ``state`` is read by the
    cache to report a degraded Redis; ``name`` labels events and errors.
    """

    @property
    def name(self) -> str:
        """The breaker's name."""
        ...

    @property
    def state(self) -> BreakerState:
        """The current state."""
        ...

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` through the breaker."""
        ...

    async def call_async(self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        """Await ``fn(*args, **kwargs)`` through the breaker."""
        ...
