"""The current call's deadline, carried in a ``contextvars.ContextVar``.

Theory of operation: Python cannot interrupt a running thread, so a sync
timeout can only be *cooperative* for code that runs in the caller's thread.
:class:`Timeout` (and the :func:`deadline` context manager) store the absolute
deadline here; well-behaved code reads :func:`remaining_time` to bound its own
I/O (a socket timeout, a database ``statement_timeout``) or calls
:func:`check_deadline` between steps. :class:`Retry` reads it too and stops
retrying when the next back-off would end past the deadline, and
:class:`Bulkhead` never waits for a slot longer than the time left.

A deadline remembers the clock that set it, so :func:`remaining_time` is
consistent even when tests mix a ``ManualClock`` with the system clock.
Nested deadlines only ever shrink: entering a longer one inside a shorter one
keeps the shorter.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from types import TracebackType

from sentia_core._clock import SYSTEM_CLOCK, Clock
from sentia_core._validate import check_non_negative
from sentia_core.errors import CallTimeoutError

__all__ = [
    "Deadline",
    "check_deadline",
    "current_deadline",
    "deadline",
    "remaining_time",
]


class Deadline:
    """An absolute deadline on a given clock's monotonic scale.

    Attributes:
        at: the monotonic reading (of the setting clock) when time runs out.
        timeout: the timeout in seconds that produced this deadline.
    """

    __slots__ = ("_monotonic", "at", "timeout")

    def __init__(self, at: float, timeout: float, monotonic: Callable[[], float]) -> None:
        self.at = at
        self.timeout = timeout
        self._monotonic = monotonic

    def remaining(self) -> float:
        """Seconds left (0.0 once expired, never negative)."""
        left = self.at - self._monotonic()
        return left if left > 0.0 else 0.0

    def expired(self) -> bool:
        """True once the deadline has passed."""
        return self._monotonic() >= self.at

    def __repr__(self) -> str:
        return f"Deadline(at={self.at!r}, timeout={self.timeout!r})"


_DEADLINE: ContextVar[Deadline | None] = ContextVar("sentia_core_deadline", default=None)


def current_deadline() -> Deadline | None:
    """The innermost active deadline of this context, or ``None``."""
    return _DEADLINE.get()


def remaining_time() -> float | None:
    """Seconds left before the current deadline; ``None`` when there is none.

    Use it to bound blocking work in code that runs under a sync
    :class:`Timeout` (or :func:`deadline`)::

        left = remaining_time()
        sock.settimeout(left if left is not None else 30.0)
    """
    d = _DEADLINE.get()
    return None if d is None else d.remaining()


def check_deadline() -> None:
    """Raise :class:`~sentia_core.errors.CallTimeoutError` if the current deadline passed.

    Does nothing when no deadline is active. Call it between the steps of a
    long computation to make it honour a cooperative timeout.

    Raises:
        CallTimeoutError: the deadline has passed.
    """
    d = _DEADLINE.get()
    if d is not None and d.expired():
        raise CallTimeoutError(d.timeout)


def _enter(
    seconds: float, monotonic: Callable[[], float]
) -> tuple[Deadline, Token[Deadline | None], float]:
    """Install ``now + seconds`` unless an outer deadline is sooner.

    Returns the effective deadline, the token to reset, and the effective
    number of seconds (the outer deadline's remaining time when it is sooner).
    """
    outer = _DEADLINE.get()
    if outer is not None:
        left = outer.remaining()
        if left <= seconds:
            return outer, _DEADLINE.set(outer), left
    d = Deadline(monotonic() + seconds, seconds, monotonic)
    return d, _DEADLINE.set(d), seconds


class deadline:
    """A cooperative deadline for the enclosed block (sync ``with`` or ``async with``).

    Nothing is interrupted: code inside reads :func:`remaining_time` or calls
    :func:`check_deadline`, and sentia_core's own policies (retry, bulkhead,
    timeout, rate-limit waits) respect it. A longer deadline nested inside a
    shorter one keeps the shorter.

    Args:
        seconds: the time budget of the block (>= 0).
        clock: the clock that measures it.

    Raises:
        ConfigError: ``seconds`` is negative or not a number.
    """

    __slots__ = ("_deadline", "_monotonic", "_seconds", "_token")

    def __init__(self, seconds: float, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._seconds = check_non_negative("seconds", seconds)
        self._monotonic = clock.monotonic
        self._token: Token[Deadline | None] | None = None
        self._deadline: Deadline | None = None

    def __enter__(self) -> Deadline:
        if self._token is not None:
            raise RuntimeError("a deadline() block cannot be re-entered while active")
        self._deadline, self._token, _ = _enter(self._seconds, self._monotonic)
        return self._deadline

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, self._token = self._token, None
        if token is not None:
            _DEADLINE.reset(token)

    async def __aenter__(self) -> Deadline:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
