"""Per-shape statistics: counters, a bounded quantile histogram, snapshots.

Theory of operation
-------------------
Each distinct fingerprint owns one :class:`_ShapeRecord`. Recording appends
the duration to the shape's deque (atomic, no lock); every few hundred
executions, and before every snapshot, the pending durations are folded into
the counters under the shape's own small lock, using C-level ``sum``, ``max``
and ``map``. Durations go into a log-bucketed histogram: bucket ``i`` holds
values in ``(gamma**(i-1), gamma**i]`` with ``gamma = (1+a)/(1-a)``, so any
quantile read back is within relative error ``a`` (1 % by default) of a value
that was recorded, the DDSketch construction. Values are clamped to
1 ns .. 1 day, which bounds the histogram to about 1 600 buckets whatever
happens; a typical shape uses a few dozen. Adding is one ``log`` and one dict
update.

Snapshots (:class:`ShapeStats`, :class:`OptimizerStats`, :class:`SlowQuery`)
are frozen, slotted and carry no literal: the fingerprint, a redacted sample
and ``file:line`` call sites only.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sentia_core._events import Event

__all__ = [
    "DRAIN_AT",
    "GAMMA",
    "INV_LOG_GAMMA",
    "MAX_VALUE",
    "MIN_VALUE",
    "RELATIVE_ACCURACY",
    "CallSite",
    "OptimizerStats",
    "Quantiles",
    "ShapeStats",
    "SlowQuery",
    "SlowQueryDetected",
]


#: Relative accuracy of every quantile (1 %): bucket growth factor and its log.
RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
INV_LOG_GAMMA = 1.0 / math.log(GAMMA)
MIN_VALUE = 1e-9
MAX_VALUE = 86_400.0
#: The recorder drains a shape's pending executions after this many.
DRAIN_AT = 512
_ln = math.log
_ceil = math.ceil


class Quantiles:
    """A bounded log-bucketed histogram of seconds with 1 % relative-error quantiles.

    Not thread-safe on its own; :class:`_ShapeRecord` guards it. The optimizer's
    hot path inlines :meth:`add` (same arithmetic) to save a call.
    """

    __slots__ = ("buckets", "zeros")

    def __init__(self) -> None:
        #: bucket index -> count; bucket i holds (GAMMA**(i-1), GAMMA**i].
        self.buckets: dict[int, int] = {}
        #: values at or below 1 ns (reported as 0).
        self.zeros = 0

    @property
    def count(self) -> int:
        """How many values were added."""
        return self.zeros + sum(self.buckets.values())

    def add(self, value: float, n: int = 1) -> None:
        """Add ``value`` (seconds) ``n`` times; values are clamped to 1 ns .. 1 day."""
        if value <= MIN_VALUE:
            self.zeros += n
            return
        if value > MAX_VALUE:  # noqa: PLR1730 - mirrors the inlined hot path
            value = MAX_VALUE
        i = math.ceil(math.log(value) * INV_LOG_GAMMA)
        b = self.buckets
        b[i] = b.get(i, 0) + n

    def quantile(self, q: float) -> float:
        """The value at quantile ``q`` (0..1) by nearest rank, within 1 %; 0.0 when empty."""
        count = self.count
        if count == 0:
            return 0.0
        rank = max(0, math.ceil(q * count) - 1)  # nearest rank: p99 of 4 values is the 4th
        if rank < self.zeros:
            return 0.0
        seen = self.zeros
        keys = sorted(self.buckets)
        for i in keys:
            seen += self.buckets[i]
            if seen > rank:
                return 2.0 * GAMMA**i / (GAMMA + 1.0)
        return 2.0 * GAMMA ** keys[-1] / (GAMMA + 1.0)  # pragma: no cover - float slack

    def add_many(self, values: list[float]) -> None:
        """Add many values at once (0.0 or within 1 ns .. 1 day, as the recorder clamps).

        Sorts ``values`` in place, then counts each bucket with one
        ``bisect``: the Python work is per distinct bucket, not per value.
        """
        values.sort()
        n = len(values)
        i = bisect_right(values, MIN_VALUE)
        self.zeros += i
        b = self.buckets
        while i < n:
            k = _ceil(_ln(values[i]) * INV_LOG_GAMMA)
            j = bisect_right(values, GAMMA**k, i)
            if j <= i:  # float rounding at a bucket edge
                j = i + 1
            b[k] = b.get(k, 0) + j - i
            i = j

    def merge(self, other: Quantiles) -> None:
        """Add every value of ``other`` into this histogram."""
        self.zeros += other.zeros
        b = self.buckets
        for i, n in other.buckets.items():
            b[i] = b.get(i, 0) + n

    def __len__(self) -> int:
        return len(self.buckets)


@dataclass(frozen=True, slots=True)
class CallSite:
    """Where in the application a statement was issued from.

    Attributes:
        site: ``"path/to/file.py:123"`` (relative to the working directory when
            it lies under it), or ``"<unknown>"``.
        count: how many sampled executions came from there.
    """

    site: str
    count: int


@dataclass(frozen=True, slots=True)
class ShapeStats:
    """What one statement shape cost, as of the snapshot.

    Times are seconds; ``first_seen`` / ``last_seen`` are wall-clock seconds
    since the epoch (the optimizer clock's ``time()``).

    Attributes:
        shape_id: the 16-hex-digit id of the fingerprint.
        fingerprint: the normalized statement, every literal a ``?``.
        kind: the statement verb (``"SELECT"``, ``"INSERT"``...), or ``""``.
        calls: executions recorded.
        total_time, mean_time, max_time: seconds.
        p50, p95, p99: duration quantiles (within 1 %).
        rows: rows returned or affected, summed over executions that reported
            a row count.
        first_seen, last_seen: wall-clock times of the first and last call.
        sample: one execution as written, literals replaced by ``?``.
        call_sites: the most frequent sampled call sites, most frequent first.
        malformed: the text was truncated or unbalanced (see
            :func:`~sentia_core.sql.fingerprint_ex`).
        slow_calls: executions at or above the slow-query threshold.
    """

    shape_id: str
    fingerprint: str
    kind: str
    calls: int
    total_time: float
    mean_time: float
    max_time: float
    p50: float
    p95: float
    p99: float
    rows: int
    first_seen: float
    last_seen: float
    sample: str
    call_sites: tuple[CallSite, ...]
    malformed: bool
    slow_calls: int


@dataclass(frozen=True, slots=True)
class SlowQuery:
    """One execution at or above ``slow_query_threshold``.

    Attributes:
        shape_id, fingerprint: the statement's shape.
        duration: seconds.
        threshold: the threshold it crossed (seconds).
        rows: its row count, when the caller reported one.
        at: wall-clock time it was recorded.
        call_site: ``file:line`` of the application frame that issued it.
    """

    shape_id: str
    fingerprint: str
    duration: float
    threshold: float
    rows: int | None
    at: float
    call_site: str


@dataclass(frozen=True, slots=True)
class SlowQueryDetected(Event):
    """Emitted for each slow execution; carries the :class:`SlowQuery`."""

    query: SlowQuery


@dataclass(frozen=True, slots=True)
class OptimizerStats:
    """A snapshot of the whole optimizer.

    Attributes:
        shapes: every tracked shape, by total time (largest first).
        calls: executions recorded (all shapes, evicted ones included).
        total_time: their summed duration, seconds.
        distinct_shapes: shapes currently tracked.
        evicted_shapes: shapes dropped to stay under ``max_shapes``.
        malformed_statements: executions whose text was malformed.
        slow_queries: executions at or above the threshold.
        nplusone_reports: N+1 patterns reported.
        cached_statements: raw statement texts in the fingerprint cache.
        errors: statements that could not be recorded at all (never raised).
    """

    shapes: tuple[ShapeStats, ...]
    calls: int
    total_time: float
    distinct_shapes: int
    evicted_shapes: int
    malformed_statements: int
    slow_queries: int
    nplusone_reports: int
    cached_statements: int
    errors: int


class _ShapeRecord:
    """The mutable statistics of one shape (internal).

    The hot path only appends the duration (and the row count) to
    ``pending``, a deque whose ``append`` is atomic, and stores ``last_seen``;
    :meth:`drain`, under ``lock``, folds pending durations into the counters
    and the histogram with C-level ``sum``/``max``/``map``. The recorder
    drains every :data:`DRAIN_AT` executions; snapshots drain first.
    """

    __slots__ = (
        "calls",
        "evicted",
        "fingerprint",
        "first_seen",
        "hist",
        "is_select",
        "kind",
        "last_seen",
        "lock",
        "malformed",
        "max_time",
        "pending",
        "pending_rows",
        "rows",
        "sample",
        "shape_id",
        "sites",
        "slow_calls",
        "total_time",
    )

    def __init__(
        self,
        shape_id: str,
        fingerprint: str,
        *,
        kind: str,
        sample: str,
        malformed: bool,
        now: float,
    ) -> None:
        self.shape_id = shape_id
        self.fingerprint = fingerprint
        self.kind = kind
        self.is_select = kind == "SELECT"
        self.sample = sample
        self.malformed = malformed
        self.calls = 0
        self.total_time = 0.0
        self.max_time = 0.0
        self.rows = 0
        self.slow_calls = 0
        self.first_seen = now
        self.last_seen = now
        self.hist = Quantiles()
        self.pending: deque[float] = deque()
        self.pending_rows: deque[int] = deque()
        self.sites: dict[tuple[str, int], int] = {}
        self.evicted = False
        self.lock = threading.Lock()

    def drain(self) -> None:
        """Fold pending executions into the statistics (takes ``lock``)."""
        with self.lock:
            self._drain_locked()

    def _drain_locked(self) -> None:
        pending = self.pending
        n = len(pending)
        if n:
            pop = pending.popleft
            durations = [pop() for _ in range(n)]
            self.calls += n
            self.total_time += math.fsum(durations)
            top = max(durations)
            if top > self.max_time:  # noqa: PLR1730
                self.max_time = top
            self.hist.add_many(durations)
        rows = self.pending_rows
        k = len(rows)
        if k:
            pop_row = rows.popleft
            self.rows += sum([pop_row() for _ in range(k)])

    def add_site(self, site: tuple[str, int] | None, limit: int) -> None:
        if site is None:
            return
        with self.lock:
            sites = self.sites
            if site in sites or len(sites) < limit:
                sites[site] = sites.get(site, 0) + 1

    def snapshot(
        self,
        wall_offset: float,
        max_sites: int,
        display: Callable[[str, int], str],
    ) -> ShapeStats:
        with self.lock:
            self._drain_locked()
            calls = self.calls
            total = self.total_time
            hist = self.hist
            top = self.max_time
            p50, p95, p99 = (min(hist.quantile(q), top) for q in (0.5, 0.95, 0.99))
            sites = sorted(self.sites.items(), key=lambda kv: (-kv[1], kv[0]))[:max_sites]
            named = tuple(CallSite(display(f, line), n) for (f, line), n in sites)
            return ShapeStats(
                shape_id=self.shape_id,
                fingerprint=self.fingerprint,
                kind=self.kind,
                calls=calls,
                total_time=total,
                mean_time=total / calls if calls else 0.0,
                max_time=top,
                p50=p50,
                p95=p95,
                p99=p99,
                rows=self.rows,
                first_seen=self.first_seen + wall_offset,
                last_seen=self.last_seen + wall_offset,
                sample=self.sample,
                call_sites=named,
                malformed=self.malformed,
                slow_calls=self.slow_calls,
            )
