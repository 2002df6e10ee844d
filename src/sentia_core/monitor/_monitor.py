"""PerformanceMonitor: metrics, system sampling, history, alerts, health, exposition.

Theory of operation: the monitor owns a metric :class:`Registry` (hot paths
live on the series objects it hands out), a :class:`History` ring store, a
:class:`RuleEngine`, a notification :class:`Dispatcher` and the health
checks. One *tick* — run by the sampler thread every ``interval`` seconds,
or by calling :meth:`PerformanceMonitor.tick` — collects system metrics,
runs the health checks, appends one history sample per series, evaluates
every alert rule and delivers the due notifications. Every time read goes
through the injected clock (``monotonic`` for durations, ``time`` for
timestamps), so tests drive all of it with a ManualClock; only the sampler
thread's pacing uses real time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from sentia_core._clock import SYSTEM_CLOCK, Clock
from sentia_core._events import Event, Listeners
from sentia_core._validate import check_callable, check_int, check_positive
from sentia_core.errors import ConfigError, MetricError, MonitorError

from ._alerts import Alert, AlertRule, AlertStatus, RuleEngine
from ._asgi import MonitorApp
from ._dashboard import (
    DashboardData,
    Timeline,
    Transition,
    build_dashboard,
    check_window,
)
from ._defaults import ERRORS_METRIC, REQUESTS_METRIC, RESPONSE_TIME_METRIC
from ._endpoints import clean as _clean
from ._endpoints import monitor_routes
from ._export import DEFAULT_BUCKETS, csv_text, history_csv, metrics_dict, prometheus_text
from ._expr import ExpressionError, Selector, windows_of
from ._health import HealthChecks, HealthReport
from ._http import MetricsServer, ServerLimits, start_server
from ._metrics import (
    Counter,
    Gauge,
    Histogram,
    MetricFamily,
    MetricKind,
    Registry,
)
from ._notify import Dispatcher, NotifierStats
from ._retention import DEFAULT_RETENTION, History, HistoryKey, HistoryPoint, normalize_retention
from ._routing import AuthSpec, EndpointAuth, Router, as_auth, check_bind
from ._sketch import QuantileSketch
from ._system import SystemCollector, SystemSample
from ._timing import Timer

__all__ = ["EVENTS_METRIC", "MonitorStats", "PerformanceMonitor"]

_log = logging.getLogger("sentia_core.monitor")

P = ParamSpec("P")
R = TypeVar("R")

#: The counter :meth:`PerformanceMonitor.observe_event` increments, by ``type`` and ``source``.
EVENTS_METRIC = "sentia_events_total"
_NOTIFY_METRIC = "sentia_monitor_notifications_total"
_FIRING_METRIC = "sentia_monitor_alerts_firing"
_PENDING_METRIC = "sentia_monitor_alerts_pending"


@dataclass(frozen=True, slots=True)
class MonitorStats:
    """A snapshot of the monitor itself.

    Attributes:
        families: metric names registered.
        series: label sets across all families (overflow series included).
        overflowed: requests for a new label set that went to an overflow series.
        history_series: series with history.
        history_bytes: ring storage in use, bytes.
        history_dropped: history samples dropped (``history_max_series`` reached).
        rules: alert rules.
        firing: rules firing now.
        pending: rules pending now.
        evaluation_errors: rule evaluations that could not read their metric.
        notifiers: per-notifier delivery figures.
        notifications_pending: notifications waiting for delivery or a retry.
        notification_failures: failed delivery attempts, all notifiers.
        notifications_dropped: notifications given up on, all notifiers.
        health_checks: registered health checks.
        ticks: ticks run.
        tick_errors: tick steps that raised (logged; the sampler keeps going).
        running: whether the sampler thread runs.
        families_dropped: new metric names not exposed because the registry
            reached ``MAX_FAMILIES`` (1000) names.
    """

    families: int
    series: int
    overflowed: int
    history_series: int
    history_bytes: int
    history_dropped: int
    rules: int
    firing: int
    pending: int
    evaluation_errors: int
    notifiers: tuple[NotifierStats, ...]
    notifications_pending: int
    notification_failures: int
    notifications_dropped: int
    health_checks: int
    ticks: int
    tick_errors: int
    running: bool
    families_dropped: int = 0


def _stat_name(q: float) -> str:
    text = f"{q * 100:g}".replace(".", "")
    return f"p{text}"


def _check_quantiles(parameter: str, qs: object) -> tuple[float, ...]:
    if not isinstance(qs, (list, tuple)) or not qs:
        raise ConfigError(parameter, qs, "must be a non-empty list of quantiles")
    out = []
    for q in qs:
        if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0.0 <= q <= 1.0:
            raise ConfigError(parameter, qs, "every quantile must be between 0 and 1")
        out.append(float(q))
    return tuple(out)


class _Source:
    """The registry seen as an expression :class:`MetricSource`."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def _matching(self, selector: Selector) -> tuple[MetricFamily[Any] | None, list[Any]]:
        fam = self._registry.get(selector.name)
        if fam is None:
            return None, []
        if not selector.matchers:
            return fam, fam.all_series()
        return fam, [s for s in fam.all_series() if selector.matches(s.labels)]

    def scalar(self, selector: Selector) -> float | None:
        fam, series = self._matching(selector)
        if fam is None or not series:
            return None
        if fam.kind is MetricKind.HISTOGRAM:
            return float(sum(s.count for s in series))
        total = 0.0
        for s in series:
            total += s.value
        return None if math.isnan(total) else total

    def distribution(self, selector: Selector, window: float | None) -> QuantileSketch | None:
        fam, series = self._matching(selector)
        if fam is None:
            return None
        if fam.kind is not MetricKind.HISTOGRAM:
            raise ExpressionError(
                f"{selector.name!r} is a {fam.kind.value}; quantile and window statistics "
                "need a histogram"
            )
        if not series:
            return None
        try:
            merged: QuantileSketch = series[0].sketch(window)
            for s in series[1:]:
                merged.merge(s.sketch(window))
        except MetricError as exc:
            raise ExpressionError(str(exc)) from None
        return merged


class PerformanceMonitor:
    """In-process metrics with quantiles, system sampling, history, alerts and health.

    Args:
        clock: time source (``monotonic`` for durations and windows, ``time``
            for timestamps); tests pass a ManualClock.
        rng: randomness for notification back-off jitter.
        name: the ``source`` of the :class:`Alert` events this monitor emits.
        max_series: label sets kept per metric before new ones go to the
            overflow series (labels all ``"__overflow__"``).
        relative_accuracy: histograms' quantile relative error (0.01 = 1 %).
        max_buckets: histogram sketch buckets per sign before the lowest are folded.
        windows: sliding windows (seconds) histograms can be read over;
            ``()`` keeps all-time statistics only (and saves memory).
        window_slot: the width (seconds) of the slots windows are built from;
            a window covers between ``w`` and ``w + window_slot`` seconds.
        quantiles: quantiles reported in exposition, JSON and CSV.
        summary_window: the window of the quantiles in ``/metrics`` summaries
            (default: the longest of ``windows``; None: all time).
        histogram_exposition: ``"summary"`` (quantiles + _sum/_count) or
            ``"buckets"`` (classic ``le`` buckets + _sum/_count).
        buckets: ``le`` bounds for ``"buckets"`` exposition (seconds).
        retention: seconds of history (default tiers capped there) or
            (resolution, span) pairs, finest first; default 10 s for an hour,
            1 min for a day, 10 min for 7 days.
        history_max_series: the most series kept in history (bounds memory to
            ``history_max_series * History.bytes_per_series()``, ~90 KB each
            with the default retention).
        history_quantiles: histogram quantiles recorded in history (besides
            count, mean and max), over the shortest window.
        system_metrics: sample CPU, memory, swap, disk, network, load and this
            process on every tick.
        disk_paths: filesystems whose usage is sampled.
        notify_max_attempts: delivery attempts per notification and notifier.
        notify_backoff: seconds before the first retry (doubles each time).
        notify_backoff_max: the longest wait between retries (seconds).
        notify_jitter: randomized fraction of each retry wait (0..1).
        health_timeout: default seconds a health check may take.

    Raises:
        ConfigError: naming the parameter, for any invalid setting.
    """

    def __init__(
        self,
        *,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        name: str = "monitor",
        max_series: int = 2000,
        relative_accuracy: float = 0.01,
        max_buckets: int = 2048,
        windows: Sequence[float] = (60.0, 300.0),
        window_slot: float = 10.0,
        quantiles: Sequence[float] = (0.5, 0.9, 0.95, 0.99),
        summary_window: float | str | None = "longest",
        histogram_exposition: str = "summary",
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        retention: float | Sequence[tuple[float, float]] = DEFAULT_RETENTION,
        history_max_series: int = 500,
        history_quantiles: Sequence[float] = (0.5, 0.95, 0.99),
        system_metrics: bool = True,
        disk_paths: Sequence[str] = ("/",),
        notify_max_attempts: int = 5,
        notify_backoff: float = 1.0,
        notify_backoff_max: float = 300.0,
        notify_jitter: float = 0.2,
        health_timeout: float | None = 5.0,
    ) -> None:
        if not isinstance(clock, Clock):
            raise ConfigError("clock", clock, "must provide monotonic() and time()")
        self._clock = clock
        self._now = clock.monotonic
        self._wall = clock.time
        self._rng = rng if rng is not None else random.Random()
        if not isinstance(name, str) or not name:
            raise ConfigError("name", name, "must be a non-empty string")
        self.name = name
        max_series = check_int("max_series", max_series, minimum=1)
        if (
            isinstance(relative_accuracy, bool)
            or not isinstance(relative_accuracy, (int, float))
            or not 1e-6 <= relative_accuracy <= 0.5
        ):
            raise ConfigError("relative_accuracy", relative_accuracy, "must be in 1e-6..0.5")
        max_buckets = check_int("max_buckets", max_buckets, minimum=2)
        window_slot = check_positive("window_slot", window_slot)
        if not isinstance(windows, (list, tuple)):
            raise ConfigError("windows", windows, "must be a list of seconds")
        wins = tuple(sorted({check_positive("windows", w) for w in windows}))
        if wins and wins[0] < window_slot:
            raise ConfigError(
                "windows", windows, f"windows must be >= window_slot {window_slot:g}s"
            )
        self._windows = wins
        self._quantiles = _check_quantiles("quantiles", quantiles)
        if summary_window == "longest":
            self._summary_window: float | None = wins[-1] if wins else None
        elif summary_window is None:
            self._summary_window = None
        else:
            sw = check_positive("summary_window", summary_window)
            if not wins or sw > wins[-1]:
                raise ConfigError("summary_window", summary_window, "must be <= the longest window")
            self._summary_window = sw
        if histogram_exposition not in ("summary", "buckets"):
            raise ConfigError(
                "histogram_exposition", histogram_exposition, "must be 'summary' or 'buckets'"
            )
        self._exposition = histogram_exposition
        if not isinstance(buckets, (list, tuple)) or not buckets:
            raise ConfigError("buckets", buckets, "must be a non-empty list of bounds")
        self._buckets = tuple(sorted(check_positive("buckets", b, allow_inf=True) for b in buckets))
        tiers = normalize_retention(retention)
        history_max_series = check_int("history_max_series", history_max_series, minimum=0)
        self._history_quantiles = (
            _check_quantiles("history_quantiles", history_quantiles) if history_quantiles else ()
        )
        if not isinstance(system_metrics, bool):
            raise ConfigError("system_metrics", system_metrics, "must be True or False")
        if isinstance(disk_paths, str) or not all(isinstance(p, str) for p in disk_paths):
            raise ConfigError("disk_paths", disk_paths, "must be a list of paths")
        if health_timeout is not None:
            health_timeout = check_positive("health_timeout", health_timeout)
        self._health_timeout = health_timeout

        self._registry = Registry(
            now=self._now,
            max_series=max_series,
            relative_accuracy=float(relative_accuracy),
            max_buckets=max_buckets,
            windows=wins,
            window_slot=window_slot,
        )
        self._source = _Source(self._registry)
        self._history = History(tiers, history_max_series)
        self._rules = RuleEngine(source=name)
        self._dispatcher = Dispatcher(
            self._now,
            self._rng,
            max_attempts=notify_max_attempts,
            backoff=notify_backoff,
            backoff_max=notify_backoff_max,
            jitter=notify_jitter,
        )
        self._health = HealthChecks(self._now, self._wall)
        self._system_enabled = system_metrics
        self._disk_paths = tuple(disk_paths)
        self._system: SystemCollector | None = None
        self._os_totals: dict[str, float] = {}
        self._system_series: dict[tuple[str, str], Counter | Gauge] = {}
        self._event_counters: dict[tuple[type, str], Counter] = {}
        self._reported: dict[tuple[str, str], int] = {}
        self._self_series: dict[tuple[str, str], Counter | Gauge] = {}
        #: :class:`Alert` events, delivered synchronously as rules notify.
        self.listeners: Listeners[Alert] = Listeners()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None
        self._servers: list[MetricsServer] = []
        self._ticks = 0
        self._collectors: tuple[Callable[[], object], ...] = ()
        self._tick_errors = 0
        self._timeline = Timeline()
        self._alert_log: deque[dict[str, Any]] = deque(maxlen=500)
        self._sections: tuple[tuple[str, Callable[[], Mapping[str, Any]]], ...] = ()

    # ------------------------------------------------------------------ metrics

    @staticmethod
    def _labels(labels: Mapping[str, object] | None, kw: dict[str, object]) -> Mapping[str, object]:
        if labels:
            if kw:
                return {**labels, **kw}
            return labels
        return kw

    def counter(
        self,
        name: str,
        labels: Mapping[str, object] | None = None,
        /,
        *,
        help: str | None = None,
        **kwlabels: object,
    ) -> Counter:
        """The counter ``name`` with these labels (created on first use).

        Labels come as a mapping and/or keyword arguments; the first call
        fixes the metric's label names. Keep the returned object for hot paths.

        Raises:
            MetricError: invalid name or labels, or ``name`` is another kind.
        """
        lab = self._labels(labels, kwlabels)
        fam = self._registry.get(name)
        if fam is None or fam.kind is not MetricKind.COUNTER or help:
            fam = self._registry.family(name, MetricKind.COUNTER, tuple(sorted(lab)), help)
        series: Counter = fam.series(lab)
        return series

    def gauge(
        self,
        name: str,
        labels: Mapping[str, object] | None = None,
        /,
        *,
        help: str | None = None,
        **kwlabels: object,
    ) -> Gauge:
        """The gauge ``name`` with these labels (see :meth:`counter`)."""
        lab = self._labels(labels, kwlabels)
        fam = self._registry.get(name)
        if fam is None or fam.kind is not MetricKind.GAUGE or help:
            fam = self._registry.family(name, MetricKind.GAUGE, tuple(sorted(lab)), help)
        series: Gauge = fam.series(lab)
        return series

    def histogram(
        self,
        name: str,
        labels: Mapping[str, object] | None = None,
        /,
        *,
        help: str | None = None,
        relative_accuracy: float | None = None,
        max_buckets: int | None = None,
        **kwlabels: object,
    ) -> Histogram:
        """The histogram ``name`` with these labels (see :meth:`counter`).

        Args:
            relative_accuracy: this metric's quantile accuracy (default: the monitor's).
            max_buckets: this metric's sketch bucket limit (default: the monitor's).
        """
        return self._histogram(
            name, self._labels(labels, kwlabels), help, relative_accuracy, max_buckets
        )

    def _histogram(
        self,
        name: str,
        lab: Mapping[str, object],
        help: str | None = None,
        relative_accuracy: float | None = None,
        max_buckets: int | None = None,
    ) -> Histogram:
        fam = self._registry.get(name)
        if (
            fam is None
            or fam.kind is not MetricKind.HISTOGRAM
            or help
            or relative_accuracy is not None
            or max_buckets is not None
        ):
            fam = self._registry.family(
                name,
                MetricKind.HISTOGRAM,
                tuple(sorted(lab)),
                help,
                relative_accuracy=relative_accuracy,
                max_buckets=max_buckets,
            )
        series: Histogram = fam.series(lab)
        return series

    def timer(
        self, name: str, labels: Mapping[str, object] | None = None, /, **kwlabels: object
    ) -> Timer:
        """A context manager (``with`` / ``async with``) timing its body into histogram ``name``."""
        return self._histogram(name, self._labels(labels, kwlabels)).time()

    def timed(
        self, name: str, labels: Mapping[str, object] | None = None, /, **kwlabels: object
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """A decorator timing each call of a function or coroutine function into ``name``."""
        hist = self._histogram(name, self._labels(labels, kwlabels))

        def decorate(fn: Callable[P, R]) -> Callable[P, R]:
            return hist.timed(fn)

        return decorate

    def record_request(self, seconds: float, *, error: bool = False, **labels: object) -> None:
        """Record one handled request for the default response-time and error-rate rules.

        Observes ``seconds`` into ``app_request_seconds``, counts it in
        ``app_requests_total`` and, if ``error``, in ``app_request_errors_total``.
        """
        self.histogram(RESPONSE_TIME_METRIC, labels).observe(seconds)
        self.counter(REQUESTS_METRIC, labels).inc()
        errors = self.counter(ERRORS_METRIC, labels)
        if error:
            errors.inc()

    def families(self) -> list[MetricFamily[Any]]:
        """Every metric family, sorted by name."""
        return self._registry.families()

    def metric(self, name: str) -> MetricFamily[Any] | None:
        """The family called ``name``, or None."""
        return self._registry.get(name)

    # ------------------------------------------------------------------ events

    def observe_event(self, event: Event) -> None:
        """Count ``event`` in ``sentia_events_total{type, source}``: a listener for any component.

        ``breaker.listeners.add(monitor.observe_event)`` (or :meth:`subscribe`)
        makes every event of that component visible in ``/metrics``.
        """
        key = (type(event), event.source)
        c = self._event_counters.get(key)
        if c is None:
            c = self.counter(
                EVENTS_METRIC,
                help="Events emitted by sentia_core components, by event type and source.",
                type=type(event).__name__,
                source=event.source,
            )
            if len(self._event_counters) < 4 * self._registry.max_series:
                self._event_counters[key] = c
        c.inc()

    def subscribe(self, listeners: Listeners[Any]) -> Callable[[], None]:
        """Subscribe :meth:`observe_event` to a component's listeners; returns the unsubscriber."""
        return listeners.add(self.observe_event)

    # ------------------------------------------------------------------ system

    def collect(self) -> SystemSample:
        """Sample the machine and this process now, update the ``system_*``/``process_*``
        metrics, and return the sample."""
        with self._lock:
            if self._system is None:
                self._system = SystemCollector(self._disk_paths, self._now)
            collector = self._system
        sample = collector.collect()
        gauges: list[tuple[str, float | None, str]] = [
            ("system_cpu_percent", sample.cpu_percent, "Machine CPU busy, percent."),
            ("system_memory_percent", sample.memory_percent, "Machine memory in use, percent."),
            ("system_memory_used_bytes", sample.memory_used_bytes, "Machine memory in use."),
            ("system_memory_available_bytes", sample.memory_available_bytes,
             "Machine memory available."),
            ("system_memory_total_bytes", sample.memory_total_bytes, "Machine physical memory."),
            ("system_swap_percent", sample.swap_percent, "Swap in use, percent."),
            ("system_swap_used_bytes", sample.swap_used_bytes, "Swap in use."),
            ("system_load1", sample.load1, "1-minute load average."),
            ("system_load5", sample.load5, "5-minute load average."),
            ("system_load15", sample.load15, "15-minute load average."),
            ("process_cpu_percent", sample.process_cpu_percent,
             "This process's CPU use, percent of one core."),
            ("process_resident_memory_bytes", sample.process_resident_memory_bytes,
             "This process's resident memory."),
            ("process_threads", sample.process_threads, "This process's threads."),
            ("process_open_fds", sample.process_open_fds,
             "This process's open file descriptors."),
        ]  # fmt: skip
        for metric, value, text in gauges:
            if value is not None:
                self._system_gauge(metric, text).set(value)
        for path, pct in sample.disk_usage_percent.items():
            self._system_gauge("system_disk_usage_percent", "Filesystem used, percent.", path).set(
                pct
            )
        for path, free in sample.disk_free_bytes.items():
            self._system_gauge("system_disk_free_bytes", "Filesystem free space.", path).set(free)
        totals: list[tuple[str, float | None, str]] = [
            ("system_disk_read_bytes_total", sample.disk_read_bytes, "Bytes read from disks."),
            ("system_disk_written_bytes_total", sample.disk_write_bytes, "Bytes written to disks."),
            ("system_network_sent_bytes_total", sample.network_sent_bytes, "Bytes sent."),
            ("system_network_received_bytes_total", sample.network_received_bytes,
             "Bytes received."),
            ("process_cpu_seconds_total", sample.process_cpu_seconds,
             "This process's user and system CPU time."),
        ]  # fmt: skip
        for metric, value, text in totals:
            if value is None:
                continue
            last = self._os_totals.get(metric)
            delta = value if last is None or value < last else value - last
            self._os_totals[metric] = value
            c = self._system_series.get((metric, ""))
            if c is None:
                c = self._system_series[metric, ""] = self.counter(metric, help=text)
            assert isinstance(c, Counter)
            if delta > 0:
                c.inc(delta)
        return sample

    def _system_gauge(self, metric: str, text: str, path: str = "") -> Gauge:
        g = self._system_series.get((metric, path))
        if g is None:
            labels = {"path": path} if path else {}
            g = self._system_series[metric, path] = self.gauge(metric, labels, help=text)
        assert isinstance(g, Gauge)
        return g

    # ------------------------------------------------------------------ ticking

    def tick(self) -> list[Alert]:
        """One sampling step: system metrics, health checks, history, alert evaluation and
        delivery. Returns the notifications raised. Step failures are logged and counted."""
        self._ticks += 1
        for collector in self._collectors:
            self._guard("collector", collector)
        if self._system_enabled:
            self._guard("collect", self.collect)
        if len(self._health):
            self._guard("health", self._health.run)
        alerts: list[Alert] = []

        def evaluate() -> None:
            alerts.extend(self.evaluate())

        self._guard("evaluate", evaluate)
        self._guard("history", self._record_history)
        return alerts

    def add_collector(self, fn: Callable[[], object]) -> Callable[[], None]:
        """Run ``fn`` at the start of every tick, before sampling and alert evaluation.

        A collector copies state kept elsewhere (a component's ``stats()``)
        into metrics, so rules and exposition see it. A failing collector is
        logged and counted like any tick step. Returns a function that removes it.
        """
        check_callable("fn", fn)
        with self._lock:
            self._collectors = (*self._collectors, fn)

        def remove() -> None:
            with self._lock:
                self._collectors = tuple(c for c in self._collectors if c is not fn)

        return remove

    def _guard(self, step: str, fn: Callable[[], object]) -> None:
        try:
            fn()
        except Exception:
            self._tick_errors += 1
            _log.exception("monitor tick step %s failed", step)

    def start(self, interval: float = 10.0) -> PerformanceMonitor:
        """Tick every ``interval`` seconds in one daemon thread (the first tick at once).

        Returns the monitor, so ``with monitor.start(5): ...`` stops it on exit.

        Raises:
            ConfigError: ``interval`` is not a positive number.
            MonitorError: the sampler is already running.
        """
        interval = check_positive("interval", interval)
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise MonitorError("the monitor's sampler is already running")
            stop = threading.Event()
            thread = threading.Thread(
                target=self._run, args=(interval, stop), name="sentia-monitor", daemon=True
            )
            self._stop, self._thread = stop, thread
        thread.start()
        return self

    def _run(self, interval: float, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # tick guards its steps; this is a last resort
                self._tick_errors += 1
                _log.exception("monitor tick failed")
            stop.wait(interval)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the sampler thread (idempotent); waits up to ``timeout`` seconds for it."""
        with self._lock:
            stop, thread = self._stop, self._thread
            self._stop = self._thread = None
        if stop is not None:
            stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        """Whether the sampler thread runs."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def close(self) -> None:
        """Stop the sampler, every server started by :meth:`serve`, and the health pool."""
        self.stop()
        with self._lock:
            servers, self._servers = self._servers, []
        for server in servers:
            server.stop()
        self._health.close()

    def __enter__(self) -> PerformanceMonitor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ history

    def _history_samples(self) -> list[tuple[HistoryKey, float, bool]]:
        samples: list[tuple[HistoryKey, float, bool]] = []
        window = self._windows[0] if self._windows else None
        qs = self._history_quantiles
        for fam in self._registry.families():
            for s in fam.all_series():
                lk = tuple(sorted(s.labels.items()))
                if isinstance(s, Histogram):
                    samples.append(((fam.name, lk, "count"), float(s.count), True))
                    sk = s.sketch(window)
                    if not sk.count:
                        continue
                    mean, mx = sk.mean, sk.max
                    assert mean is not None
                    assert mx is not None
                    samples.append(((fam.name, lk, "mean"), mean, False))
                    samples.append(((fam.name, lk, "max"), mx, False))
                    for q, v in zip(qs, sk.quantiles(qs), strict=True):
                        if v is not None:
                            samples.append(((fam.name, lk, _stat_name(q)), v, False))
                else:
                    monotonic = isinstance(s, Counter)
                    samples.append(((fam.name, lk, "value"), float(s.value), monotonic))
        return samples

    def _record_history(self) -> None:
        if self._history.max_series == 0:
            return
        samples = self._history_samples()
        self._history.record(self._wall(), samples)

    def history(
        self,
        name: str,
        labels: Mapping[str, object] | None = None,
        *,
        stat: str | None = None,
        since: float | None = None,
        last: float | None = None,
        resolution: float | None = None,
    ) -> list[HistoryPoint]:
        """The recorded history of one series, oldest first.

        Args:
            name: the metric name.
            labels: the series' labels (default: the unlabeled series).
            stat: ``"value"`` for counters and gauges (the default); for
                histograms one of ``"count"``, ``"mean"`` (default), ``"max"``
                and ``"p50"``/``"p95"``/``"p99"`` (``history_quantiles``),
                over the shortest window at each sample.
            since: wall-clock time (seconds since the epoch) to start from.
            last: or: how many seconds back from now.
            resolution: the coarsest acceptable point width in seconds; the
                finest tier at least that wide is used. By default the finest
                tier that reaches back to ``since``.

        Raises:
            MetricError: both ``since`` and ``last`` given.
        """
        if since is not None and last is not None:
            raise MetricError("give since= or last=, not both")
        now = self._wall()
        if last is not None:
            since = now - last
        fam = self._registry.get(name)
        if stat is None:
            stat = "mean" if fam is not None and fam.kind is MetricKind.HISTOGRAM else "value"
        lk = tuple(sorted((k, str(v)) for k, v in (labels or {}).items()))
        return self._history.query((name, lk, stat), now, since, resolution)

    def history_keys(self) -> list[tuple[str, dict[str, str], str]]:
        """Every (name, labels, stat) with history."""
        return [(n, dict(lk), st) for n, lk, st in self._history.keys()]  # noqa: SIM118

    @property
    def retention(self) -> tuple[tuple[float, float], ...]:
        """The history tiers as (resolution, span) seconds, finest first."""
        return self._history.tiers

    # ------------------------------------------------------------------ alerts

    def add_rule(self, rule: AlertRule) -> None:
        """Add an alert rule, evaluated on every tick and by :meth:`evaluate`.

        Raises:
            ConfigError: a rule with that name exists, or the rule reads a
                window longer than histograms keep.
        """
        if not isinstance(rule, AlertRule):
            raise ConfigError("rule", rule, "must be an AlertRule")
        longest = self._windows[-1] if self._windows else 0.0
        for func, window in windows_of(rule.expression):
            if func in ("rate", "increase") or window is None:
                continue
            if window > longest + 1e-9:
                raise ConfigError(
                    "metric",
                    rule.metric,
                    f"{func}() over {window:g}s needs PerformanceMonitor(windows=...) to keep "
                    f"a window that long (longest kept: {longest:g}s)",
                )
        self._rules.add(rule)

    def add_rules(self, rules: Sequence[AlertRule]) -> None:
        """:meth:`add_rule` for each rule (e.g. ``default_rules()``)."""
        for rule in rules:
            self.add_rule(rule)

    def remove_rule(self, name: str) -> bool:
        """Remove a rule; returns whether it existed."""
        return self._rules.remove(name)

    def rules(self) -> list[AlertRule]:
        """Every rule, in the order added."""
        return self._rules.rules()

    def evaluate(self) -> list[Alert]:
        """Evaluate every rule now, queue and deliver their notifications, retry due ones.

        Returns the notifications this evaluation raised (delivered or queued
        for retry). Listeners get each :class:`Alert` synchronously. If another
        thread (the sampler) is evaluating at this moment, the rules are not
        evaluated twice: this call only retries due deliveries and returns ``[]``.
        """
        alerts = self._rules.evaluate(self._source, self._now(), self._wall())
        if alerts:
            self._alert_log.extend(
                {"at": a.at, "rule": a.rule, "kind": a.kind.value, "severity": a.severity.value,
                 "value": a.value, "threshold": a.threshold}
                for a in alerts
            )  # fmt: skip
            if self.listeners:
                for alert in alerts:
                    self.listeners.emit(alert)
            self._dispatcher.submit(alerts)
        if len(self._dispatcher):
            self._dispatcher.deliver()
        self._sync_self_metrics()
        return alerts

    def alerts(self) -> list[AlertStatus]:
        """Every rule's state (inactive, pending, firing with severity, resolved)."""
        return self._rules.statuses()

    def alert(self, name: str) -> AlertStatus:
        """The state of the rule ``name``.

        Raises:
            MonitorError: no such rule.
        """
        status = self._rules.status(name)
        if status is None:
            raise MonitorError(f"no alert rule named {name!r}")
        return status

    def add_notifier(self, notifier: Callable[[Alert], object], name: str | None = None) -> str:
        """Send every notification to ``notifier`` (any callable taking an :class:`Alert`).

        A notifier that raises is retried with back-off; see :class:`Dispatcher`.
        Returns the name the notifier is reported under in :meth:`stats`.
        """
        return self._dispatcher.add(notifier, name)

    def remove_notifier(self, name: str) -> bool:
        """Remove the notifier reported as ``name``."""
        return self._dispatcher.remove(name)

    def deliver(self) -> int:
        """Retry notifications whose back-off has passed; returns how many were delivered."""
        return self._dispatcher.deliver()

    def _sync_self_metrics(self) -> None:
        if len(self._rules):
            firing = sum(1 for s in self._rules.statuses() if s.state == "firing")
            gauge = self._self_series.get(("firing", ""))
            if gauge is None:
                gauge = self.gauge(_FIRING_METRIC, help="Alert rules firing now.")
                self._self_series["firing", ""] = gauge
            assert isinstance(gauge, Gauge)
            gauge.set(firing)
            pending = sum(1 for s in self._rules.statuses() if s.state == "pending")
            gauge = self._self_series.get(("pending", ""))
            if gauge is None:
                gauge = self.gauge(_PENDING_METRIC, help="Alert rules pending now.")
                self._self_series["pending", ""] = gauge
            assert isinstance(gauge, Gauge)
            gauge.set(pending)
        for st in self._dispatcher.stats():
            for outcome, total in (("sent", st.sent), ("failed", st.failures),
                                   ("dropped", st.dropped)):  # fmt: skip
                key = (st.name, outcome)
                delta = total - self._reported.get(key, 0)
                c = self._self_series.get(key)
                if c is None:
                    c = self.counter(
                        _NOTIFY_METRIC,
                        help="Notification deliveries by notifier and outcome.",
                        notifier=st.name,
                        outcome=outcome,
                    )
                    self._self_series[key] = c
                assert isinstance(c, Counter)
                if delta > 0:
                    c.inc(delta)
                    self._reported[key] = total

    # ------------------------------------------------------------------ dashboard

    def record_transition(
        self,
        kind: str,
        subject: str,
        from_state: str,
        to_state: str,
        reason: str = "",
        *,
        at: float | None = None,
    ) -> None:
        """Remember a state change for the dashboard's timelines (a bounded ring).

        The facade records every breaker transition (``kind="breaker"``) and
        every cache entering or leaving degraded mode (``kind="cache"``,
        states ``"ok"``/``"degraded"``) from the events it forwards.

        Args:
            kind: what changed (``"breaker"``, ``"cache"``...).
            subject: which one (its name).
            from_state, to_state: the states before and after.
            reason: why, for people.
            at: wall-clock time (default: now).
        """
        self._timeline.add(
            Transition(
                self._wall() if at is None else float(at),
                str(kind), str(subject), str(from_state), str(to_state), str(reason),
            )
        )  # fmt: skip

    def transitions(self, kind: str | None = None, since: float | None = None) -> list[Transition]:
        """The recorded transitions of ``kind`` (None: all) since ``since``, oldest first."""
        return self._timeline.items(kind, since)

    def add_dashboard_section(
        self, panel: str, fn: Callable[[], Mapping[str, Any]]
    ) -> Callable[[], None]:
        """Add tables to a dashboard panel: ``fn()`` returns ``{"tables": [...]}``.

        Each table is ``{"id", "title", "columns": [[label, format], ...],
        "rows": [[cell, ...], ...]}`` with formats ``text``, ``code``, ``num``,
        ``ms``, ``pct``, ``bytes``, ``time`` (epoch seconds) or ``state``. ``panel``
        is one of the built-in panels (``http``, ``cache``, ``breakers``,
        ``registry``, ``alerts``, ``system``, ``sql``) or a new one. ``fn`` runs
        on every dashboard request; if it raises, the panel shows the error.
        Returns a function that removes the section.
        """
        if not isinstance(panel, str) or not panel:
            raise ConfigError("panel", panel, "must be a non-empty string")
        check_callable("fn", fn)
        entry = (panel, fn)
        with self._lock:
            self._sections = (*self._sections, entry)

        def remove() -> None:
            with self._lock:
                self._sections = tuple(e for e in self._sections if e is not entry)

        return remove

    def dashboard(self, window: str = "1h") -> dict[str, Any]:
        """The document the dashboard page polls (``/dashboard.json``), JSON-ready.

        Args:
            window: ``"1h"``, ``"24h"`` or ``"7d"``: how far back the charts reach
                (each from the history tier that covers it).

        Raises:
            ConfigError: an unknown window.
        """
        check_window(window)
        data = DashboardData(
            history=self._history,
            now=self._wall(),
            alerts=[_clean(s.to_dict()) for s in self.alerts()],
            alert_log=list(self._alert_log),
            timeline=self._timeline,
            sections=self._sections,
        )
        return build_dashboard(data, window)

    # ------------------------------------------------------------------ health

    def add_health_check(
        self,
        name: str,
        fn: Callable[[], object],
        critical: bool = True,
        *,
        timeout: float | str | None = "default",
    ) -> None:
        """Register a health check (replacing one of the same name).

        ``fn`` passes by returning None/True/``"healthy"``, reports degraded
        with ``"degraded"``, and fails by returning False/``"unhealthy"``,
        raising, or taking longer than ``timeout`` seconds (default: the
        monitor's ``health_timeout``; None runs it inline without a limit).
        It may be a coroutine function. A failing non-critical check makes
        the service degraded; a failing critical one makes it unhealthy.
        """
        t = self._health_timeout if timeout == "default" else timeout
        if isinstance(t, str):
            raise ConfigError("timeout", timeout, "must be seconds or None")
        self._health.add(name, fn, critical=critical, timeout=t)

    def remove_health_check(self, name: str) -> bool:
        """Remove a health check; returns whether it existed."""
        return self._health.remove(name)

    def health(self, *, refresh: bool = True) -> HealthReport:
        """Run every health check (``refresh=False``: report the last results) and report."""
        return self._health.run() if refresh else self._health.report()

    async def ahealth(self, *, refresh: bool = True) -> HealthReport:
        """:meth:`health` from async code, without blocking the event loop."""
        return await asyncio.to_thread(self.health, refresh=refresh)

    # ------------------------------------------------------------------ export

    def prometheus_text(self, *, histograms: str | None = None) -> str:
        """All metrics in the Prometheus text format 0.0.4.

        Args:
            histograms: ``"summary"`` or ``"buckets"`` (default: the monitor's
                ``histogram_exposition``).
        """
        mode = histograms or self._exposition
        if mode not in ("summary", "buckets"):
            raise MetricError(f"histograms must be 'summary' or 'buckets', got {mode!r}")
        self._sync_self_metrics()
        return prometheus_text(
            self._registry.families(),
            quantiles=self._quantiles,
            summary_window=self._summary_window,
            histograms=mode,
            buckets=self._buckets,
        )

    def to_dict(self) -> dict[str, Any]:
        """Current values, alert states and the last health report, JSON-ready."""
        return {
            "generated_at": self._wall(),
            "metrics": metrics_dict(
                self._registry.families(), quantiles=self._quantiles, windows=self._windows
            ),
            "alerts": [s.to_dict() for s in self.alerts()],
            "health": self._health.report().to_dict() if len(self._health) else None,
        }

    def _history_rows(
        self, since: float | None, resolution: float | None
    ) -> list[tuple[str, dict[str, str], str, list[HistoryPoint]]]:
        now = self._wall()
        rows = []
        for key in sorted(self._history.keys()):
            points = self._history.query(key, now, since, resolution)
            rows.append((key[0], dict(key[1]), key[2], points))
        return rows

    def export_json(
        self,
        *,
        history: bool = False,
        since: float | None = None,
        resolution: float | None = None,
        indent: int | None = None,
    ) -> str:
        """Current values (and, with ``history=True``, the history) as a JSON document."""
        doc = self.to_dict()
        if history:
            doc["history"] = [
                {
                    "name": name,
                    "labels": labels,
                    "stat": stat,
                    "points": [
                        [p.time, p.value, p.min, p.max, p.samples, p.resolution] for p in points
                    ],
                }
                for name, labels, stat, points in self._history_rows(since, resolution)
            ]
            doc["history_columns"] = ["time", "value", "min", "max", "samples", "resolution"]
        return json.dumps(_clean(doc), indent=indent, allow_nan=False, default=str)

    def export_csv(
        self, *, history: bool = False, since: float | None = None, resolution: float | None = None
    ) -> str:
        """Current values as CSV (``name,kind,labels,window,stat,value``), or with
        ``history=True`` the history (``time,name,labels,stat,resolution,value,min,max,samples``).
        Labels are a JSON object; text cells never start like a spreadsheet formula."""
        if history:
            return history_csv(self._history_rows(since, resolution))
        return csv_text(self._registry.families(), quantiles=self._quantiles, windows=self._windows)

    def router(self, auth: EndpointAuth | None = None) -> Router:
        """The route table ``serve()`` and ``asgi()`` answer from (see docs/monitor.md)."""
        return Router(monitor_routes(self), auth=auth)

    def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        auth: AuthSpec = None,
        tls: object = None,
        allow_unauthenticated: bool = False,
        limits: ServerLimits | None = None,
    ) -> MetricsServer:
        """Serve ``/metrics``, ``/metrics.json``, ``/health``, ``/health/live``,
        ``/health/ready`` and the pages from one event-loop thread.

        Args:
            host, port: where to listen (port 0: any free port).
            auth: credentials every endpoint asks for: an :class:`EndpointAuth`,
                a bearer token string, or a ``(username, password)`` pair.
            tls: ``(certfile, keyfile)`` or an ``ssl.SSLContext``: serve HTTPS.
            allow_unauthenticated: allow a non-loopback ``host`` without ``auth``.
            limits: connection and request bounds (:class:`ServerLimits`).

        ``/health`` and ``/health/ready`` answer 503 when unhealthy. Returns
        the running server (``.address``, ``.url``, ``.close()``);
        :meth:`close` stops it too.

        Raises:
            ConfigError: bad host or port; a non-loopback host without auth
                (unless ``allow_unauthenticated``); bad TLS files or limits.
            OSError: the address cannot be bound.
        """
        if not isinstance(host, str) or not host:
            raise ConfigError("host", host, "must be an address such as 127.0.0.1")
        port = check_int("port", port, minimum=0)
        if port > 65535:
            raise ConfigError("port", port, "must be at most 65535")
        endpoint_auth = as_auth(auth)
        check_bind(host, endpoint_auth, allow_unauthenticated)
        server = start_server(self.router(endpoint_auth), host, port, limits=limits, tls=tls)
        with self._lock:
            self._servers.append(server)
        return server

    def asgi(self, *, auth: AuthSpec = None) -> MonitorApp:
        """The same endpoints as an ASGI application, to mount under an existing app
        (``fastapi_app.mount("/monitor", monitor.asgi())``); no framework needed.
        ``auth`` as for :meth:`serve` (the host application does the binding)."""
        return MonitorApp(self.router(as_auth(auth)))

    # ------------------------------------------------------------------ stats

    def stats(self) -> MonitorStats:
        """A snapshot of the monitor itself."""
        fams = self._registry.families()
        statuses = self._rules.statuses()
        notifiers = tuple(self._dispatcher.stats())
        return MonitorStats(
            families=len(fams),
            series=sum(len(f.all_series()) for f in fams),
            overflowed=sum(f.overflowed for f in fams),
            history_series=len(self._history.keys()),
            history_bytes=self._history.memory_bytes(),
            history_dropped=self._history.dropped,
            rules=len(statuses),
            firing=sum(1 for s in statuses if s.state == "firing"),
            pending=sum(1 for s in statuses if s.state == "pending"),
            evaluation_errors=self._rules.errors,
            notifiers=notifiers,
            notifications_pending=sum(n.pending for n in notifiers),
            notification_failures=sum(n.failures for n in notifiers),
            notifications_dropped=sum(n.dropped for n in notifiers),
            health_checks=len(self._health),
            ticks=self._ticks,
            tick_errors=self._tick_errors,
            running=self.running,
            families_dropped=self._registry.families_dropped,
        )

    def __repr__(self) -> str:
        return f"PerformanceMonitor(name={self.name!r}, families={len(self._registry.families())})"
