"""Hypothesis strategies for breaker configurations and outcome sequences."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

#: Times advance in quarter seconds so that the Lua store's integer
#: milliseconds and the core's float seconds agree exactly.
QUARTERS = st.integers(min_value=0, max_value=80).map(lambda q: q / 4)

OUTCOMES = st.sampled_from(["success", "failure", "ignored"])


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments for CircuitBreaker: small windows so rules fire often."""
    window_type = draw(st.sampled_from(["count", "time"]))
    window_size = draw(st.integers(1, 8))
    if window_type == "count":
        minimum_calls = draw(st.integers(1, window_size))
    else:
        minimum_calls = draw(st.integers(1, 10))
    half_open_max_calls = draw(st.integers(1, 3))
    return {
        "window_type": window_type,
        "window_size": window_size,
        "minimum_calls": minimum_calls,
        "failure_rate_threshold": draw(st.none() | st.sampled_from([0.25, 0.5, 0.75, 1.0])),
        "consecutive_failures": draw(st.none() | st.integers(1, 5)),
        "slow_call_duration": draw(st.none() | st.just(1.0)),
        "slow_call_rate_threshold": draw(st.sampled_from([0.5, 1.0])),
        "reset_timeout": draw(st.sampled_from([1.0, 2.5, 5.0])),
        "reset_timeout_multiplier": draw(st.sampled_from([1.0, 2.0])),
        "max_reset_timeout": 12.0,
        "half_open_max_calls": half_open_max_calls,
        "success_threshold": draw(st.integers(1, 3)),
        "half_open_timeout": draw(st.sampled_from([3.0, 8.0])),
    }


#: Replies shaped like the script's (eleven '|'-separated fields) with hostile content.
PIPED = st.lists(
    st.binary(max_size=6) | st.integers(-5, 10**15).map(lambda i: str(i).encode()),
    min_size=9,
    max_size=13,
).map(b"|".join)

#: Arbitrary (hostile) replies for the store reply parser.
JUNK = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.binary(max_size=12)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=12),
    max_leaves=15,
)
