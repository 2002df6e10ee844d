"""Rates: ``Rate(limit, period)`` and the parser for strings like ``"1000/15min"``.

Grammar (case-insensitive, spaces allowed around every token)::

    rate   := LIMIT ("/" | "per") [AMOUNT] UNIT
    LIMIT  := digits                       a non-negative integer; 0 denies everything
    AMOUNT := digits ["." digits]          how many UNITs make one period (default 1)
    UNIT   := ms | s | m | h | d | w       and their long forms (second(s), sec(s),
                                           minute(s), min(s), hour(s), hr(s), day(s), week(s),
                                           millisecond(s), msec)

So ``"10/second"``, ``"10/s"``, ``"1000/15min"``, ``"50 per 15 minutes"``,
``"200/1.5h"`` and ``"5/250ms"`` all parse. The period is computed exactly
(``Fraction``) and rounded once to a float, and :func:`str` of a :class:`Rate`
prints a canonical form that parses back to an equal ``Rate``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from sentia_core.errors import ConfigError

__all__ = ["MAX_LIMIT", "MAX_RATE_PER_SECOND", "MIN_PERIOD", "Rate", "parse_rate"]

#: Largest accepted limit: integers up to here are exact in a double (Lua numbers).
MAX_LIMIT = 10**15
#: Shortest accepted period, seconds (Redis key TTLs are in milliseconds).
MIN_PERIOD = 0.001
#: Fastest accepted rate, per second: GCRA's emission interval must stay far
#: above the resolution of a float timestamp (see docs/ratelimit.md, "Limits").
MAX_RATE_PER_SECOND = 1_000_000

_UNITS: dict[str, Fraction] = {}
for _names, _seconds in (
    (("ms", "msec", "msecs", "millisecond", "milliseconds"), Fraction(1, 1000)),
    (("s", "sec", "secs", "second", "seconds"), Fraction(1)),
    (("m", "min", "mins", "minute", "minutes"), Fraction(60)),
    (("h", "hr", "hrs", "hour", "hours"), Fraction(3600)),
    (("d", "day", "days"), Fraction(86400)),
    (("w", "week", "weeks"), Fraction(604800)),
):
    for _name in _names:
        _UNITS[_name] = _seconds

_RATE_RE = re.compile(
    r"""\A\s*
    (?P<limit>[0-9]+)\s*
    (?:/|per(?=[\s0-9]))\s*
    (?P<amount>[0-9]+(?:\.[0-9]+)?)?\s*
    (?P<unit>[a-z]+)\s*
    \Z""",
    re.VERBOSE | re.IGNORECASE | re.ASCII,
)

# Canonical output: the largest unit that divides the period exactly.
_CANONICAL = (
    (604800, "week", "w"),
    (86400, "day", "d"),
    (3600, "hour", "h"),
    (60, "minute", "min"),
    (1, "second", "s"),
)


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``limit`` units of cost per ``period`` seconds.

    Args:
        limit: allowed cost per period, an ``int`` from 0 (deny everything) to
            :data:`MAX_LIMIT`.
        period: the period in seconds, at least :data:`MIN_PERIOD`; ``limit /
            period`` may not exceed :data:`MAX_RATE_PER_SECOND`.

    Raises:
        ConfigError: naming ``limit`` or ``period`` when either is invalid.
    """

    limit: int
    period: float

    def __post_init__(self) -> None:
        limit, period = self.limit, self.period
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise ConfigError("limit", limit, "must be an integer")
        if not 0 <= limit <= MAX_LIMIT:
            raise ConfigError("limit", limit, f"must be between 0 and {MAX_LIMIT}")
        if isinstance(period, bool) or not isinstance(period, (int, float)):
            raise ConfigError("period", period, "must be a number of seconds")
        if not math.isfinite(period) or period < MIN_PERIOD:
            raise ConfigError("period", period, f"must be finite and at least {MIN_PERIOD}s")
        if limit > MAX_RATE_PER_SECOND * period:
            raise ConfigError(
                "limit",
                limit,
                f"{limit}/{period:g}s is faster than {MAX_RATE_PER_SECOND} per second",
            )
        object.__setattr__(self, "period", float(period))

    @property
    def per_second(self) -> float:
        """The sustained rate in cost units per second."""
        return self.limit / self.period

    def __str__(self) -> str:
        """Canonical text, e.g. ``"1000/15min"``; :func:`parse_rate` reads it back."""
        exact = Fraction(self.period)
        for seconds, long_name, short_name in _CANONICAL:
            n = exact / seconds
            if n.denominator == 1:
                return f"{self.limit}/{long_name}" if n == 1 else f"{self.limit}/{n}{short_name}"
        millis = exact * 1000
        if millis.denominator == 1:
            return f"{self.limit}/{millis}ms"
        return f"{self.limit}/{self.period!r}s"


def parse_rate(text: str | Rate, *, parameter: str = "rate") -> Rate:
    """Parse ``"N/period"`` (see the module docstring for the grammar).

    Args:
        text: the rate string, or a :class:`Rate` (returned as is).
        parameter: the name put in the error, e.g. ``"tiers['api']"``.

    Returns:
        The :class:`Rate`.

    Raises:
        ConfigError: naming ``parameter`` when ``text`` is not a valid rate.
    """
    if isinstance(text, Rate):
        return text
    if not isinstance(text, str):
        raise ConfigError(parameter, text, "expected a rate string like '1000/15min' or a Rate")
    match = _RATE_RE.match(text)
    if match is None:
        raise ConfigError(
            parameter,
            text,
            "expected 'N/period' like '10/second', '1000/15min', '50 per 15 minutes' or '5/250ms'",
        )
    unit = _UNITS.get(match["unit"].lower())
    if unit is None:
        raise ConfigError(
            parameter, text, f"unknown unit {match['unit']!r}; use ms, s, min, h, d or w"
        )
    amount = Fraction(match["amount"]) if match["amount"] else Fraction(1)
    if len(match["limit"]) > 16:
        raise ConfigError(parameter, text, f"the limit must be at most {MAX_LIMIT}")
    try:
        return Rate(int(match["limit"]), float(amount * unit))
    except (ConfigError, OverflowError) as exc:
        reason = exc.reason if isinstance(exc, ConfigError) else "the period is too long"
        raise ConfigError(parameter, text, reason) from None
