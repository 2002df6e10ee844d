"""Hypothesis strategies for rates, rate strings and request traces.

Times are multiples of 1/64 s and periods are integers or halves, so every
clock reading and window boundary is exact in binary floating point: then the
float implementation and the rational reference models may only disagree at
an exact tie, which both resolve as "allowed".
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from hypothesis import strategies as st

from sentia_core.policies._ratelimit import Rate

TICK = 1 / 64

UNIT_WORDS = {
    "ms": ["ms", "msec", "millisecond", "milliseconds"],
    "s": ["s", "sec", "secs", "second", "seconds"],
    "min": ["m", "min", "mins", "minute", "minutes"],
    "h": ["h", "hr", "hrs", "hour", "hours"],
    "d": ["d", "day", "days"],
    "w": ["w", "week", "weeks"],
}
UNIT_SECONDS = {"ms": 0.001, "s": 1, "min": 60, "h": 3600, "d": 86400, "w": 604800}

periods = st.sampled_from([0.5, 1.0, 2.0, 3.0, 10.0, 60.0, 900.0])


@st.composite
def rates(draw: st.DrawFn) -> Rate:
    """A small rate with an exact period (limit 1..40)."""
    period = draw(periods)
    limit = draw(st.integers(1, 40))
    return Rate(limit, period)


@dataclass(frozen=True)
class Step:
    """One request in a trace: wait ``ticks`` 1/64 s, then a hit (or peek) of ``cost``."""

    ticks: int
    cost: int
    peek: bool = False


@st.composite
def traces(draw: st.DrawFn, rate: Rate, *, max_size: int = 60) -> list[Step]:
    """Requests against one key: bursts (0 wait), small gaps and long gaps."""
    period_ticks = int(rate.period / TICK)
    gap = st.one_of(
        st.just(0),
        st.integers(0, max(1, period_ticks // rate.limit)),
        st.integers(0, 3 * period_ticks),
    )
    cost = st.one_of(st.just(1), st.integers(0, rate.limit + 2))
    peek = st.sampled_from([False, False, False, False, True])
    step = st.builds(Step, ticks=gap, cost=cost, peek=peek)
    return draw(st.lists(step, min_size=1, max_size=max_size))


@st.composite
def rate_texts(draw: st.DrawFn) -> tuple[str, int, float]:
    """A valid rate string in any accepted spelling, with its limit and exact period."""
    limit = draw(st.integers(0, 1000))
    unit = draw(st.sampled_from(sorted(UNIT_WORDS)))
    word = draw(st.sampled_from(UNIT_WORDS[unit]))
    amount = draw(st.one_of(st.none(), st.integers(1, 500)))
    if unit == "ms":
        amount = draw(st.integers(1, 500)) if amount is None else amount
    sep = draw(st.sampled_from(["/", " / ", " per ", "per"]))
    if sep == "per" and amount is None:
        sep = " per "
    space = draw(st.sampled_from(["", " "]))
    text = f"{limit}{sep}{'' if amount is None else amount}{space}{word}"
    text = draw(st.sampled_from([text, text.upper(), f"  {text}  "]))
    seconds = Fraction(UNIT_SECONDS[unit]) if unit != "ms" else Fraction(1, 1000)
    period = float((amount or 1) * seconds)
    return text, limit, period
