"""Hypothesis strategies shared by the policies tests."""

from __future__ import annotations

from hypothesis import strategies as st

from sentia_core.policies import ExponentialBackoff, FixedBackoff, LinearBackoff

seconds = st.floats(min_value=0.0, max_value=1e4, allow_nan=False, allow_infinity=False)
positive_seconds = st.floats(min_value=1e-6, max_value=1e4, allow_nan=False)
retry_numbers = st.integers(min_value=1, max_value=5000)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


@st.composite
def exponential_backoffs(draw: st.DrawFn) -> ExponentialBackoff:
    initial = draw(st.floats(min_value=1e-4, max_value=10.0))
    multiplier = draw(st.floats(min_value=1.0, max_value=10.0))
    max_delay = draw(st.floats(min_value=initial, max_value=1e4))
    jitter = draw(st.sampled_from(["full", "equal", "none"]))
    return ExponentialBackoff(initial, multiplier, max_delay, jitter)  # type: ignore[arg-type]


@st.composite
def linear_backoffs(draw: st.DrawFn) -> LinearBackoff:
    initial = draw(st.floats(min_value=0.0, max_value=10.0))
    increment = draw(st.floats(min_value=0.0, max_value=100.0))
    max_delay = draw(st.floats(min_value=initial, max_value=1e4))
    return LinearBackoff(initial, increment, max_delay)


backoffs = st.one_of(exponential_backoffs(), linear_backoffs(), seconds.map(FixedBackoff))

#: hostile "retry_after" values a server or a buggy exception might carry.
hostile_hints = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.lists(st.integers(), max_size=3),
)
