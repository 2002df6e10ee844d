"""Counters, gauges and histograms; label sets with a cardinality cap.

Theory of operation (the hot path): ``Counter.inc`` and ``Histogram.observe``
take no lock. They append the value to a per-series ``collections.deque``,
whose ``append`` and ``popleft`` are documented as thread-safe (atomic), so no
value is ever lost or counted twice, with or without the GIL. Every
``_BATCH`` values, or whenever somebody reads the series, the pending values
are drained under the series lock — exactly ``len(pending)`` of them, with
``popleft``, so values appended meanwhile stay queued for the next drain — and
folded in with C-level batch arithmetic (``sum``, ``map(log, ...)``,
``Counter.update``). That makes an observation cost one deque append plus, on
average, a 1/``_BATCH`` share of a drain.

Sliding windows: a histogram's time is cut into slots of ``window_slot``
seconds of the injected monotonic clock. ``observe`` reads the clock once;
when it has crossed the end of the current slot it first drains the pending
values into the slot they were observed in, then retires that slot into a
short ring (and folds it into the all-time total) and opens a new one. A
window of ``W`` seconds merges the slots that overlap the last ``W`` seconds,
so it covers between ``W`` and ``W + window_slot`` seconds of observations.
A value observed by a thread that is pre-empted across a slot boundary lands
in the next slot: never lost, at worst a few microseconds late.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import repeat, starmap
from typing import Any, Generic, ParamSpec, TypeVar

from sentia_core.errors import MetricError

from ._names import MAX_HELP_LENGTH, check_label_names, check_metric_name, label_values, safe_text
from ._sketch import FrozenSketch, QuantileSketch
from ._timing import Timer, timed

__all__ = [
    "MAX_FAMILIES",
    "OVERFLOW_LABEL_VALUE",
    "Counter",
    "Gauge",
    "Histogram",
    "HistogramSnapshot",
    "MetricFamily",
    "MetricKind",
    "Registry",
]

_log = logging.getLogger("sentia_core.monitor")
_INF = math.inf
#: Values queued on a series before the writer drains them itself.
_BATCH = 256
#: The label value every label of the overflow series carries.
OVERFLOW_LABEL_VALUE = "__overflow__"
#: Metric families one registry exposes; past it a new name gets a working but
#: unexposed family (counted in ``Registry.families_dropped``, logged once).
MAX_FAMILIES = 1000


class MetricKind(str, enum.Enum):
    """What a metric family holds."""

    COUNTER = "counter"
    """A monotonically increasing total."""
    GAUGE = "gauge"
    """A value that goes up and down."""
    HISTOGRAM = "histogram"
    """A distribution of observations (quantile sketch, count, sum, min, max)."""

    def __str__(self) -> str:
        return self.value


class _Series:
    __slots__ = ("family", "label_values")

    def __init__(self, family: MetricFamily[Any], values: tuple[str, ...]) -> None:
        self.family = family
        self.label_values = values

    @property
    def name(self) -> str:
        """The metric family's name."""
        return self.family.name

    @property
    def labels(self) -> dict[str, str]:
        """This series' labels."""
        return dict(zip(self.family.label_names, self.label_values, strict=True))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.family.name!r}, {self.labels!r})"


class Counter(_Series):
    """A monotonically increasing total (requests served, bytes sent, errors).

    Get one from :meth:`PerformanceMonitor.counter`; keep it and call
    :meth:`inc` on the hot path.
    """

    __slots__ = ("_lock", "_pending", "_value")

    def __init__(self, family: MetricFamily[Any], values: tuple[str, ...]) -> None:
        super().__init__(family, values)
        self._pending: deque[float] = deque()
        self._lock = threading.Lock()
        self._value: float = 0

    def inc(self, amount: float = 1) -> None:
        """Add ``amount`` (default 1) to the total.

        Raises:
            MetricError: ``amount`` is negative, NaN or infinite.
        """
        if not 0 <= amount < _INF:
            raise MetricError(f"counter {self.family.name!r}: cannot add {amount!r}")
        p = self._pending
        p.append(amount)
        if len(p) >= _BATCH:
            self._drain()

    def _drain(self) -> None:
        with self._lock:
            p = self._pending
            batch = list(starmap(p.popleft, repeat((), len(p))))
            try:
                self._value += sum(batch)
            except TypeError:  # an exotic number type; fold what converts
                for x in batch:
                    try:
                        self._value += float(x)
                    except (TypeError, ValueError):
                        continue

    @property
    def value(self) -> float:
        """The total so far."""
        self._drain()
        return self._value


class Gauge(_Series):
    """A value that goes up and down (queue depth, temperature, CPU %).

    ``set``, ``inc`` and ``dec`` take a per-series lock for a single update;
    :meth:`set_function` makes the gauge read a callable instead.
    """

    __slots__ = ("_fn", "_lock", "_value")

    def __init__(self, family: MetricFamily[Any], values: tuple[str, ...]) -> None:
        super().__init__(family, values)
        self._lock = threading.Lock()
        self._value = 0.0
        self._fn: Callable[[], float] | None = None

    def set(self, value: float) -> None:
        """Set the gauge to ``value``."""
        v = value + 0.0
        with self._lock:
            self._value = v

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (may be negative)."""
        a = amount + 0.0
        with self._lock:
            self._value += a

    def dec(self, amount: float = 1.0) -> None:
        """Subtract ``amount``."""
        a = amount + 0.0
        with self._lock:
            self._value -= a

    def set_function(self, fn: Callable[[], float] | None) -> None:
        """Read the value from ``fn()`` whenever the gauge is read (None: stop).

        A callback that raises or returns a non-number reads as NaN.
        """
        if fn is not None and not callable(fn):
            raise MetricError(f"gauge {self.family.name!r}: set_function needs a callable")
        self._fn = fn

    @property
    def value(self) -> float:
        """The current value."""
        fn = self._fn
        if fn is not None:
            try:
                return float(fn())
            except Exception:
                _log.debug("gauge %s callback failed", self.family.name, exc_info=True)
                return math.nan
        return self._value


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """A histogram's statistics at one moment, over all time or a window.

    Attributes:
        count: observations.
        sum: their sum.
        min: the smallest (exact), None when empty.
        max: the largest (exact), None when empty.
        mean: ``sum / count``, None when empty.
        quantiles: requested quantile -> estimate (None when empty).
        window: the window in seconds, None for all time.
    """

    count: int
    sum: float
    min: float | None
    max: float | None
    mean: float | None
    quantiles: Mapping[float, float | None]
    window: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (quantile keys as strings such as ``"0.95"``)."""
        return {
            "count": self.count,
            "sum": self.sum,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "quantiles": {_qkey(q): v for q, v in self.quantiles.items()},
            "window": self.window,
        }


def _qkey(q: float) -> str:
    return repr(float(q))


class Histogram(_Series):
    """A distribution with quantiles within a relative error, all-time and windowed.

    Get one from :meth:`PerformanceMonitor.histogram`; keep it and call
    :meth:`observe`. Reads (:meth:`quantile`, :meth:`snapshot`, :attr:`count`,
    ...) drain pending observations first, so they see every value observed
    before the call.
    """

    __slots__ = (
        "_current",
        "_lock",
        "_now",
        "_pending",
        "_ring",
        "_ring_len",
        "_skipped",
        "_slot_end",
        "_slot_index",
        "_slot_seconds",
        "_total",
    )

    def __init__(
        self,
        family: MetricFamily[Any],
        values: tuple[str, ...],
        *,
        now: Callable[[], float],
        relative_accuracy: float,
        max_buckets: int,
        window_slot: float | None,
        max_window: float,
    ) -> None:
        super().__init__(family, values)
        self._pending: deque[float] = deque()
        self._lock = threading.Lock()
        self._now = now
        self._current = QuantileSketch(relative_accuracy, max_buckets)
        # all time before the current slot, kept compact (see _roll_locked)
        self._total: FrozenSketch = self._current.freeze()
        self._ring: deque[tuple[int, FrozenSketch]] = deque()
        self._skipped = 0
        if window_slot is None:
            self._slot_seconds = _INF
            self._slot_index = 0
            self._slot_end = _INF
            self._ring_len = 0
        else:
            self._slot_seconds = window_slot
            self._ring_len = math.ceil(max_window / window_slot) + 2
            self._slot_index = math.floor(now() / window_slot)
            self._slot_end = (self._slot_index + 1) * window_slot

    # ------------------------------------------------------------------ writing

    def observe(self, value: float) -> None:
        """Record one observation (NaN and infinities are counted as skipped, not kept).

        Raises:
            TypeError: ``value`` is not a number.
        """
        now = self._now()
        if now >= self._slot_end:
            self._roll(now)
        p = self._pending
        p.append(value + 0.0)
        if len(p) >= _BATCH:
            self._drain()

    def _record(self, value: float, now: float) -> None:
        # observe() with a clock reading the caller already has (timers).
        if now >= self._slot_end:
            self._roll(now)
        p = self._pending
        p.append(value)
        if len(p) >= _BATCH:
            self._drain()

    def time(self) -> Timer:
        """A context manager (sync and async) that observes the seconds its body took."""
        return Timer(self._now, self._record)

    def timed(self, fn: Callable[P, R]) -> Callable[P, R]:
        """``fn`` (a def or an async def) with each call's duration observed here."""
        return timed(self._now, self._record, fn)

    def _drain(self) -> None:
        with self._lock:
            self._drain_locked()

    def _drain_locked(self) -> None:
        p = self._pending
        n = len(p)
        if n:
            batch = list(starmap(p.popleft, repeat((), n)))
            self._skipped += self._current.add_batch(batch)

    def _roll(self, now: float) -> None:
        with self._lock:
            self._roll_locked(now)

    def _roll_locked(self, now: float) -> None:
        if now < self._slot_end:
            return
        self._drain_locked()
        index = math.floor(now / self._slot_seconds)
        retired = self._current
        if retired:
            self._ring.append((self._slot_index, retired.freeze()))
            retired.merge_frozen(self._total)  # the retired slot's dict becomes the new total
            self._total = retired.freeze()
            self._current = retired.empty_like()
        ring = self._ring
        oldest = index - self._ring_len
        while ring and ring[0][0] < oldest:
            ring.popleft()
        self._slot_index = index
        self._slot_end = (index + 1) * self._slot_seconds

    def _sync_locked(self) -> float:
        now = self._now()
        if now >= self._slot_end:
            self._roll_locked(now)
        else:
            self._drain_locked()
        return now

    # ------------------------------------------------------------------ reading

    def sketch(self, window: float | None = None) -> QuantileSketch:
        """A merged copy of the sketch over all time, or over the last ``window`` seconds.

        Raises:
            MetricError: ``window`` is longer than the windows this histogram keeps.
        """
        with self._lock:
            now = self._sync_locked()
            if window is None:
                merged = self._current.copy()
                merged.merge_frozen(self._total)
                return merged
            self._check_window(window)
            start = now - window
            merged = self._current.copy()
            slot = self._slot_seconds
            for index, frozen in reversed(self._ring):
                if (index + 1) * slot <= start:
                    break
                merged.merge_frozen(frozen)
            return merged

    def _check_window(self, window: float) -> None:
        if isinstance(window, bool) or not isinstance(window, (int, float)) or window <= 0:
            raise MetricError(f"window must be a positive number of seconds, got {window!r}")
        if self._ring_len == 0:
            raise MetricError(f"histogram {self.family.name!r} keeps no windows (windows=())")
        longest = (self._ring_len - 2) * self._slot_seconds
        if window > longest + 1e-9:
            raise MetricError(
                f"window {window!r}s is longer than the {longest:g}s histograms keep; "
                "raise PerformanceMonitor(windows=...)"
            )

    def snapshot(
        self, window: float | None = None, quantiles: tuple[float, ...] = (0.5, 0.9, 0.95, 0.99)
    ) -> HistogramSnapshot:
        """count, sum, min, max, mean and ``quantiles`` over all time or the last ``window`` s."""
        sk = self.sketch(window)
        qs = sk.quantiles(quantiles)
        return HistogramSnapshot(
            count=sk.count,
            sum=sk.sum,
            min=sk.min,
            max=sk.max,
            mean=sk.mean,
            quantiles=dict(zip(quantiles, qs, strict=True)),
            window=window,
        )

    def quantile(self, q: float, window: float | None = None) -> float | None:
        """The ``q``-quantile (0..1) over all time or the last ``window`` seconds; None if empty."""
        return self.sketch(window).quantile(q)

    def totals(self) -> tuple[int, float]:
        """(count, sum) over all time, read together without copying the sketch."""
        with self._lock:
            self._sync_locked()
            return (
                self._total.count + self._current.count,
                self._total.sum + self._current.sum,
            )

    @property
    def count(self) -> int:
        """Observations over all time."""
        with self._lock:
            self._sync_locked()
            return self._total.count + self._current.count

    @property
    def sum(self) -> float:
        """Sum of observations over all time."""
        with self._lock:
            self._sync_locked()
            return self._total.sum + self._current.sum

    @property
    def min(self) -> float | None:
        """Smallest observation over all time (exact), None when empty."""
        return self.sketch().min

    @property
    def max(self) -> float | None:
        """Largest observation over all time (exact), None when empty."""
        return self.sketch().max

    @property
    def mean(self) -> float | None:
        """Mean over all time, None when empty."""
        return self.sketch().mean

    @property
    def skipped(self) -> int:
        """NaN or infinite observations that were not kept."""
        with self._lock:
            self._drain_locked()
            return self._skipped


P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", Counter, Gauge, Histogram)


class MetricFamily(Generic[S]):
    """All series of one metric name: its kind, help, label names and cardinality cap."""

    __slots__ = (
        "_default",
        "_factory",
        "_lock",
        "_overflow",
        "_series",
        "help",
        "kind",
        "label_names",
        "max_series",
        "name",
        "options",
        "overflowed",
    )

    def __init__(
        self,
        name: str,
        kind: MetricKind,
        *,
        label_names: tuple[str, ...],
        help: str,
        max_series: int,
        factory: Callable[[MetricFamily[S], tuple[str, ...]], S],
        options: Mapping[str, object] | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.label_names = label_names
        self.help = help
        self.max_series = max_series
        self.options = dict(options or {})
        self._factory: Callable[[MetricFamily[S], tuple[str, ...]], S] = factory
        self._series: dict[tuple[str, ...], S] = {}
        self._lock = threading.Lock()
        self._overflow: S | None = None
        #: label sets that were routed to the overflow series (each time one was asked for).
        self.overflowed = 0
        self._default: S | None = None
        if not label_names:
            self._default = self._series.setdefault((), factory(self, ()))

    def series(self, labels: Mapping[str, object]) -> S:
        """The series for ``labels`` (created on first use, or the overflow series past the cap).

        Raises:
            MetricError: the label names differ from this family's.
        """
        if self._default is not None and not labels:
            return self._default
        key = label_values(self.name, self.label_names, labels)
        found = self._series.get(key)
        if found is not None:
            return found
        with self._lock:
            found = self._series.get(key)
            if found is not None:
                return found
            if len(self._series) >= self.max_series:
                self.overflowed += 1
                if self._overflow is None:
                    overflow_key = (OVERFLOW_LABEL_VALUE,) * len(self.label_names)
                    self._overflow = self._factory(self, overflow_key)
                    _log.warning(
                        "metric %s reached its cap of %d label sets; new label sets go to the "
                        "overflow series (%s)",
                        self.name,
                        self.max_series,
                        OVERFLOW_LABEL_VALUE,
                    )
                return self._overflow
            created = self._factory(self, key)
            self._series[key] = created
            return created

    def all_series(self) -> list[S]:
        """Every series (the overflow series last, if any), in creation order."""
        with self._lock:
            out = list(self._series.values())
            if self._overflow is not None:
                out.append(self._overflow)
        return out

    def __iter__(self) -> Iterator[S]:
        return iter(self.all_series())

    def exposed_names(self) -> tuple[str, ...]:
        """The sample names this family writes in the Prometheus text format."""
        return exposed_names(self.name, self.kind)

    def __repr__(self) -> str:
        return f"MetricFamily({self.name!r}, {self.kind.value}, labels={self.label_names})"


def exposed_names(name: str, kind: MetricKind) -> tuple[str, ...]:
    """Sample names a family of ``kind`` writes (counters get ``_total`` like prometheus_client)."""
    if kind is MetricKind.COUNTER:
        return (name if name.endswith("_total") else name + "_total",)
    if kind is MetricKind.HISTOGRAM:
        return (name, name + "_sum", name + "_count", name + "_bucket")
    return (name,)


_RESERVED_LABELS = {
    MetricKind.COUNTER: (),
    MetricKind.GAUGE: (),
    MetricKind.HISTOGRAM: ("quantile", "le"),
}


class Registry:
    """Metric families by name, with the checks that keep exposition valid."""

    def __init__(
        self,
        *,
        now: Callable[[], float],
        max_series: int,
        relative_accuracy: float,
        max_buckets: int,
        windows: tuple[float, ...],
        window_slot: float,
        max_families: int = MAX_FAMILIES,
    ) -> None:
        self._now = now
        self.max_families = max_families
        #: new metric names refused exposition because ``max_families`` was reached.
        self.families_dropped = 0
        self.max_series = max_series
        self.relative_accuracy = relative_accuracy
        self.max_buckets = max_buckets
        self.windows = windows
        self.window_slot = window_slot
        self._families: dict[str, MetricFamily[Any]] = {}
        self._exposed: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> MetricFamily[Any] | None:
        """The family called ``name``, or None."""
        return self._families.get(name)

    def families(self) -> list[MetricFamily[Any]]:
        """Every family, sorted by name."""
        with self._lock:
            return sorted(self._families.values(), key=lambda f: f.name)

    def family(
        self,
        name: str,
        kind: MetricKind,
        label_names: tuple[str, ...],
        help: str | None,
        *,
        max_series: int | None = None,
        relative_accuracy: float | None = None,
        max_buckets: int | None = None,
    ) -> MetricFamily[Any]:
        """The family ``name`` of ``kind``, created on first use.

        Raises:
            MetricError: bad name or label names, the name is used by another
                kind, or the labels differ from the family's.
        """
        fam = self._families.get(name)
        if fam is None:
            with self._lock:
                fam = self._families.get(name)
                if fam is None:
                    if len(self._families) >= self.max_families:
                        return self._detached(name, kind, label_names, help)
                    fam = self._create(
                        name,
                        kind=kind,
                        label_names=label_names,
                        help=help,
                        max_series=max_series,
                        relative_accuracy=relative_accuracy,
                        max_buckets=max_buckets,
                    )
        if fam.kind is not kind:
            raise MetricError(f"metric {name!r} is a {fam.kind.value}, not a {kind.value}")
        if set(fam.label_names) != set(label_names):
            raise MetricError(
                f"metric {name!r} has labels {sorted(fam.label_names)}; got {sorted(label_names)}"
            )
        if help:
            fam.help = safe_text(help, MAX_HELP_LENGTH)
        if kind is MetricKind.HISTOGRAM:
            for option, value in (
                ("relative_accuracy", relative_accuracy),
                ("max_buckets", max_buckets),
            ):
                if value is not None and fam.options[option] != value:
                    raise MetricError(
                        f"histogram {name!r} already has {option}={fam.options[option]!r}"
                    )
        return fam

    def _create(
        self,
        name: str,
        *,
        kind: MetricKind,
        label_names: tuple[str, ...],
        help: str | None,
        max_series: int | None,
        relative_accuracy: float | None,
        max_buckets: int | None,
        register: bool = True,
    ) -> MetricFamily[Any]:
        check_metric_name(name)
        check_label_names(name, label_names, _RESERVED_LABELS[kind])
        names = exposed_names(name, kind) if register else ()
        for exposed in names:
            owner = self._exposed.get(exposed)
            if owner is not None:
                raise MetricError(
                    f"metric {name!r} would write samples named {exposed!r}, "
                    f"which metric {owner!r} already writes"
                )
        cap = self.max_series if max_series is None else max_series
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise MetricError(f"max_series must be an integer >= 1, got {cap!r}")
        text = safe_text(help, MAX_HELP_LENGTH) if help else f"{kind.value} {name}"
        fam: MetricFamily[Any]
        if kind is MetricKind.COUNTER:
            fam = MetricFamily(
                name, kind, label_names=label_names, help=text, max_series=cap, factory=Counter
            )
        elif kind is MetricKind.GAUGE:
            fam = MetricFamily(
                name, kind, label_names=label_names, help=text, max_series=cap, factory=Gauge
            )
        else:
            accuracy = self.relative_accuracy if relative_accuracy is None else relative_accuracy
            buckets = self.max_buckets if max_buckets is None else max_buckets
            QuantileSketch(accuracy, buckets)  # validates both
            slot = self.window_slot if self.windows else None
            longest = max(self.windows, default=0.0)
            now = self._now

            def make(family: MetricFamily[Histogram], values: tuple[str, ...]) -> Histogram:
                return Histogram(
                    family,
                    values,
                    now=now,
                    relative_accuracy=accuracy,
                    max_buckets=buckets,
                    window_slot=slot,
                    max_window=longest,
                )

            fam = MetricFamily(
                name,
                kind,
                label_names=label_names,
                help=text,
                max_series=cap,
                factory=make,
                options={"relative_accuracy": accuracy, "max_buckets": buckets},
            )
        if register:
            for exposed in names:
                self._exposed[exposed] = name
            self._families[name] = fam
        return fam

    def _detached(
        self,
        name: str,
        kind: MetricKind,
        label_names: tuple[str, ...],
        help: str | None,
    ) -> MetricFamily[Any]:
        # Past the cap: a family that works (callers never fail) but is not kept,
        # so neither memory nor the scrape grows with the number of names.
        self.families_dropped += 1
        if self.families_dropped == 1:
            _log.warning(
                "the monitor reached its cap of %d metric names; %r and later new names "
                "are not exposed",
                self.max_families,
                name,
            )
        return self._create(
            name,
            kind=kind,
            label_names=label_names,
            help=help,
            max_series=1,
            relative_accuracy=None,
            max_buckets=None,
            register=False,
        )
