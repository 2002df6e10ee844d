"""A mergeable quantile sketch with a relative-error guarantee (DDSketch-style).

Theory of operation: with ``gamma = (1 + a) / (1 - a)`` for a relative accuracy
``a``, a positive value ``x`` falls in bucket ``k = ceil(log2(x) / log2(gamma))``,
which covers ``(gamma**(k-1), gamma**k]``. The bucket is reported as
``gamma**(k-1) * (1 + a)``, which is within ``a`` (relative) of every value in
the bucket, so any quantile read from the bucket counts is within ``a`` of the
exact quantile (Masson, Rim & Lee, VLDB 2019). Negative values use a mirror
store on ``|x|``; zero has its own count. Two sketches with the same accuracy
merge by adding bucket counts, so merging equals adding every value to one
sketch. Memory is bounded by ``max_buckets`` per sign: when a store would hold
more, its lowest-magnitude buckets are folded into one ("collapsing lowest",
as DDSketch does), which keeps the guarantee for every quantile whose value
lies above the folded range (the tail one usually cares about) and degrades
only the smallest values.

The quantile convention is DDSketch's: ``quantile(q)`` estimates the value of
rank ``floor(q * (n - 1))`` in sorted order (0-based), clamped to the exact
``min``/``max``. NaN and infinities are not sketched: :meth:`add_batch` reports
how many it skipped.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import repeat
from operator import mul
from typing import Any

from sentia_core.errors import MetricError

__all__ = ["FrozenSketch", "QuantileSketch"]

_INF = math.inf
# log2, not log: the same bucket index, and several times faster on some libms
_log2 = math.log2
_ceil = math.ceil
#: Keys beyond this magnitude cannot come from a finite float at any accuracy
#: we accept (1e-6 .. 0.5); a deserialized sketch holding one is corrupt.
_MAX_KEY = 1 << 40


class QuantileSketch:
    """Quantiles within a relative error, in bounded memory, mergeable.

    Args:
        relative_accuracy: the guaranteed relative error of every quantile,
            e.g. 0.01 for 1 % (between 1e-6 and 0.5).
        max_buckets: the most buckets kept per sign (positive, negative);
            beyond it the lowest-magnitude buckets are folded together.

    Raises:
        MetricError: an argument is out of range.

    Not thread-safe by itself: :class:`~sentia_core.monitor.Histogram` guards
    its sketches with a lock.
    """

    __slots__ = (
        "_count",
        "_gamma",
        "_ln_gamma",
        "_max",
        "_max_buckets",
        "_min",
        "_mult",
        "_neg",
        "_pos",
        "_relative_accuracy",
        "_sum",
        "_zero",
    )

    def __init__(self, relative_accuracy: float = 0.01, max_buckets: int = 2048) -> None:
        if (
            isinstance(relative_accuracy, bool)
            or not isinstance(relative_accuracy, (int, float))
            or not 1e-6 <= relative_accuracy <= 0.5
        ):
            raise MetricError(
                f"relative_accuracy must be a number in 1e-6..0.5, got {relative_accuracy!r}"
            )
        if isinstance(max_buckets, bool) or not isinstance(max_buckets, int) or max_buckets < 2:
            raise MetricError(f"max_buckets must be an integer >= 2, got {max_buckets!r}")
        self._relative_accuracy = float(relative_accuracy)
        self._max_buckets = max_buckets
        self._gamma = (1.0 + relative_accuracy) / (1.0 - relative_accuracy)
        self._ln_gamma = math.log(self._gamma)
        self._mult = 1.0 / math.log2(self._gamma)
        self._pos: Counter[int] = Counter()
        self._neg: Counter[int] = Counter()
        self._zero = 0
        self._count = 0
        self._sum = 0.0
        self._min = _INF
        self._max = -_INF

    # ------------------------------------------------------------------ adding

    def add(self, value: float) -> bool:
        """Add one value; returns False (and adds nothing) for NaN or an infinity."""
        return self.add_batch([float(value)]) == 0

    def add_batch(self, values: Sequence[float]) -> int:
        """Add many floats at once; returns how many were skipped (NaN, infinities).

        The fast path (all values positive and finite, which one ``sum`` and
        one ``min`` prove) runs the bucket index arithmetic in C through
        ``map``; anything else goes value by value.
        """
        n = len(values)
        if not n:
            return 0
        total = sum(values)
        lo = min(values)
        # a NaN or an infinity makes the sum NaN or infinite: then go value by value
        if lo > 0.0 and total < _INF:
            self._pos.update(map(_ceil, map(mul, map(_log2, values), repeat(self._mult))))
            self._count += n
            self._sum += total
            self._min = min(self._min, lo)
            hi = max(values)
            self._max = max(self._max, hi)
            if len(self._pos) > self._max_buckets:
                _collapse(self._pos, self._max_buckets)
            return 0
        return self._add_slow(values)

    def _add_slow(self, values: Iterable[float]) -> int:
        skipped = 0
        mult = self._mult
        pos = self._pos
        neg = self._neg
        for v in values:
            if v > 0.0:
                if v == _INF:
                    skipped += 1
                    continue
                pos[_ceil(_log2(v) * mult)] += 1
            elif v < 0.0:
                if v == -_INF:
                    skipped += 1
                    continue
                neg[_ceil(_log2(-v) * mult)] += 1
            elif v == 0.0:
                self._zero += 1
            else:  # NaN
                skipped += 1
                continue
            self._count += 1
            self._sum += v
            self._min = min(self._min, v)
            self._max = max(self._max, v)
        if len(pos) > self._max_buckets:
            _collapse(pos, self._max_buckets)
        if len(neg) > self._max_buckets:
            _collapse(neg, self._max_buckets)
        return skipped

    def merge(self, other: QuantileSketch) -> None:
        """Add every value ``other`` holds (``other`` is unchanged).

        Raises:
            MetricError: the sketches have different relative accuracies.
        """
        if other._gamma != self._gamma:
            raise MetricError(
                "cannot merge sketches of different relative accuracy "
                f"({self._relative_accuracy} and {other._relative_accuracy})"
            )
        if not other._count:
            return
        self._pos.update(other._pos)
        self._neg.update(other._neg)
        self._zero += other._zero
        self._count += other._count
        self._sum += other._sum
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)
        if len(self._pos) > self._max_buckets:
            _collapse(self._pos, self._max_buckets)
        if len(self._neg) > self._max_buckets:
            _collapse(self._neg, self._max_buckets)

    def freeze(self) -> FrozenSketch:
        """A compact read-only copy (about 12 bytes per bucket instead of ~100)."""
        return FrozenSketch(self)

    def merge_frozen(self, other: FrozenSketch) -> None:
        """Add every value a :class:`FrozenSketch` of the same accuracy holds."""
        if other.gamma != self._gamma:
            raise MetricError("cannot merge sketches of different relative accuracy")
        if not other.count:
            return
        for store, keys, counts in (
            (self._pos, other.pos_keys, other.pos_counts),
            (self._neg, other.neg_keys, other.neg_counts),
        ):
            get = store.get
            for key, c in zip(keys, counts, strict=True):
                store[key] = get(key, 0) + c
        self._zero += other.zero
        self._count += other.count
        self._sum += other.sum
        self._min = min(self._min, other.min)
        self._max = max(self._max, other.max)
        if len(self._pos) > self._max_buckets:
            _collapse(self._pos, self._max_buckets)
        if len(self._neg) > self._max_buckets:
            _collapse(self._neg, self._max_buckets)

    def copy(self) -> QuantileSketch:
        """An independent copy."""
        new = QuantileSketch.__new__(QuantileSketch)
        new._relative_accuracy = self._relative_accuracy
        new._max_buckets = self._max_buckets
        new._gamma = self._gamma
        new._ln_gamma = self._ln_gamma
        new._mult = self._mult
        new._pos = self._pos.copy()
        new._neg = self._neg.copy()
        new._zero = self._zero
        new._count = self._count
        new._sum = self._sum
        new._min = self._min
        new._max = self._max
        return new

    def empty_like(self) -> QuantileSketch:
        """A new empty sketch with the same accuracy and bucket limit."""
        return QuantileSketch(self._relative_accuracy, self._max_buckets)

    # ------------------------------------------------------------------ reading

    @property
    def relative_accuracy(self) -> float:
        """The guaranteed relative error of quantiles."""
        return self._relative_accuracy

    @property
    def max_buckets(self) -> int:
        """The most buckets kept per sign."""
        return self._max_buckets

    @property
    def count(self) -> int:
        """How many values were added."""
        return self._count

    @property
    def sum(self) -> float:
        """The sum of the values (0.0 when empty)."""
        return self._sum

    @property
    def min(self) -> float | None:
        """The smallest value exactly, or None when empty."""
        return self._min if self._count else None

    @property
    def max(self) -> float | None:
        """The largest value exactly, or None when empty."""
        return self._max if self._count else None

    @property
    def mean(self) -> float | None:
        """The arithmetic mean, or None when empty."""
        return self._sum / self._count if self._count else None

    @property
    def bucket_count(self) -> int:
        """Buckets in use (positive + negative + the zero bucket if used)."""
        return len(self._pos) + len(self._neg) + (1 if self._zero else 0)

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def _value(self, key: int) -> float:
        # lower bound of bucket ``key`` times (1 + a); exp() of a finite float's
        # log cannot overflow, the product may round to inf and is clamped.
        try:
            return math.exp((key - 1) * self._ln_gamma) * (1.0 + self._relative_accuracy)
        except OverflowError:
            return _INF

    def quantile(self, q: float) -> float | None:
        """The estimated ``q``-quantile (0 <= q <= 1), or None when empty.

        Raises:
            MetricError: ``q`` is not within 0..1.
        """
        return self.quantiles((q,))[0]

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """Several quantiles in one pass over the buckets (same rules as :meth:`quantile`)."""
        for q in qs:
            if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0.0 <= q <= 1.0:
                raise MetricError(f"quantile must be between 0 and 1, got {q!r}")
        if not self._count:
            return [None] * len(qs)
        order = sorted(range(len(qs)), key=lambda i: qs[i])
        out: list[float | None] = [None] * len(qs)
        walk = self._walk()
        cum, value = next(walk)
        n1 = self._count - 1
        for i in order:
            rank = math.floor(qs[i] * n1)
            if rank == 0:
                out[i] = self._min  # the extremes are known exactly
            elif rank == n1:
                out[i] = self._max
            else:
                while cum <= rank:
                    cum, value = next(walk)
                out[i] = min(max(value, self._min), self._max)
        return out

    def _walk(self) -> Iterator[tuple[int, float]]:
        """(cumulative count, bucket value) from the smallest value up."""
        cum = 0
        for key in sorted(self._neg, reverse=True):
            cum += self._neg[key]
            yield cum, -self._value(key)
        if self._zero:
            cum += self._zero
            yield cum, 0.0
        for key in sorted(self._pos):
            cum += self._pos[key]
            yield cum, self._value(key)

    def rank(self, value: float) -> int:
        """Approximately how many values are <= ``value`` (see :meth:`ranks`)."""
        return self.ranks((value,))[0]

    def ranks(self, bounds: Sequence[float]) -> list[int]:
        """For each bound, approximately how many values are <= it, in one pass.

        A bucket counts as <= a bound when its representative value is, so a
        value is misplaced only when it lies within the relative accuracy of
        the bound. Used to render cumulative ``le`` buckets.
        """
        order = sorted(range(len(bounds)), key=lambda i: bounds[i])
        out = [0] * len(bounds)
        walk = self._walk()
        total = 0
        pending: tuple[int, float] | None = next(walk, None)
        for i in order:
            bound = bounds[i]
            while pending is not None and pending[1] <= bound:
                total = pending[0]
                pending = next(walk, None)
            out[i] = total
        return out

    # ------------------------------------------------------------------ (de)serializing

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; :meth:`from_dict` rebuilds it (e.g. in another process)."""
        return {
            "relative_accuracy": self._relative_accuracy,
            "max_buckets": self._max_buckets,
            "count": self._count,
            "sum": self._sum,
            "min": self.min,
            "max": self.max,
            "zero": self._zero,
            "positive": sorted(self._pos.items()),
            "negative": sorted(self._neg.items()),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantileSketch:
        """Rebuild a sketch from :meth:`to_dict` output, validating every field.

        The input may come from anywhere (Redis, a file, the network): it is
        only read as numbers and lists, never executed.

        Raises:
            MetricError: the data is malformed or inconsistent.
        """
        try:
            sketch = cls(data["relative_accuracy"], data["max_buckets"])
            stores = (("positive", sketch._pos), ("negative", sketch._neg))
            total = _count_value(data["zero"])
            sketch._zero = total
            for field, store in stores:
                items = data[field]
                if not isinstance(items, list):
                    raise MetricError(f"{field} must be a list of [key, count] pairs")
                for item in items:
                    if not isinstance(item, (list, tuple)) or len(item) != 2:
                        raise MetricError(f"{field} must be a list of [key, count] pairs")
                    key, count = item
                    if isinstance(key, bool) or not isinstance(key, int) or abs(key) > _MAX_KEY:
                        raise MetricError(f"bad bucket key {key!r}")
                    c = _count_value(count)
                    if key in store:
                        raise MetricError(f"duplicate bucket key {key!r}")
                    if c:
                        store[key] = c
                        total += c
            if total != _count_value(data["count"]):
                raise MetricError("bucket counts do not add up to count")
            sketch._count = total
            if total:
                lo, hi, s = (_finite(data[k], k) for k in ("min", "max", "sum"))
                if lo > hi:
                    raise MetricError("min is greater than max")
                sketch._min, sketch._max, sketch._sum = lo, hi, s
            for store in (sketch._pos, sketch._neg):
                if len(store) > sketch._max_buckets:
                    _collapse(store, sketch._max_buckets)
            return sketch
        except MetricError:
            raise
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise MetricError(f"malformed sketch data: {exc!r}") from None

    def __repr__(self) -> str:
        return (
            f"QuantileSketch(relative_accuracy={self._relative_accuracy}, "
            f"count={self._count}, buckets={self.bucket_count})"
        )


class FrozenSketch:
    """A read-only, compact snapshot of a :class:`QuantileSketch` (bucket keys and
    counts in two arrays); windows keep their retired slots in this form."""

    __slots__ = (
        "count",
        "gamma",
        "max",
        "min",
        "neg_counts",
        "neg_keys",
        "pos_counts",
        "pos_keys",
        "sum",
        "zero",
    )

    def __init__(self, sketch: QuantileSketch) -> None:
        self.gamma = sketch._gamma
        self.count = sketch._count
        self.sum = sketch._sum
        self.min = sketch._min
        self.max = sketch._max
        self.zero = sketch._zero
        self.pos_keys = array("q", sketch._pos.keys())
        self.pos_counts = array("q", sketch._pos.values())
        self.neg_keys = array("q", sketch._neg.keys())
        self.neg_counts = array("q", sketch._neg.values())

    def __len__(self) -> int:
        return self.count


def _count_value(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MetricError(f"bad count {value!r}")
    return value


def _finite(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MetricError(f"{field} must be a finite number, got {value!r}")
    return float(value)


def _collapse(store: Counter[int], max_buckets: int) -> None:
    """Fold the lowest keys of ``store`` into one so that it keeps ``max_buckets`` keys."""
    keys = sorted(store)
    excess = len(keys) - max_buckets
    target = keys[excess]
    folded = 0
    for key in keys[:excess]:
        folded += store.pop(key)
    store[target] += folded
