"""Back-off strategies: how long to wait before retry number ``n``.

A strategy is any callable ``(retry_number, rng) -> seconds`` (the
:class:`Backoff` protocol). ``retry_number`` is 1 before the first retry, 2
before the second, and so on. Randomness comes only from the ``rng`` the
caller passes in, so a seeded ``random.Random`` makes every delay
reproducible. Every strategy returns a finite number in ``[0, max_delay]``,
whatever the retry number (no ``OverflowError`` after attempt 1000).
"""

from __future__ import annotations

import math
import random
from typing import Literal, Protocol, runtime_checkable

from sentia_core._validate import check_choice, check_non_negative, check_positive
from sentia_core.errors import ConfigError

__all__ = [
    "Backoff",
    "ExponentialBackoff",
    "FixedBackoff",
    "LinearBackoff",
]

Jitter = Literal["full", "equal", "none"]


@runtime_checkable
class Backoff(Protocol):
    """Computes the delay before a retry.

    Implementations must be cheap, thread-safe (they may be shared) and return
    a finite, non-negative number of seconds.
    """

    def __call__(self, retry_number: int, rng: random.Random) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based)."""
        ...


class ExponentialBackoff:
    """``initial * multiplier ** (n - 1)``, capped at ``max_delay``, with jitter.

    Args:
        initial: the envelope before the first retry, in seconds (> 0).
        multiplier: growth factor per retry (>= 1).
        max_delay: the cap on any delay, in seconds (>= initial).
        jitter: ``"full"`` (default; uniform in ``[0, envelope]``, AWS's "full
            jitter", which spreads a fleet's retries best), ``"equal"``
            (uniform in ``[envelope/2, envelope]``) or ``"none"``.

    Raises:
        ConfigError: naming the offending parameter.
    """

    __slots__ = ("initial", "jitter", "max_delay", "multiplier")

    def __init__(
        self,
        initial: float = 0.1,
        multiplier: float = 2.0,
        max_delay: float = 10.0,
        jitter: Jitter = "full",
    ) -> None:
        self.initial = check_positive("initial", initial)
        self.multiplier = check_positive("multiplier", multiplier)
        if self.multiplier < 1.0:
            raise ConfigError("multiplier", multiplier, "must be at least 1")
        self.max_delay = check_positive("max_delay", max_delay)
        if self.max_delay < self.initial:
            raise ConfigError("max_delay", max_delay, "must be at least initial")
        self.jitter: Jitter = check_choice("jitter", jitter, ("full", "equal", "none"))

    def envelope(self, retry_number: int) -> float:
        """The un-jittered delay before retry ``retry_number``: the upper bound."""
        if retry_number <= 1:
            return self.initial
        try:
            value = self.initial * self.multiplier ** (retry_number - 1)
        except OverflowError:
            return self.max_delay
        return value if value < self.max_delay else self.max_delay

    def __call__(self, retry_number: int, rng: random.Random) -> float:
        top = self.envelope(retry_number)
        if self.jitter == "full":
            return rng.random() * top
        if self.jitter == "equal":
            return top * 0.5 * (1.0 + rng.random())
        return top

    def __repr__(self) -> str:
        return (
            f"ExponentialBackoff(initial={self.initial!r}, multiplier={self.multiplier!r}, "
            f"max_delay={self.max_delay!r}, jitter={self.jitter!r})"
        )


class FixedBackoff:
    """The same delay before every retry.

    Args:
        delay: seconds (>= 0).
    """

    __slots__ = ("delay",)

    def __init__(self, delay: float) -> None:
        self.delay = check_non_negative("delay", delay)

    def envelope(self, retry_number: int) -> float:
        """The delay (constant)."""
        return self.delay

    def __call__(self, retry_number: int, rng: random.Random) -> float:
        return self.delay

    def __repr__(self) -> str:
        return f"FixedBackoff(delay={self.delay!r})"


class LinearBackoff:
    """``initial + increment * (n - 1)``, capped at ``max_delay``.

    Args:
        initial: seconds before the first retry (>= 0).
        increment: seconds added per further retry (>= 0).
        max_delay: the cap, in seconds (>= initial).
    """

    __slots__ = ("increment", "initial", "max_delay")

    def __init__(self, initial: float = 0.1, increment: float = 0.1, max_delay: float = 10.0):
        self.initial = check_non_negative("initial", initial)
        self.increment = check_non_negative("increment", increment)
        self.max_delay = check_non_negative("max_delay", max_delay)
        if self.max_delay < self.initial:
            raise ConfigError("max_delay", max_delay, "must be at least initial")

    def envelope(self, retry_number: int) -> float:
        """The delay before retry ``retry_number``."""
        value = self.initial + self.increment * max(0, retry_number - 1)
        if math.isinf(value) or value > self.max_delay:
            return self.max_delay
        return value

    def __call__(self, retry_number: int, rng: random.Random) -> float:
        return self.envelope(retry_number)

    def __repr__(self) -> str:
        return (
            f"LinearBackoff(initial={self.initial!r}, increment={self.increment!r}, "
            f"max_delay={self.max_delay!r})"
        )
