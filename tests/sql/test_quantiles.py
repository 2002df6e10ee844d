"""Quantiles: a bounded histogram whose quantiles stay within 1 % of a recorded value."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from sentia_core.sql._stats import GAMMA, MAX_VALUE, Quantiles

durations = st.floats(min_value=2e-9, max_value=1e4, allow_nan=False, allow_infinity=False)


def _reference(values: list[float], q: float) -> float:
    """The exact quantile by nearest rank: the ceil(q*n)-th smallest value."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@given(
    st.lists(durations, min_size=1, max_size=300),
    st.sampled_from([0.0, 0.5, 0.9, 0.95, 0.99, 1.0]),
)
def test_quantiles_are_within_one_percent_of_the_exact_value(values: list[float], q: float) -> None:
    h = Quantiles()
    for v in values:
        h.add(v)
    exact = _reference(values, q)
    got = h.quantile(q)
    assert abs(got - exact) <= exact * 0.0101, (got, exact)


@given(st.lists(st.one_of(durations, st.just(0.0)), max_size=300))
def test_bulk_adding_matches_adding_one_by_one(values: list[float]) -> None:
    one, bulk = Quantiles(), Quantiles()
    for v in values:
        one.add(v)
    bulk.add_many(list(values))
    assert one.zeros == bulk.zeros
    # a value sitting exactly on a bucket edge may land on either side of it
    assert one.count == bulk.count
    for q in (0.5, 0.95, 0.99):
        a, b = one.quantile(q), bulk.quantile(q)
        assert abs(a - b) <= max(a, b) * (GAMMA - 1) * 1.01


def test_an_empty_histogram_reports_zero() -> None:
    assert Quantiles().quantile(0.99) == 0.0
    assert Quantiles().count == 0


def test_zero_durations_are_counted_and_reported_as_zero() -> None:
    h = Quantiles()
    for _ in range(9):
        h.add(0.0)
    h.add(1.0)
    assert h.count == 10
    assert h.quantile(0.5) == 0.0
    assert abs(h.quantile(1.0) - 1.0) <= 0.01


def test_the_histogram_stays_bounded_whatever_it_is_fed() -> None:
    h = Quantiles()
    v = 1e-9
    while v < 1e9:
        h.add(v)
        v *= 1.001
    # 1 ns .. 1 day at 2 % per bucket: about 1 600 buckets at most
    assert len(h) <= 1 + math.ceil(math.log(MAX_VALUE / 1e-9) / math.log(GAMMA))
    assert h.quantile(1.0) <= MAX_VALUE * GAMMA


def test_merge_adds_both_histograms() -> None:
    a, b = Quantiles(), Quantiles()
    for i in range(1, 101):
        a.add(i / 1000)
        b.add(i / 100)
    a.merge(b)
    assert a.count == 200
    assert abs(a.quantile(1.0) - 1.0) <= 0.01
