"""The live dashboard: one page, its static assets, and the JSON document it polls.

Theory of operation: the page (``/`` and ``/dashboard``) is static HTML that
loads four files from ``/static/`` (the vendored uPlot script and stylesheet,
``dashboard.js`` and ``dashboard.css``), so it works offline and behind
``Content-Security-Policy: default-src 'self'`` with no inline script or
style. The script polls ``/dashboard.json?window=1h|24h|7d`` and draws what
it gets; every label and text goes into the DOM as text, never as markup.

The JSON is built from what the monitor already keeps: the history rings
(one aligned column per series, read in a single pass under the history
lock, :meth:`History.columns`), the alert states and a bounded log of recent
notifications, a bounded ring of state transitions (:class:`Transition`:
breakers, degraded caches; the facade records them from the events it
forwards), and *sections*: callables that add tables to a panel
(:meth:`PerformanceMonitor.add_dashboard_section`; the facade adds the
registry's instances and the SQL optimizer's shapes, slow queries, N+1
reports and index suggestions, all redacted). Counters become per-second
rates from consecutive buckets; latency quantiles come from the histograms'
history (``p50``/``p95``/``p99`` over the shortest window at each tick).
"""

from __future__ import annotations

import json
import math
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from sentia_core.errors import ConfigError

from ._retention import History, HistoryKey
from ._routing import CONTENT_SECURITY_POLICY

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "DASHBOARD_WINDOWS",
    "STATIC_FILES",
    "WINDOWS",
    "DashboardData",
    "Timeline",
    "Transition",
    "build_dashboard",
    "dashboard_response",
    "page_html",
    "static_file",
]

#: The time windows the page offers, in seconds, by the name used in ``?window=``.
WINDOWS: dict[str, float] = {"1h": 3600.0, "24h": 86400.0, "7d": 7 * 86400.0}
#: The public name of :data:`WINDOWS` (``sentia_core.monitor.DASHBOARD_WINDOWS``).
DASHBOARD_WINDOWS = WINDOWS

#: Sent with the page and its assets: nothing runs or loads from anywhere but here.

#: The files under ``/static/``, with their content types.
STATIC_FILES: dict[str, str] = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "uPlot.iife.min.js": "text/javascript; charset=utf-8",
    "uPlot.min.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}

#: Series per chart, at most (the busiest label sets are kept).
MAX_SERIES = 8
#: Routes whose latency quantiles are charted (the busiest).
LATENCY_ROUTES = 4
#: Rows per table, at most.
MAX_ROWS = 50

#: Numeric levels of states in the timeline charts (higher is worse).
STATE_LEVELS: dict[str, float] = {
    "closed": 0.0,
    "disabled": 0.0,
    "ok": 0.0,
    "half_open": 1.0,
    "open": 2.0,
    "forced_open": 2.0,
    "degraded": 2.0,
}

Response = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change shown on the dashboard's timelines.

    Attributes:
        at: wall-clock time of the change (seconds since the epoch).
        kind: what changed: ``"breaker"``, ``"cache"``, or any other word.
        subject: which one (the breaker's or cache's name).
        from_state: the state before (e.g. ``"closed"``).
        to_state: the state after (e.g. ``"open"``).
        reason: why, for people.
    """

    at: float
    kind: str
    subject: str
    from_state: str
    to_state: str
    reason: str


class Timeline:
    """A bounded ring of :class:`Transition` (the oldest are dropped first)."""

    def __init__(self, maxlen: int = 2000) -> None:
        self._ring: deque[Transition] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def add(self, transition: Transition) -> None:
        """Append one transition."""
        with self._lock:
            self._ring.append(transition)

    def items(self, kind: str | None = None, since: float | None = None) -> list[Transition]:
        """Transitions of ``kind`` (all kinds: None) at or after ``since``, oldest first."""
        with self._lock:
            items = list(self._ring)
        return [
            t
            for t in items
            if (kind is None or t.kind == kind) and (since is None or t.at >= since)
        ]

    def __len__(self) -> int:
        return len(self._ring)


@dataclass(frozen=True, slots=True)
class DashboardData:
    """What :func:`build_dashboard` reads (the monitor hands it over)."""

    history: History
    now: float
    alerts: Sequence[Mapping[str, Any]]
    alert_log: Sequence[Mapping[str, Any]]
    timeline: Timeline
    sections: Sequence[tuple[str, Callable[[], Mapping[str, Any]]]]


# --------------------------------------------------------------------------- #
# Series helpers
# --------------------------------------------------------------------------- #

Column = list[float | None]


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _rate(times: Sequence[float], col: Column) -> Column:
    """Per-second increase between consecutive buckets of a counter column."""
    out: Column = [None] * len(col)
    prev_t = prev_v = None
    for i, v in enumerate(col):
        if v is None:
            continue
        if prev_v is not None and prev_t is not None and v >= prev_v:
            out[i] = (v - prev_v) / (times[i] - prev_t)
        prev_t, prev_v = times[i], v
    return out


def _spread(col: Column) -> float:
    """How much a counter column grew (last minus first sample)."""
    values = [v for v in col if v is not None]
    return values[-1] - values[0] if values else 0.0


def _delta(col: Column) -> Column:
    out: Column = [None] * len(col)
    prev = None
    for i, v in enumerate(col):
        if v is None:
            continue
        if prev is not None and v >= prev:
            out[i] = v - prev
        prev = v
    return out


def _ratio(num: Column, den: Column, scale: float = 100.0) -> Column:
    return [
        (n / d * scale) if n is not None and d is not None and d > 0 else None
        for n, d in zip(num, den, strict=True)
    ]


def _sub(a: Column, b: Column) -> Column:
    return [x - y if x is not None and y is not None else None for x, y in zip(a, b, strict=True)]


def _add(a: Column, b: Column) -> Column:
    return [x + y if x is not None and y is not None else None for x, y in zip(a, b, strict=True)]


def _scale(col: Column, factor: float) -> Column:
    return [None if v is None else v * factor for v in col]


def series_label(labels: Mapping[str, str]) -> str:
    """A short display name for a label set: ``GET /items/{id}``, ``default``, ``all``."""
    if not labels:
        return "all"
    route = labels.get("route")
    if route is not None:
        method = labels.get("method")
        return f"{method} {route}" if method else route
    return " ".join(v for _, v in sorted(labels.items())) or "all"


class _Columns:
    """Every history column the dashboard needs, fetched in one pass."""

    def __init__(self, data: DashboardData, since: float, names: Iterable[str]) -> None:
        wanted = set(names)
        self.index: dict[str, list[HistoryKey]] = {}
        for key in data.history.keys():  # noqa: SIM118 - History is not a mapping
            if key[0] in wanted and key[2] in _STATS:
                self.index.setdefault(key[0], []).append(key)
        for keys in self.index.values():
            keys.sort()
        request: list[HistoryKey] = [k for keys in self.index.values() for k in keys]
        tier = data.history.pick_tier(data.now, since, None)
        #: the width of each point, seconds.
        self.resolution = data.history.tiers[tier][0]
        self.times, cols = data.history.columns(request, data.now, since, fields=_FIELDS)
        self._cols = dict(zip(request, cols, strict=True))

    def series(self, name: str, stat: str = "value") -> list[tuple[dict[str, str], Column]]:
        """(labels, column) of every series of ``name`` with ``stat``."""
        return [(dict(k[1]), self._cols[k]) for k in self.index.get(name, ()) if k[2] == stat]

    def by_labels(
        self, name: str, stat: str = "value"
    ) -> dict[tuple[tuple[str, str], ...], Column]:
        return {k[1]: self._cols[k] for k in self.index.get(name, ()) if k[2] == stat}


#: The history stats charted: counters' and gauges' values, histograms' quantiles.
_STATS = frozenset({"value", "p50", "p95", "p99"})

#: Which field of each metric's buckets a chart shows: the worst (max) state
#: for 0/1/2 levels and alert counts, the value (mean; last for counters) otherwise.
_FIELDS: dict[str, str] = {
    "breaker_state": "max",
    "cache_degraded": "max",
    "sentia_monitor_alerts_firing": "max",
    "sentia_monitor_alerts_pending": "max",
}


def _chart(
    cid: str,
    title: str,
    unit: str,
    fmt: str,
    series: Iterable[tuple[str, Column]],
    *,
    kind: str = "line",
    limit: int = MAX_SERIES,
    states: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    items = []
    for label, raw in series:
        col = raw
        present = [v for v in col if v is not None]
        if not present:  # nothing to draw in this window
            continue
        total = sum(present)
        if not math.isfinite(total):  # an infinite sample somewhere: JSON has no inf
            col = [_finite(v) for v in col]
            total = sum(v for v in col if v is not None)
        items.append((total, label, col))
    # The busiest series first (by their summed values), at most ``limit``.
    if len(items) > limit:
        items.sort(key=lambda it: -it[0])
        items = sorted(items[:limit], key=lambda it: it[1])
    return {
        "id": cid,
        "title": title,
        "unit": unit,
        "format": fmt,
        "kind": kind,
        "series": [{"label": label, "values": values} for _, label, values in items],
        **({"states": {str(k): v for k, v in states.items()}} if states else {}),
    }


def _table(
    tid: str, title: str, columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[Any]]
) -> dict[str, Any]:
    out: list[list[Any]] = []
    for row in rows:
        if len(out) >= MAX_ROWS:
            break
        out.append([_cell(v) for v in row])
    return {"id": tid, "title": title, "columns": [list(c) for c in columns], "rows": out}


def _cell(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    return str(v)


# --------------------------------------------------------------------------- #
# Panels
# --------------------------------------------------------------------------- #


def _http_panel(c: _Columns) -> dict[str, Any]:
    t = c.times
    requests = c.by_labels("app_requests_total")
    errors = c.by_labels("app_request_errors_total")
    rps = [(series_label(dict(lk)), _rate(t, col)) for lk, col in sorted(requests.items())]
    err = []
    for lk, col in sorted(requests.items()):
        e = errors.get(lk)
        if e is not None:
            err.append((series_label(dict(lk)), _ratio(_delta(e), _delta(col))))
    # Latency of the busiest routes (by requests in the window), three quantiles each.
    busiest = sorted(requests, key=lambda lk: -_spread(requests[lk]))[:LATENCY_ROUTES]
    latency = []
    for q in ("p50", "p95", "p99"):
        cols = c.by_labels("app_request_seconds", q)
        for lk in sorted(busiest):
            if lk in cols:
                latency.append((f"{q} {series_label(dict(lk))}", _scale(cols[lk], 1000.0)))
    return {
        "charts": [
            _chart("http.rps", "Requests per second", "req/s", "num", rps),
            _chart("http.errors", "Error rate", "%", "pct", err),
            _chart(
                "http.latency",
                "Latency p50 / p95 / p99",
                "ms",
                "ms",
                latency,
                limit=3 * LATENCY_ROUTES,
            ),
        ]
    }


def _cache_panel(c: _Columns, data: DashboardData, since: float) -> dict[str, Any]:
    t = c.times
    hits = c.by_labels("cache_hits_total")
    misses = c.by_labels("cache_misses_total")
    l2_hits = c.by_labels("cache_l2_hits_total")
    l2_misses = c.by_labels("cache_l2_misses_total")
    rates = []
    for lk in sorted(hits.keys() | misses.keys()):
        name = series_label(dict(lk))
        h, m = hits.get(lk), misses.get(lk)
        if h is None or m is None:
            continue
        dh, dm = _delta(h), _delta(m)
        l2h = l2_hits.get(lk)
        dl2 = _delta(l2h) if l2h is not None else [0.0 if v is not None else None for v in dh]
        rates.append((f"{name} L1", _ratio(_sub(dh, dl2), _add(dh, dm))))
        l2m = l2_misses.get(lk)
        if l2h is not None and l2m is not None:
            rates.append((f"{name} L2", _ratio(_delta(l2h), _add(_delta(l2h), _delta(l2m)))))
    evictions = [
        (series_label(labels), _rate(t, col)) for labels, col in c.series("cache_evictions_total")
    ]
    degraded = [(series_label(labels), col) for labels, col in c.series("cache_degraded")]
    periods = _periods(data.timeline.items("cache"), since)
    return {
        "charts": [
            _chart("cache.hit_rate", "Hit rate per cache and layer", "%", "pct", rates),
            _chart("cache.evictions", "Evictions per second", "1/s", "num", evictions),
            _chart(
                "cache.degraded",
                "Degraded (L2 bypassed)",
                "state",
                "state",
                degraded,
                kind="step",
                states={0: "ok", 2: "degraded"},
            ),
        ],
        "tables": [
            _table(
                "cache.degraded_periods",
                "Degraded periods",
                [("Cache", "text"), ("From", "time"), ("Until", "time"), ("Reason", "text")],
                periods,
            )
        ],
    }


def _periods(transitions: Sequence[Transition], since: float) -> list[list[Any]]:
    """(subject, start, end or None, reason) of each degraded stretch, newest first."""
    open_at: dict[str, tuple[float, str]] = {}
    rows: list[list[Any]] = []
    for tr in transitions:
        if tr.to_state == "degraded":
            open_at.setdefault(tr.subject, (tr.at, tr.reason))
        elif tr.subject in open_at:
            start, reason = open_at.pop(tr.subject)
            if tr.at >= since:
                rows.append([tr.subject, start, tr.at, reason])
    rows.extend([s, start, None, reason] for s, (start, reason) in open_at.items())
    rows.sort(key=lambda r: -r[1])
    return rows


def _breaker_panel(c: _Columns, data: DashboardData, since: float) -> dict[str, Any]:
    t = c.times
    transitions = data.timeline.items("breaker")
    by_name: dict[str, list[Transition]] = {}
    for tr in transitions:
        by_name.setdefault(tr.subject, []).append(tr)
    gauges = {series_label(labels): col for labels, col in c.series("breaker_state")}
    states = []
    for name in sorted(gauges.keys() | by_name.keys()):
        col = list(gauges.get(name, [None] * len(t)))
        _overlay(t, c.resolution, col, by_name.get(name, ()))
        states.append((name, col))
    denials = [
        (series_label(labels), _rate(t, col)) for labels, col in c.series("ratelimit_denied_total")
    ]
    rows = [
        [tr.at, tr.subject, tr.from_state, tr.to_state, tr.reason]
        for tr in reversed(transitions)
        if tr.at >= since
    ]
    return {
        "charts": [
            _chart(
                "breakers.state",
                "Breaker state",
                "state",
                "state",
                states,
                kind="step",
                states={0: "closed", 1: "half-open", 2: "open"},
            ),
            _chart("ratelimit.denied", "Rate-limit denials per tier", "1/s", "num", denials),
        ],
        "tables": [
            _table(
                "breakers.transitions",
                "Breaker transitions",
                [
                    ("Time", "time"),
                    ("Breaker", "text"),
                    ("From", "text"),
                    ("To", "text"),
                    ("Reason", "text"),
                ],
                rows,
            )
        ],
    }


def _overlay(
    times: Sequence[float], res: float, col: Column, transitions: Sequence[Transition]
) -> None:
    """Make each bucket the worst state the subject was in during it: the sampled
    value, the state held when the bucket began (known once a transition was
    seen), and every state a transition within the bucket left or entered."""
    if not times or not transitions:
        return
    j, n = 0, len(transitions)
    state: float | None = None  # the level after the last transition so far
    known = False
    for i, start in enumerate(times):
        end = start + res
        levels: list[float | None] = [] if col[i] is None else [col[i]]
        if known and state is not None:
            levels.append(state)
        while j < n and transitions[j].at < end:
            tr = transitions[j]
            to = STATE_LEVELS.get(tr.to_state)
            if tr.at >= start:
                before = STATE_LEVELS.get(tr.from_state)
                levels.extend(v for v in (before, to) if v is not None)
            state, known = to, True
            j += 1
        col[i] = max(v for v in levels if v is not None) if levels else None


def _registry_panel(c: _Columns) -> dict[str, Any]:
    healthy = [
        (f"{series_label(lb)} healthy", col) for lb, col in c.series("registry_healthy_instances")
    ]
    total = [(f"{series_label(lb)} total", col) for lb, col in c.series("registry_instances")]
    outstanding = [(series_label(lb), col) for lb, col in c.series("registry_outstanding")]
    ejections = [(series_label(lb), col) for lb, col in c.series("registry_ejected_instances")]
    return {
        "charts": [
            _chart(
                "registry.instances",
                "Instances per service",
                "instances",
                "num",
                [*healthy, *total],
                kind="step",
            ),
            _chart(
                "registry.ejected", "Ejected instances", "instances", "num", ejections, kind="step"
            ),
            _chart("registry.outstanding", "Outstanding calls", "calls", "num", outstanding),
        ]
    }


def _alerts_panel(c: _Columns, data: DashboardData, since: float) -> dict[str, Any]:
    firing = [("firing", col) for _, col in c.series("sentia_monitor_alerts_firing")]
    pending = [("pending", col) for _, col in c.series("sentia_monitor_alerts_pending")]
    states = sorted(
        data.alerts,
        key=lambda s: ({"firing": 0, "pending": 1, "resolved": 2}.get(s["state"], 3), s["rule"]),
    )
    log = [a for a in reversed(data.alert_log) if a["at"] >= since]
    return {
        "charts": [
            _chart(
                "alerts.count",
                "Alert rules firing and pending",
                "rules",
                "num",
                [*firing, *pending],
                kind="step",
            ),
        ],
        "tables": [
            _table(
                "alerts.rules",
                "Rules",
                [
                    ("Rule", "text"),
                    ("State", "state"),
                    ("Severity", "text"),
                    ("Value", "num"),
                    ("Since", "time"),
                    ("Last notified", "time"),
                ],
                (
                    [
                        s["rule"],
                        s["state"],
                        s["severity"],
                        s["value"],
                        s["since"],
                        s["last_notified_at"],
                    ]
                    for s in states
                ),
            ),
            _table(
                "alerts.log",
                "Notifications",
                [
                    ("Time", "time"),
                    ("Rule", "text"),
                    ("Kind", "state"),
                    ("Severity", "text"),
                    ("Value", "num"),
                    ("Threshold", "num"),
                ],
                (
                    [a["at"], a["rule"], a["kind"], a["severity"], a["value"], a["threshold"]]
                    for a in log
                ),
            ),
        ],
    }


def _system_panel(c: _Columns) -> dict[str, Any]:
    cpu = [("machine", col) for _, col in c.series("system_cpu_percent")]
    cpu += [("this process", col) for _, col in c.series("process_cpu_percent")]
    mem = [("machine", col) for _, col in c.series("system_memory_percent")]
    rss = [("this process", col) for _, col in c.series("process_resident_memory_bytes")]
    return {
        "charts": [
            _chart("system.cpu", "CPU", "%", "pct", cpu),
            _chart("system.memory", "Memory in use", "%", "pct", mem),
            _chart("system.rss", "Process resident memory", "bytes", "bytes", rss),
        ]
    }


def _sql_panel(c: _Columns) -> dict[str, Any]:
    t = c.times
    qps = [
        (f"{series_label(lb)} queries", _rate(t, col)) for lb, col in c.series("sql_queries_total")
    ]
    qps += [
        (f"{series_label(lb)} slow", _rate(t, col))
        for lb, col in c.series("sql_slow_queries_total")
    ]
    busy = [
        (series_label(lb), _scale(_rate(t, col), 1000.0))
        for lb, col in c.series("sql_query_seconds_total")
    ]
    return {
        "charts": [
            _chart("sql.qps", "Queries per second", "1/s", "num", qps),
            _chart("sql.time", "Time in SQL", "ms/s", "num", busy),
        ]
    }


#: Panels in page order: (id, title).
_PANELS: tuple[tuple[str, str], ...] = (
    ("http", "Requests"),
    ("cache", "Cache"),
    ("breakers", "Breakers and rate limits"),
    ("registry", "Service registry"),
    ("alerts", "Alerts"),
    ("system", "System"),
    ("sql", "SQL"),
)

_METRICS = (
    "app_requests_total",
    "app_request_errors_total",
    "app_request_seconds",
    "cache_hits_total",
    "cache_misses_total",
    "cache_l2_hits_total",
    "cache_l2_misses_total",
    "cache_evictions_total",
    "cache_degraded",
    "breaker_state",
    "ratelimit_denied_total",
    "registry_instances",
    "registry_healthy_instances",
    "registry_outstanding",
    "registry_ejected_instances",
    "sentia_monitor_alerts_firing",
    "sentia_monitor_alerts_pending",
    "system_cpu_percent",
    "process_cpu_percent",
    "system_memory_percent",
    "process_resident_memory_bytes",
    "sql_queries_total",
    "sql_slow_queries_total",
    "sql_query_seconds_total",
)


def check_window(window: object) -> str:
    """``window`` if it names one of :data:`WINDOWS`.

    Raises:
        ConfigError: it does not.
    """
    if not isinstance(window, str) or window not in WINDOWS:
        raise ConfigError("window", window, f"must be one of {sorted(WINDOWS)}")
    return window


def build_dashboard(data: DashboardData, window: str = "1h") -> dict[str, Any]:
    """The dashboard document for ``window`` (see the module docstring), JSON-ready.

    Raises:
        ConfigError: ``window`` is not one of :data:`WINDOWS`.
    """
    span = WINDOWS[check_window(window)]
    since = data.now - span
    cols = _Columns(data, since, _METRICS)
    built: dict[str, dict[str, Any]] = {
        "http": _http_panel(cols),
        "cache": _cache_panel(cols, data, since),
        "breakers": _breaker_panel(cols, data, since),
        "registry": _registry_panel(cols),
        "alerts": _alerts_panel(cols, data, since),
        "system": _system_panel(cols),
        "sql": _sql_panel(cols),
    }
    titles = dict(_PANELS)
    for name, fn in data.sections:
        panel = built.setdefault(name, {"charts": []})
        titles.setdefault(name, name)
        try:
            extra = fn()
            tables = extra.get("tables", ())
            panel.setdefault("tables", []).extend(
                _table(str(t["id"]), str(t["title"]), t["columns"], t["rows"]) for t in tables
            )
        except Exception as exc:  # a section failed: show it, keep the rest
            panel["error"] = f"{type(exc).__name__}: {exc}"
    return {
        "generated_at": data.now,
        "window": window,
        "windows": list(WINDOWS),
        "since": since,
        "resolution": cols.resolution,
        "times": cols.times,
        "panels": [
            {"id": pid, "title": titles[pid], "charts": [], "tables": [], **built[pid]}
            for pid in built
        ],
    }


# --------------------------------------------------------------------------- #
# HTTP
# --------------------------------------------------------------------------- #

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sentia_core monitor</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/uPlot.min.css">
<link rel="stylesheet" href="/static/dashboard.css">
<script src="/static/uPlot.iife.min.js" defer></script>
<script src="/static/dashboard.js" defer></script>
</head>
<body>
<header>
<h1>sentia_core monitor</h1>
<nav id="windows" aria-label="time window"></nav>
<span id="status" role="status">loading...</span>
<span class="links"><a href="/metrics">/metrics</a> <a href="/metrics.json">/metrics.json</a>
<a href="/health">/health</a></span>
</header>
<main id="panels"></main>
<noscript>The dashboard needs JavaScript; the raw data is at
<a href="/dashboard.json">/dashboard.json</a>.</noscript>
</body>
</html>
"""


def page_html() -> bytes:
    """The dashboard page (static: everything else comes from ``/static/`` and the JSON)."""
    return _PAGE.encode()


_static_cache: dict[str, bytes] = {}


def static_file(name: str) -> bytes | None:
    """The bytes of ``/static/<name>``, or None for any name not in :data:`STATIC_FILES`."""
    if name not in STATIC_FILES:
        return None
    found = _static_cache.get(name)
    if found is None:
        found = (
            resources.files("sentia_core.monitor").joinpath("static").joinpath(name).read_bytes()
        )
        _static_cache[name] = found
    return found


def _headers(ctype: str, cache: str = "no-store") -> dict[str, str]:
    return {
        "Content-Type": ctype,
        "Cache-Control": cache,
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def dashboard_response(
    path: str, query: str, build: Callable[[str], dict[str, Any]]
) -> Response | None:
    """Answer a dashboard path: ``/``, ``/dashboard``, ``/dashboard.json``, ``/static/*``.

    Returns (status, headers, body), or None for a path that is not the
    dashboard's. ``build(window)`` makes the document. A bad ``window`` is a
    400 with a JSON error; hostile query strings are bounded.
    """
    if path in ("/", "/dashboard", "/dashboard/"):
        return 200, _headers("text/html; charset=utf-8"), page_html()
    if path == "/dashboard.json":
        try:
            params = parse_qs(query[:512], max_num_fields=8)
        except ValueError:
            params = {}
        window = params.get("window", ["1h"])[-1]
        if window not in WINDOWS:
            body = json.dumps({"error": f"window must be one of {sorted(WINDOWS)}"}).encode()
            return 400, _headers("application/json"), body
        doc = build(window)
        body = json.dumps(doc, allow_nan=False, default=str, separators=(",", ":")).encode()
        return 200, _headers("application/json"), body
    if path.startswith("/static/"):
        name = path[len("/static/") :]
        data = static_file(name)
        if data is None:
            return None
        return 200, _headers(STATIC_FILES[name], "public, max-age=3600"), data
    return None
