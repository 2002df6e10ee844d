"""The rate-limit arithmetic: given a key's state and ``now``, the decision and the new state.

Theory of operation
-------------------
Every backend (in-memory, sync Redis, async Redis) asks one *core* object per
tier the same two questions:

* **admit**: given the stored state, ``now`` and a cost, is the request allowed
  and what is the state afterwards? The in-memory backend runs this in
  ``take`` (a hit) and ``peek``; the Redis backend runs the same lines,
  transcribed to Lua in ``_lua.py``, atomically inside Redis.
* **describe**: given what admit saw (allowed or not, the state before, now),
  what are ``remaining``, ``retry_after`` and ``reset_after``? This is Python
  only and shared by all backends: Redis replies carry the raw numbers and are
  described here (:meth:`GcraCore.decode`), so the figures cannot drift apart.

GCRA (generic cell rate algorithm) keeps one float per key, the *theoretical
arrival time* ``tat``: the time at which the key's bucket would be full
again. With emission interval ``T = period / limit`` and tolerance
``tau = burst * T``, a request of cost ``c`` at ``now`` is allowed when
``max(tat, now) + c*T - now <= tau``, and then ``tat`` becomes
``max(tat, now) + c*T``. That is a token bucket of ``burst`` tokens refilled at
``limit/period`` per second, stored in one number. A key whose ``tat <= now``
has a full bucket and needs no state at all.

Sliding-window counter keeps ``(window index, count in previous window, count
in current window)`` for fixed windows of one period aligned to multiples of
the period; it estimates the count over the last period as
``prev * (1 - elapsed/period) + curr`` and allows when estimate + cost fits in
the limit. Both guarantees (exact bounds) are stated in docs/ratelimit.md and
checked by the property tests.

Float comparisons carry a tiny tolerance (``EPS_TIME``, ``EPS_COUNT``) so a
request arriving exactly on a boundary is allowed, whichever way the last bit
of a float rounding fell; the Lua scripts get the same thresholds written in
(``tol_eps``, ``limit_eps``), so both sides compare the very same doubles.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

try:  # the C accessor namedtuple uses; a property is the portable fallback
    from collections import _tuplegetter as _field  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - PyPy and friends
    from operator import itemgetter

    def _field(index: int, doc: str) -> Any:
        return property(itemgetter(index), doc=doc)


from ._rate import Rate

__all__ = ["EPS_COUNT", "EPS_TIME", "INF", "DenyAllCore", "GcraCore", "RateDecision", "WindowCore"]

INF = math.inf
#: seconds; a request this close to its allowed time is allowed.
EPS_TIME = 1e-9
#: cost units; an estimate this close to the limit still fits.
EPS_COUNT = 1e-9
_floor = math.floor


class RateDecision(tuple[bool, int, float, float, str, str]):
    """The outcome of one :meth:`RateLimiter.hit` or :meth:`RateLimiter.peek`.

    An immutable 6-tuple with named fields (frozen, slotted): a tuple subclass
    without a Python ``__new__``, because building one is the only allocation
    on the in-memory hot path and this is the cheapest immutable object
    CPython builds. Its truth value is :attr:`allowed`, so
    ``if limiter.hit("api", ip):`` reads naturally. Build one yourself (in a
    test double, say) with :meth:`of`.

    Attributes:
        allowed: whether the request may proceed (for ``peek``: would be).
        remaining: how many more cost-1 requests would be allowed right now.
        retry_after: seconds until this same request would be allowed; ``0.0``
            when allowed, ``inf`` when it never can be (the cost exceeds the
            burst/limit, or the limit is 0).
        reset_after: seconds until the key is back to full capacity (no
            recent usage counted), if no further requests arrive.
        tier: the tier name.
        key: the caller key.
    """

    __slots__ = ()

    if TYPE_CHECKING:

        @property
        def allowed(self) -> bool: ...
        @property
        def remaining(self) -> int: ...
        @property
        def retry_after(self) -> float: ...
        @property
        def reset_after(self) -> float: ...
        @property
        def tier(self) -> str: ...
        @property
        def key(self) -> str: ...

    else:
        allowed = _field(0, "whether the request may proceed")
        remaining = _field(1, "cost-1 requests still allowed now")
        retry_after = _field(2, "seconds until this request would be allowed")
        reset_after = _field(3, "seconds until full capacity")
        tier = _field(4, "the tier name")
        key = _field(5, "the caller key")

    @classmethod
    def of(
        cls,
        *,
        allowed: bool,
        remaining: int,
        retry_after: float,
        reset_after: float,
        tier: str,
        key: str,
    ) -> RateDecision:
        """Build a decision from named fields."""
        return cls((allowed, remaining, retry_after, reset_after, tier, key))

    def __bool__(self) -> bool:
        return self[0]

    def __repr__(self) -> str:
        return (
            f"RateDecision(allowed={self[0]!r}, remaining={self[1]!r}, "
            f"retry_after={self[2]!r}, reset_after={self[3]!r}, tier={self[4]!r}, key={self[5]!r})"
        )


#: a script reply's verdict, as bytes (the default) or str (``decode_responses=True``).
_FLAGS: dict[object, bool] = {b"1": True, b"0": False, "1": True, "0": False}


def _bad_reply(reply: object) -> ValueError:
    return ValueError(f"unexpected rate-limit script reply {reply!r:.200}")


class GcraCore:
    """GCRA arithmetic for one tier: the admit step and the shared describe step.

    Args:
        tier: the tier name (copied into decisions).
        rate: the tier's rate; must have ``limit >= 1``.
        burst: the bucket size in cost units (``None``: the rate's limit).
    """

    __slots__ = (
        "allowed",
        "burst",
        "denied",
        "interval",
        "lifetime",
        "limit",
        "period",
        "tier",
        "tol_eps",
        "tol_left",
        "tolerance",
    )

    algorithm = "gcra"
    #: the state of a key without one: any time before now.
    fresh: float = -INF

    def __init__(self, tier: str, rate: Rate, burst: int | None = None) -> None:
        self.tier = tier
        self.limit = rate.limit
        self.period = rate.period
        self.burst = rate.limit if burst is None else burst
        #: seconds of "time credit" one unit of cost uses.
        self.interval = rate.period / rate.limit
        #: how far ``tat`` may run ahead of ``now``: ``burst`` intervals.
        self.tolerance = self.burst * self.interval
        self.tol_eps = self.tolerance + EPS_TIME
        # remaining = (tolerance - ahead) / interval + EPS_COUNT, with the EPS folded in.
        self.tol_left = self.tolerance + EPS_COUNT * self.interval
        #: a state untouched this long is idle (equivalent to no state).
        self.lifetime = self.tolerance + 1e-6
        #: hits allowed / denied; the backend holding the state updates them.
        self.allowed = 0
        self.denied = 0

    def take(
        self, states: dict[str, Any], key: str, tat: float, now: float, cost: int
    ) -> RateDecision:
        """A hit on the in-memory backend: admit, record in ``states``, describe.

        Args:
            states: the mapping the key's state lives in (written when it changes).
            key: the caller key.
            tat: the key's stored theoretical arrival time; :attr:`fresh` if none.
            now: the current time (seconds, same clock as ``tat``).
            cost: cost units of this request (``>= 0``).

        Returns:
            The decision: the figures :meth:`describe` gives for the same inputs.
        """
        if tat < now:  # noqa: PLR1730 (max() is a call; this is the hot path)
            tat = now
        interval = self.interval
        new_tat = tat + cost * interval
        ahead = new_tat - now
        if ahead <= self.tol_eps:
            # The hot path: describe(True, tat, now, cost, True, key), inlined.
            # (The quotient is > -1 here, so int() needs no clamp at 0.)
            states[key] = new_tat
            self.allowed += 1
            return RateDecision(
                (True, int((self.tol_left - ahead) / interval), 0.0, ahead, self.tier, key)
            )
        self.denied += 1
        return self.describe(False, tat, now, cost, True, key)

    def peek(self, tat: float, now: float, cost: int, key: str) -> RateDecision:
        """Admit without recording: what :meth:`take` would decide, state untouched."""
        tat = max(tat, now)
        allowed = tat + cost * self.interval - now <= self.tol_eps
        return self.describe(allowed, tat, now, cost, False, key)

    def describe(  # noqa: PLR0917 (positional on purpose: the hot path)
        self, allowed: bool, tat: float, now: float, cost: int, consume: bool, key: str
    ) -> RateDecision:
        """The decision's figures from what admit saw.

        Args:
            allowed: admit's verdict.
            tat: ``max(stored tat, now)``, the state admit started from.
            now: admit's time.
            cost: the request's cost.
            consume: whether an allowed request was recorded.
            key: the caller key.
        """
        interval = self.interval
        if allowed:
            after = tat + cost * interval if consume else tat
            left = (self.tol_left - (after - now)) / interval
            return RateDecision(
                (True, int(left) if left > 0.0 else 0, 0.0, after - now, self.tier, key),
            )
        left = (self.tol_left - (tat - now)) / interval
        if cost > self.burst:
            retry = INF
        else:
            retry = tat + cost * interval - self.tolerance - now
            if retry <= 0.0:  # only by float rounding at the boundary
                retry = EPS_TIME
        return RateDecision(
            (False, int(left) if left > 0.0 else 0, retry, tat - now, self.tier, key),
        )

    def idle(self, tat: float, now: float) -> bool:
        """Whether a stored state is equivalent to no state (full bucket)."""
        return tat <= now

    def decode(self, reply: Any, cost: int, consume: bool, key: str) -> RateDecision:
        """Describe a reply ``"<allowed> <tat> <now>"`` of the GCRA script.

        Raises:
            ValueError: the reply is not what the script returns (corrupt or
                foreign); the caller treats it like an unreachable Redis.
        """
        try:
            flag, raw_tat, raw_now = reply.split()
            tat = float(raw_tat)
            now = float(raw_now)
        except (AttributeError, TypeError, ValueError):
            raise _bad_reply(reply) from None
        allowed = _FLAGS.get(flag)
        if allowed is None or not -INF < now <= tat < INF:  # also false for NaN
            raise _bad_reply(reply)
        return self.describe(allowed, tat, now, cost, consume, key)


class WindowCore:
    """Sliding-window-counter arithmetic for one tier.

    State: a 3-item list ``[window index, previous count, current count]``
    where window ``i`` covers ``[i*period, (i+1)*period)``.

    Args:
        tier: the tier name.
        rate: the tier's rate; must have ``limit >= 1``.
    """

    __slots__ = ("allowed", "denied", "lifetime", "limit", "limit_eps", "period", "tier")

    algorithm = "sliding_window"
    #: the state of a key without one.
    fresh: list[float] | None = None

    def __init__(self, tier: str, rate: Rate) -> None:
        self.tier = tier
        self.limit = rate.limit
        self.period = rate.period
        self.limit_eps = rate.limit + EPS_COUNT
        #: a state untouched this long is idle (both of its windows have passed).
        self.lifetime = 2.0 * rate.period + 1e-6
        #: hits allowed / denied; the backend holding the state updates them.
        self.allowed = 0
        self.denied = 0

    def _window(self, state: list[float] | None, now: float) -> tuple[int, float, float, float]:
        # (current window index, previous count, current count, seconds into the window)
        period = self.period
        index = _floor(now / period)
        prev = curr = 0.0
        if state is not None:
            stored = state[0]
            if stored == index:
                prev = state[1]
                curr = state[2]
            elif stored == index - 1:
                prev = state[2]
        return index, prev, curr, now - index * period

    def take(
        self, states: dict[str, Any], key: str, state: list[float] | None, now: float, cost: int
    ) -> RateDecision:
        """A hit on the in-memory backend, like :meth:`GcraCore.take`.

        The state list is updated in place (or created) when the hit is allowed.
        """
        index, prev, curr, elapsed = self._window(state, now)
        if prev * (1.0 - elapsed / self.period) + curr + cost <= self.limit_eps:
            self.allowed += 1
            if cost:
                if state is None:
                    states[key] = [index, prev, curr + cost]
                else:
                    state[0] = index
                    state[1] = prev
                    state[2] = curr + cost
                    states[key] = state
            return self.describe(True, prev, curr, elapsed, cost, True, key)
        self.denied += 1
        return self.describe(False, prev, curr, elapsed, cost, True, key)

    def peek(self, state: list[float] | None, now: float, cost: int, key: str) -> RateDecision:
        """Admit without recording, like :meth:`GcraCore.peek`."""
        _, prev, curr, elapsed = self._window(state, now)
        allowed = prev * (1.0 - elapsed / self.period) + curr + cost <= self.limit_eps
        return self.describe(allowed, prev, curr, elapsed, cost, False, key)

    def describe(  # noqa: PLR0917 (positional on purpose: the hot path)
        self,
        allowed: bool,
        prev: float,
        curr: float,
        elapsed: float,
        cost: int,
        consume: bool,
        key: str,
    ) -> RateDecision:
        """The decision's figures from what admit saw (counts before this request)."""
        period = self.period
        limit = self.limit
        if allowed and consume:
            curr += cost
        weighted = prev * (1.0 - elapsed / period)
        left = limit - (weighted + curr) + EPS_COUNT
        remaining = int(left) if left > 0.0 else 0
        reset = 2.0 * period - elapsed if curr else (period - elapsed if prev else 0.0)
        if allowed:
            return RateDecision((True, remaining, 0.0, reset, self.tier, key))
        if cost > limit:
            retry = INF
        elif curr + cost <= limit:
            # The previous window's weight decays until the request fits.
            retry = period * (1.0 - (limit - curr - cost) / prev) - elapsed
        else:
            # Wait for the next window, then for this window's weight to decay.
            retry = period - elapsed + max(0.0, period * (1.0 - (limit - cost) / curr))
        if retry <= 0.0:  # only by float rounding at the boundary
            retry = EPS_TIME
        return RateDecision((False, remaining, retry, reset, self.tier, key))

    def idle(self, state: list[float], now: float) -> bool:
        """Whether a stored state no longer affects any decision."""
        return now >= (state[0] + 2) * self.period

    def decode(self, reply: Any, cost: int, consume: bool, key: str) -> RateDecision:
        """Describe a reply ``"<allowed> <prev> <curr> <elapsed>"`` of the window script.

        Raises:
            ValueError: the reply is not what the script returns.
        """
        try:
            flag, raw_prev, raw_curr, raw_elapsed = reply.split()
            prev = float(raw_prev)
            curr = float(raw_curr)
            elapsed = float(raw_elapsed)
        except (AttributeError, TypeError, ValueError):
            raise _bad_reply(reply) from None
        allowed = _FLAGS.get(flag)
        if (
            allowed is None
            or not 0.0 <= prev < INF  # these comparisons are also false for NaN
            or not 0.0 <= curr < INF
            or not 0.0 <= elapsed <= self.period
            # a denial of a request that fits with nothing to decay is not a
            # reply the script gives (and its retry_after would divide by 0)
            or (not allowed and prev == 0.0 and curr + cost <= self.limit)
        ):
            raise _bad_reply(reply)
        return self.describe(allowed, prev, curr, elapsed, cost, consume, key)


class DenyAllCore:
    """A tier whose limit is 0: every request is denied, forever, without any I/O."""

    __slots__ = ("allowed", "denied", "tier")

    algorithm = "deny_all"

    def __init__(self, tier: str) -> None:
        self.tier = tier
        self.allowed = 0
        self.denied = 0

    def decide(self, key: str) -> RateDecision:
        """The one decision this tier ever makes."""
        return RateDecision((False, 0, INF, 0.0, self.tier, key))
