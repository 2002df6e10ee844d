"""QuantileSketch: the relative-error guarantee, merging, bounded memory, safe decoding."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentia_core.errors import MetricError
from sentia_core.monitor import QuantileSketch

from .strategies import accuracies, positive_values, quantiles, signed_values


def exact_quantile(values: list[float], q: float) -> float:
    """The value of rank floor(q * (n - 1)): the convention the sketch estimates."""
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def within(estimate: float, exact: float, accuracy: float) -> bool:
    return abs(estimate - exact) <= accuracy * abs(exact) * (1 + 1e-9) + 1e-300


@given(values=signed_values, q=quantiles, accuracy=accuracies)
def test_every_quantile_is_within_the_relative_accuracy(
    values: list[float], q: float, accuracy: float
) -> None:
    sketch = QuantileSketch(accuracy)
    sketch.add_batch(values)
    estimate = sketch.quantile(q)
    assert estimate is not None
    assert within(estimate, exact_quantile(values, q), accuracy)


@given(values=positive_values, accuracy=accuracies)
def test_batch_and_one_by_one_adding_agree(values: list[float], accuracy: float) -> None:
    batch, single = QuantileSketch(accuracy), QuantileSketch(accuracy)
    batch.add_batch(values)
    for v in values:
        single.add(v)
    assert batch.to_dict()["positive"] == single.to_dict()["positive"]
    assert (batch.count, batch.min, batch.max) == (single.count, single.min, single.max)
    assert batch.sum == pytest.approx(single.sum)


@settings(max_examples=60)
@given(parts=st.lists(signed_values, min_size=1, max_size=3), accuracy=accuracies)
def test_merging_equals_adding_everything_to_one_sketch(
    parts: list[list[float]], accuracy: float
) -> None:
    merged = QuantileSketch(accuracy)
    for part in parts:
        piece = QuantileSketch(accuracy)
        piece.add_batch(part)
        merged.merge(piece)
    whole = QuantileSketch(accuracy)
    whole.add_batch([v for part in parts for v in part])
    a, b = merged.to_dict(), whole.to_dict()
    assert a["sum"] == pytest.approx(b["sum"], rel=1e-9, abs=1e-6)
    a.pop("sum"), b.pop("sum")
    assert a == b
    qs = [0.0, 0.1, 0.5, 0.9, 0.99, 1.0]
    assert merged.quantiles(qs) == whole.quantiles(qs)


def test_quantiles_of_lognormal_latencies_are_within_one_percent() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(-3, 1.2) for _ in range(50_000)]
    sketch = QuantileSketch()
    sketch.add_batch(values)
    for q in (0.5, 0.9, 0.95, 0.99, 0.999):
        estimate = sketch.quantile(q)
        assert estimate is not None
        assert within(estimate, exact_quantile(values, q), 0.01)
    assert sketch.bucket_count < 800  # 12 orders of magnitude would still fit in 2048


def test_extremes_are_exact() -> None:
    sketch = QuantileSketch()
    sketch.add_batch([3.3, -7.25, 0.0, 1e-9, 12345.678])
    assert sketch.quantile(0.0) == -7.25
    assert sketch.quantile(1.0) == 12345.678
    assert (sketch.min, sketch.max) == (-7.25, 12345.678)


def test_empty_sketch_reports_none() -> None:
    sketch = QuantileSketch()
    assert sketch.quantile(0.5) is None
    assert (sketch.count, sketch.sum, sketch.min, sketch.max, sketch.mean) == (
        0,
        0.0,
        None,
        None,
        None,
    )
    assert not sketch


def test_nan_and_infinities_are_skipped_and_reported() -> None:
    sketch = QuantileSketch()
    skipped = sketch.add_batch([1.0, math.nan, math.inf, -math.inf, 2.0])
    assert skipped == 3
    assert sketch.count == 2
    assert sketch.add(math.nan) is False
    assert sketch.add(4.0) is True


def test_a_nan_hidden_from_min_and_max_does_not_corrupt_the_fast_path() -> None:
    sketch = QuantileSketch()
    # min() of [1, nan, 0.5] skips the NaN; the sum does not
    assert sketch.add_batch([1.0, math.nan, 0.5]) == 1
    assert sketch.count == 2
    assert sketch.sum == 1.5


def test_extreme_magnitudes_do_not_crash() -> None:
    sketch = QuantileSketch()
    sketch.add_batch([5e-324, 1.7976931348623157e308, -1.7976931348623157e308, 1e-300])
    assert sketch.quantile(1.0) == 1.7976931348623157e308
    assert sketch.quantile(0.0) == -1.7976931348623157e308
    for q in (0.25, 0.5, 0.75):
        v = sketch.quantile(q)
        assert v is not None and math.isfinite(v)


def test_memory_is_bounded_by_collapsing_the_lowest_buckets() -> None:
    sketch = QuantileSketch(0.01, max_buckets=64)
    values = [10 ** (i / 50) for i in range(-500, 500)]  # 20 orders of magnitude
    sketch.add_batch(values)
    assert len(sketch.to_dict()["positive"]) == 64
    # the top of the distribution keeps its guarantee
    for q in (0.99, 0.999, 1.0):
        estimate = sketch.quantile(q)
        assert estimate is not None
        assert within(estimate, exact_quantile(values, q), 0.01)
    assert sketch.count == len(values)


def test_merging_sketches_of_different_accuracy_is_refused() -> None:
    with pytest.raises(MetricError, match="different relative accuracy"):
        QuantileSketch(0.01).merge(QuantileSketch(0.02))


@pytest.mark.parametrize(
    ("accuracy", "buckets"),
    [(0.0, 10), (0.6, 10), (math.nan, 10), (0.01, 1), (0.01, 2.5), (True, 10)],
)
def test_bad_parameters_are_refused(accuracy: float, buckets: int) -> None:
    with pytest.raises(MetricError):
        QuantileSketch(accuracy, buckets)


def test_bad_quantiles_are_refused() -> None:
    sketch = QuantileSketch()
    sketch.add(1.0)
    for q in (-0.1, 1.5, math.nan):
        with pytest.raises(MetricError):
            sketch.quantile(q)


@given(values=signed_values)
def test_serialization_round_trips_through_json(values: list[float]) -> None:
    sketch = QuantileSketch()
    sketch.add_batch(values)
    copy = QuantileSketch.from_dict(json.loads(json.dumps(sketch.to_dict())))
    assert copy.to_dict() == sketch.to_dict()
    assert copy.quantiles([0.1, 0.5, 0.99]) == sketch.quantiles([0.1, 0.5, 0.99])


def _valid() -> dict[str, object]:
    sketch = QuantileSketch()
    sketch.add_batch([1.0, 2.0, -3.0, 0.0])
    return sketch.to_dict()


@pytest.mark.parametrize(
    "corrupt",
    [
        {"count": 99},
        {"count": -1},
        {"positive": "x"},
        {"positive": [[1, 2, 3]]},
        {"positive": [["1", 2]]},
        {"positive": [[1, -2]]},
        {"positive": [[1 << 50, 1]]},
        {"positive": [[1, 1], [1, 1]]},
        {"min": math.nan},
        {"min": 5.0, "max": 1.0},
        {"relative_accuracy": "0.01"},
        {"max_buckets": 0},
        {"zero": 1.5},
        {"sum": "__import__('os')"},
    ],
)
def test_corrupt_payloads_raise_metric_error_only(corrupt: dict[str, object]) -> None:
    data = {**_valid(), **corrupt}
    with pytest.raises(MetricError):
        QuantileSketch.from_dict(data)


def test_missing_fields_raise_metric_error() -> None:
    data = _valid()
    del data["zero"]
    with pytest.raises(MetricError, match="malformed"):
        QuantileSketch.from_dict(data)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=60)
@given(field=st.sampled_from(sorted(_valid())), value=_json)
def test_any_corrupted_field_raises_metric_error_or_decodes_consistently(
    field: str, value: object
) -> None:
    data = {**_valid(), field: value}
    try:
        sketch = QuantileSketch.from_dict(data)
    except MetricError:
        return
    assert (
        sketch.count
        == sum(c for _, c in sketch.to_dict()["positive"])
        + sum(c for _, c in sketch.to_dict()["negative"])
        + sketch.to_dict()["zero"]
    )


def test_rank_counts_values_at_or_below_a_bound() -> None:
    sketch = QuantileSketch()
    sketch.add_batch([0.001, 0.01, 0.1, 1.0, 10.0])
    assert sketch.rank(0.05) == 2
    assert sketch.rank(100.0) == 5
    assert sketch.rank(0.0001) == 0


def test_copy_is_independent() -> None:
    a = QuantileSketch()
    a.add(1.0)
    b = a.copy()
    b.add(2.0)
    assert (a.count, b.count) == (1, 2)


@given(values=signed_values)
def test_a_frozen_sketch_merges_like_the_original(values: list[float]) -> None:
    sketch = QuantileSketch()
    sketch.add_batch(values)
    a, b = QuantileSketch(), QuantileSketch()
    a.add_batch([1.0, -2.0])
    b.add_batch([1.0, -2.0])
    a.merge(sketch)
    b.merge_frozen(sketch.freeze())
    assert a.to_dict() == b.to_dict()
    assert len(sketch.freeze()) == sketch.count
    with pytest.raises(MetricError):
        QuantileSketch(0.05).merge_frozen(sketch.freeze())


@given(values=signed_values, qs=st.lists(quantiles, min_size=2, max_size=8))
def test_quantiles_never_decrease_with_q(values: list[float], qs: list[float]) -> None:
    # aioprometheus#10 reported a p99 below the p90; a bucket walk cannot do that
    sketch = QuantileSketch()
    sketch.add_batch(values)
    ordered = sorted(qs)
    estimates = sketch.quantiles(ordered)
    assert estimates == sorted(estimates)  # type: ignore[type-var]
    assert estimates == [sketch.quantile(q) for q in ordered]
