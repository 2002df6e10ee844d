"""What the facade feeds the monitor's dashboard (composition only, no logic of its own).

Before every monitor tick :meth:`DashboardFeed.collect` copies component
snapshots into monitor metrics the dashboard charts read (cache layers,
evictions and degraded state, breaker state levels, rate-limit denials per
tier, registry instances, SQL totals); :meth:`DashboardFeed.on_event` turns
breaker transitions into timeline entries; and the sections add tables
(current breakers, registry instances, SQL shapes, slow queries, N+1 reports
and index suggestions — fingerprints only, so no literal ever reaches the page).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .breaker import BreakerStateChanged
from .monitor._dashboard import STATE_LEVELS

if TYPE_CHECKING:
    from ._facade import Sentia
    from .sql import VerifiedSuggestion

__all__ = ["DashboardFeed"]


class DashboardFeed:
    """Feeds one :class:`~sentia_core.Sentia`'s components into its monitor's dashboard."""

    def __init__(self, app: Sentia) -> None:
        # The monitor's thread holds this feed's methods: a strong reference to
        # the facade here would keep an unclosed facade (and its threads) alive.
        self._ref = weakref.ref(app)
        self._reported: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._degraded: dict[str, bool] = {}
        #: the latest :meth:`Sentia.verify_indexes` results, shown in the SQL panel.
        self.verified: Sequence[VerifiedSuggestion] = ()
        monitor = app.monitor
        monitor.add_collector(self.collect)
        monitor.add_dashboard_section("breakers", self._breakers_section)
        monitor.add_dashboard_section("registry", self._registry_section)
        monitor.add_dashboard_section("sql", self._sql_section)

    @property
    def _app(self) -> Sentia:
        app = self._ref()
        if app is None:
            raise ReferenceError("the application this dashboard fed was garbage-collected")
        return app

    # ------------------------------------------------------------------ metrics

    def _count(self, metric: str, total: float, **labels: str) -> None:
        """Advance counter ``metric`` to a component's running ``total``."""
        key = (metric, tuple(sorted(labels.items())))
        delta = total - self._reported.get(key, 0.0)
        counter = self._app.monitor.counter(metric, labels)
        if delta > 0:
            counter.inc(delta)
        self._reported[key] = max(total, self._reported.get(key, 0.0))

    def collect(self) -> None:
        """Component snapshots into monitor metrics (a monitor collector)."""
        app, monitor = self._app, self._app.monitor
        with app._lock:
            caches = dict(app._caches)
        for name, cache in caches.items():
            st = cache.stats()
            # Hit rates need both counters from the first tick on (the facade
            # creates them on their first increment).
            monitor.counter("cache_hits_total", cache=name)
            monitor.counter("cache_misses_total", cache=name)
            if st.redis is not None:
                self._count("cache_l2_hits_total", st.backend_hits, cache=name)
                self._count("cache_l2_misses_total", st.backend_misses, cache=name)
            for reason in ("size", "bytes", "ttl"):
                self._count(
                    "cache_evictions_total",
                    getattr(st.evictions, reason),
                    cache=name,
                    reason=reason,
                )
            monitor.gauge("cache_degraded", cache=name).set(2.0 if st.degraded else 0.0)
            was = self._degraded.get(name, False)
            if st.degraded != was:
                redis = st.redis
                reason = (
                    f"Redis breaker {redis.breaker}, channel {'up' if redis.channel_up else 'down'}"
                    if redis is not None
                    else ""
                )
                monitor.record_transition(
                    "cache",
                    name,
                    "degraded" if was else "ok",
                    "degraded" if st.degraded else "ok",
                    reason,
                )
                self._degraded[name] = st.degraded
        for name, breaker in app.breakers().items():
            level = STATE_LEVELS.get(breaker.state.value, 0.0)
            monitor.gauge("breaker_state", breaker=name).set(level)
        for tier, ts in app.limiter.stats().tiers.items():
            self._count("ratelimit_denied_total", ts.denied, tier=tier)
            self._count("ratelimit_allowed_total", ts.allowed, tier=tier)
        registry = app._registry
        if registry is not None:
            for service, ss in registry.stats().services.items():
                instances = ss.per_instance.values()
                monitor.gauge("registry_instances", service=service).set(ss.instances)
                monitor.gauge("registry_healthy_instances", service=service).set(ss.healthy)
                monitor.gauge("registry_ejected_instances", service=service).set(
                    sum(1 for i in instances if i.ejected)
                )
                monitor.gauge("registry_outstanding", service=service).set(
                    sum(i.outstanding for i in instances)
                )
        qs = app.queries.stats()
        self._count("sql_queries_total", qs.calls)
        self._count("sql_slow_queries_total", qs.slow_queries)
        self._count("sql_query_seconds_total", qs.total_time)

    def on_event(self, event: object) -> None:
        """Breaker transitions into the monitor's timeline (a facade event hook)."""
        if isinstance(event, BreakerStateChanged):
            self._app.monitor.record_transition(
                "breaker",
                event.breaker,
                event.from_state.value,
                event.to_state.value,
                event.reason,
                at=event.at,
            )

    # ------------------------------------------------------------------ tables

    def _breakers_section(self) -> Mapping[str, Any]:
        rows = []
        for name, breaker in sorted(self._app.breakers().items()):
            m = breaker.metrics()
            rows.append(
                [
                    name,
                    m.state.value,
                    m.failure_rate * 100,
                    m.calls,
                    m.rejected,
                    m.times_opened,
                    m.last_transition_at,
                ]
            )
        return {
            "tables": [
                {
                    "id": "breakers.now",
                    "title": "Breakers now",
                    "columns": [
                        ["Breaker", "text"],
                        ["State", "state"],
                        ["Failure rate", "pct"],
                        ["Calls in window", "num"],
                        ["Rejected", "num"],
                        ["Times opened", "num"],
                        ["Last transition", "time"],
                    ],
                    "rows": rows,
                }
            ]
        }

    def _registry_section(self) -> Mapping[str, Any]:
        registry = self._app._registry
        rows = []
        if registry is not None:
            for service, ss in sorted(registry.stats().services.items()):
                for iid, st in sorted(ss.per_instance.items()):
                    health = "ejected" if st.ejected else st.status.value
                    rows.append(
                        [
                            service,
                            iid,
                            st.address,
                            st.zone,
                            health,
                            st.ejections,
                            st.outstanding,
                            st.requests,
                            st.failures,
                            st.latency_p95 * 1000,
                        ]
                    )
        return {
            "tables": [
                {
                    "id": "registry.instances",
                    "title": "Instances",
                    "columns": [
                        ["Service", "text"],
                        ["Instance", "text"],
                        ["Address", "text"],
                        ["Zone", "text"],
                        ["Health", "state"],
                        ["Ejections", "num"],
                        ["Outstanding", "num"],
                        ["Requests", "num"],
                        ["Failures", "num"],
                        ["p95", "ms"],
                    ],
                    "rows": rows,
                }
            ]
        }

    def _sql_section(self) -> Mapping[str, Any]:
        queries = self._app.queries
        top = queries.top(10)
        slow = list(reversed(queries.slow_queries()))
        reports = queries.nplusone_reports()
        return {
            "tables": [
                {
                    "id": "sql.top",
                    "title": "Top shapes by total time",
                    "columns": [
                        ["Shape", "code"],
                        ["Calls", "num"],
                        ["Total", "ms"],
                        ["Mean", "ms"],
                        ["p95", "ms"],
                        ["Slow", "num"],
                    ],
                    "rows": [
                        [
                            s.fingerprint,
                            s.calls,
                            s.total_time * 1000,
                            s.mean_time * 1000,
                            s.p95 * 1000,
                            s.slow_calls,
                        ]
                        for s in top
                    ],
                },
                {
                    "id": "sql.slow",
                    "title": "Slow queries",
                    "columns": [
                        ["Time", "time"],
                        ["Duration", "ms"],
                        ["Shape", "code"],
                        ["Call site", "code"],
                    ],
                    "rows": [[q.at, q.duration * 1000, q.fingerprint, q.call_site] for q in slow],
                },
                {
                    "id": "sql.nplusone",
                    "title": "N+1 reports",
                    "columns": [
                        ["Unit", "text"],
                        ["Repeats", "num"],
                        ["Shape", "code"],
                        ["Call site", "code"],
                        ["Fix", "text"],
                    ],
                    "rows": [[r.unit, r.count, r.fingerprint, r.call_site, r.fix] for r in reports],
                },
                {
                    "id": "sql.indexes",
                    "title": "Index suggestions (verified against the planner)",
                    "columns": [
                        ["Index", "code"],
                        ["Verdict", "state"],
                        ["Method", "text"],
                        ["Saves", "ms"],
                        ["Why", "text"],
                    ],
                    "rows": [
                        [
                            v.suggestion.ddl,
                            "accepted" if v.accepted else "rejected",
                            v.method,
                            v.benefit * 1000,
                            v.verdict,
                        ]
                        for v in self.verified
                    ],
                },
            ]
        }
