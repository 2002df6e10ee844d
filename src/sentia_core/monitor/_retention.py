"""History: periodic snapshots in fixed-size ring buffers, downsampled by tier.

Theory of operation: a tier has a resolution ``r`` and a length ``L`` (its
span is ``r * L`` seconds). Wall time is cut into buckets ``b = floor(t / r)``;
bucket ``b`` lives at ring position ``b % L``. Every sample is added to the
current bucket of *every* tier at once (sum, count, min, max), so the coarse
tiers are downsampled as they go and no cascade job exists. When a tier
enters a new bucket, the position it reuses is cleared for every series; a
position whose stored bucket id is not in the last ``L`` buckets is stale
and is never returned. Storage is one ``array('d')`` of ``4 * L`` doubles per
tier per series, allocated when the series is first sampled, so memory is
fixed: ``32 * sum(L)`` bytes per series (about 90 KB with the default tiers)
and at most ``max_series`` series.
"""

from __future__ import annotations

import math
import threading
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter

from sentia_core.errors import ConfigError

__all__ = ["DEFAULT_RETENTION", "History", "HistoryKey", "HistoryPoint", "normalize_retention"]

#: (resolution, span) in seconds: 10 s for an hour, 1 min for a day, 10 min for 7 days.
DEFAULT_RETENTION: tuple[tuple[float, float], ...] = (
    (10.0, 3600.0),
    (60.0, 86400.0),
    (600.0, 7 * 86400.0),
)

#: (metric name, sorted label pairs, stat) — e.g. ``("http_seconds", (("route", "/"),), "p95")``.
HistoryKey = tuple[str, tuple[tuple[str, str], ...], str]

_NAN = math.nan
_EMPTY = array("d", [0.0, 0.0, _NAN, _NAN])


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """One bucket of history.

    Attributes:
        time: wall-clock start of the bucket (seconds since the epoch).
        value: the mean of the samples in the bucket; for counters (and other
            monotonic totals) the last, i.e. largest, sample.
        min: the smallest sample in the bucket.
        max: the largest sample in the bucket.
        samples: how many samples the bucket holds.
        resolution: the bucket's width in seconds.
    """

    time: float
    value: float
    min: float
    max: float
    samples: int
    resolution: float


def normalize_retention(value: object) -> tuple[tuple[float, float], ...]:
    """Validate ``retention``: seconds (default tiers capped there) or (resolution, span) pairs.

    Raises:
        ConfigError: not a positive number nor a list of increasing (resolution, span) pairs.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value <= 0:
            raise ConfigError("retention", value, "must be a positive number of seconds")
        tiers: list[tuple[float, float]] = []
        for res, default_span in DEFAULT_RETENTION:
            span = min(default_span, float(value))
            if span < res:
                continue
            if tiers and span <= tiers[-1][1]:
                continue
            tiers.append((res, span))
        if not tiers:
            tiers.append((float(value), float(value)))
        return tuple(tiers)
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(
            "retention", value, "must be seconds or a non-empty list of (resolution, span)"
        )
    out: list[tuple[float, float]] = []
    for item in value:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise ConfigError("retention", value, "each tier must be (resolution, span) seconds")
        res, span = item
        for v in (res, span):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf:
                raise ConfigError("retention", value, "resolution and span must be positive")
        if span < res:
            raise ConfigError("retention", value, "a tier's span must be >= its resolution")
        if span / res > 1_000_000:
            raise ConfigError("retention", value, "a tier may hold at most 1e6 points")
        if out and (res <= out[-1][0] or span <= out[-1][1]):
            raise ConfigError(
                "retention", value, "tiers must grow in resolution and span, finest first"
            )
        out.append((float(res), float(span)))
    return tuple(out)


class _Tier:
    __slots__ = ("ids", "length", "resolution")

    def __init__(self, resolution: float, span: float) -> None:
        self.resolution = resolution
        self.length = max(1, math.ceil(span / resolution))
        self.ids = [-1] * self.length


class History:
    """Ring-buffered history of scalar series (see the module docstring).

    Args:
        tiers: (resolution, span) pairs, finest first (see :func:`normalize_retention`).
        max_series: the most series kept; samples of further series are dropped
            and counted in :attr:`dropped`.
    """

    def __init__(self, tiers: Sequence[tuple[float, float]], max_series: int) -> None:
        self._tiers = [_Tier(r, s) for r, s in tiers]
        self.max_series = max_series
        self._data: dict[HistoryKey, list[array[float]]] = {}
        self._monotonic: dict[HistoryKey, bool] = {}
        self._lock = threading.Lock()
        #: samples dropped because ``max_series`` series were already kept.
        self.dropped = 0

    @property
    def tiers(self) -> tuple[tuple[float, float], ...]:
        """(resolution, span) of each tier, finest first."""
        return tuple((t.resolution, t.resolution * t.length) for t in self._tiers)

    def bytes_per_series(self) -> int:
        """Bytes of ring storage each series takes."""
        return sum(4 * t.length for t in self._tiers) * _EMPTY.itemsize

    def memory_bytes(self) -> int:
        """Bytes of ring storage in use now."""
        return len(self._data) * self.bytes_per_series()

    def keys(self) -> list[HistoryKey]:
        """Every series with history."""
        with self._lock:
            return list(self._data)

    def record(self, now: float, samples: Iterable[tuple[HistoryKey, float, bool]]) -> None:
        """Add one sample per series at wall time ``now``: (key, value, monotonic)."""
        with self._lock:
            positions: list[int] = []
            for tier in self._tiers:
                bucket = math.floor(now / tier.resolution)
                pos = bucket % tier.length
                if tier.ids[pos] != bucket:
                    tier.ids[pos] = bucket
                    ti = len(positions)
                    start = 4 * pos
                    for rings in self._data.values():
                        rings[ti][start : start + 4] = _EMPTY
                positions.append(4 * pos)
            data = self._data
            for key, value, monotonic in samples:
                if math.isnan(value):  # nothing to record
                    continue
                found = data.get(key)
                if found is None:
                    if len(data) >= self.max_series:
                        self.dropped += 1
                        continue
                    found = data[key] = [self._new_ring(t) for t in self._tiers]
                    self._monotonic[key] = monotonic
                for a, i in zip(found, positions, strict=True):
                    n = a[i + 1]
                    a[i] += value
                    a[i + 1] = n + 1.0
                    if n == 0.0:
                        a[i + 2] = value
                        a[i + 3] = value
                    else:
                        a[i + 2] = min(a[i + 2], value)
                        a[i + 3] = max(a[i + 3], value)

    @staticmethod
    def _new_ring(tier: _Tier) -> array[float]:
        ring = array("d", _EMPTY)
        ring *= tier.length
        return ring

    def pick_tier(self, now: float, since: float | None, resolution: float | None) -> int:
        """The tier a query uses: the finest at least ``resolution`` wide, else the
        finest whose span reaches back to ``since``, else the finest."""
        tiers = self._tiers
        if resolution is not None:
            for i, t in enumerate(tiers):
                if t.resolution >= resolution - 1e-9:
                    return i
            return len(tiers) - 1
        if since is not None:
            for i, t in enumerate(tiers):
                if now - since <= t.resolution * t.length:
                    return i
            return len(tiers) - 1
        return 0

    def query(
        self,
        key: HistoryKey,
        now: float,
        since: float | None = None,
        resolution: float | None = None,
    ) -> list[HistoryPoint]:
        """Points of ``key`` from ``since`` (wall time) up to ``now``, oldest first."""
        ti = self.pick_tier(now, since, resolution)
        tier = self._tiers[ti]
        res = tier.resolution
        with self._lock:
            arrays = self._data.get(key)
            if arrays is None:
                return []
            a = arrays[ti]
            monotonic = self._monotonic[key]
            newest = math.floor(now / res)
            first = newest - tier.length + 1
            if since is not None:
                first = max(first, math.floor(since / res))
            out: list[HistoryPoint] = []
            for bucket in range(first, newest + 1):
                pos = bucket % tier.length
                if tier.ids[pos] != bucket:
                    continue
                i = 4 * pos
                n = a[i + 1]
                if n == 0.0:
                    continue
                lo, hi = a[i + 2], a[i + 3]
                value = hi if monotonic else a[i] / n
                out.append(HistoryPoint(bucket * res, value, lo, hi, int(n), res))
            return out

    def columns(
        self,
        keys: Sequence[HistoryKey],
        now: float,
        since: float,
        fields: Mapping[str, str] | None = None,
    ) -> tuple[list[float], list[list[float | None]]]:
        """Aligned columns for charts: the bucket start times from ``since`` to ``now``
        (tier chosen as in :meth:`query`) and, per key, one value per time (None: no sample).

        Each value is the bucket's value (as in :class:`HistoryPoint`), or its
        max for metric names that ``fields`` maps to ``"max"``. Every bucket the
        tier still holds is a time, and all keys are read under one lock, so
        the columns line up.
        """
        ti = self.pick_tier(now, since, None)
        tier = self._tiers[ti]
        res, length, ids = tier.resolution, tier.length, tier.ids
        newest = math.floor(now / res)
        first = max(newest - length + 1, math.floor(since / res))
        with self._lock:
            buckets = [b for b in range(first, newest + 1) if ids[b % length] == b]
            # Gather each field's slots in bucket order at C speed (itemgetter over
            # strided copies of the ring) rather than indexing point by point.
            positions = [b % length for b in buckets]
            get: Callable[[array[float]], tuple[float, ...]]
            if len(positions) > 1:
                get = itemgetter(*positions)
            else:
                get = lambda ring: tuple(ring[p] for p in positions)  # noqa: E731
            out: list[list[float | None]] = []
            for key in keys:
                arrays = self._data.get(key)
                if arrays is None:
                    out.append([None] * len(buckets))
                    continue
                a = arrays[ti]
                use_max = self._monotonic[key] or (
                    fields is not None and fields.get(key[0]) == "max"
                )
                counts = get(a[1::4])
                if use_max:
                    col = [v if n else None for v, n in zip(get(a[3::4]), counts, strict=True)]
                else:
                    col = [t / n if n else None for t, n in zip(get(a[0::4]), counts, strict=True)]
                out.append(col)
        return [b * res for b in buckets], out

    def query_many(
        self,
        keys: Iterable[HistoryKey],
        now: float,
        since: float | None = None,
        resolution: float | None = None,
    ) -> dict[HistoryKey, list[HistoryPoint]]:
        """:meth:`query` for several keys."""
        return {k: self.query(k, now, since, resolution) for k in keys}


def labels_key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The sorted (name, value) pairs used in a :data:`HistoryKey`."""
    return tuple(sorted(labels.items()))
