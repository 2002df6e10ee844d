"""The original deployment's alert thresholds as ready-made rules.

CPU 70/90 %, memory 80/95 %, p95 response time 2/5 s, error rate 5/10 %,
cache hit rate below 80/60 % — the same defaults, units and names as
``sentia_core.config.AlertsConfig`` (error and hit rates are fractions), so
``default_rules(**asdict(config.monitor.alerts))`` builds them from a config.
"""

from __future__ import annotations

from collections.abc import Iterable

from sentia_core.errors import ConfigError

from ._alerts import AlertRule

__all__ = [
    "CACHE_HITS_METRIC",
    "CACHE_MISSES_METRIC",
    "DEFAULT_RULE_NAMES",
    "ERRORS_METRIC",
    "REQUESTS_METRIC",
    "RESPONSE_TIME_METRIC",
    "default_rules",
]

#: Histogram of request durations in seconds (:meth:`PerformanceMonitor.record_request`).
RESPONSE_TIME_METRIC = "app_request_seconds"
#: Counter of requests handled.
REQUESTS_METRIC = "app_requests_total"
#: Counter of requests that failed.
ERRORS_METRIC = "app_request_errors_total"
#: Counter of cache hits.
CACHE_HITS_METRIC = "cache_hits_total"
#: Counter of cache misses.
CACHE_MISSES_METRIC = "cache_misses_total"

#: The names of the rules :func:`default_rules` builds, in order.
DEFAULT_RULE_NAMES = ("cpu", "memory", "response_time", "error_rate", "cache_hit_rate")


def default_rules(
    *,
    cpu_warning: float = 70.0,
    cpu_critical: float = 90.0,
    memory_warning: float = 80.0,
    memory_critical: float = 95.0,
    response_time_warning: float = 2.0,
    response_time_critical: float = 5.0,
    error_rate_warning: float = 0.05,
    error_rate_critical: float = 0.10,
    cache_hit_rate_warning: float = 0.80,
    cache_hit_rate_critical: float = 0.60,
    disabled: Iterable[str] = (),
    for_seconds: float = 60.0,
    cooldown: float = 300.0,
    window: str = "5m",
    response_time_metric: str = RESPONSE_TIME_METRIC,
    requests_metric: str = REQUESTS_METRIC,
    errors_metric: str = ERRORS_METRIC,
    cache_hits_metric: str = CACHE_HITS_METRIC,
    cache_misses_metric: str = CACHE_MISSES_METRIC,
) -> list[AlertRule]:
    """The default alert rules (names in :data:`DEFAULT_RULE_NAMES`).

    Args:
        cpu_warning, cpu_critical: ``system_cpu_percent`` thresholds (percent).
        memory_warning, memory_critical: ``system_memory_percent`` thresholds (percent).
        response_time_warning, response_time_critical: p95 of the response-time
            histogram over ``window`` (seconds).
        error_rate_warning, error_rate_critical: errors / requests over ``window``
            (fraction, 0.05 = 5 %).
        cache_hit_rate_warning, cache_hit_rate_critical: hits / (hits + misses)
            over ``window``; the rule fires *below* them (fraction).
        disabled: rule names to leave out.
        for_seconds: how long each condition must hold before firing.
        cooldown: each rule's notification cooldown (seconds).
        window: the window of the rate and quantile expressions (e.g. ``"5m"``).
        response_time_metric, requests_metric, errors_metric, cache_hits_metric,
        cache_misses_metric: the metric names the rules read.

    Raises:
        ConfigError: an unknown name in ``disabled``, or an invalid threshold.
    """
    skip = set(disabled)
    unknown = skip - set(DEFAULT_RULE_NAMES)
    if unknown:
        raise ConfigError("disabled", sorted(unknown), f"known rules: {list(DEFAULT_RULE_NAMES)}")
    w = window
    hits = f"rate({cache_hits_metric}[{w}])"
    misses = f"rate({cache_misses_metric}[{w}])"
    rules = [
        AlertRule(
            "cpu",
            "system_cpu_percent",
            warning=cpu_warning,
            critical=cpu_critical,
            description="Machine CPU usage (percent). Scale out or find the hot path.",
            for_seconds=for_seconds,
            cooldown=cooldown,
        ),
        AlertRule(
            "memory",
            "system_memory_percent",
            warning=memory_warning,
            critical=memory_critical,
            description="Machine memory usage (percent). Optimize or restart.",
            for_seconds=for_seconds,
            cooldown=cooldown,
        ),
        AlertRule(
            "response_time",
            f"p95({response_time_metric}[{w}])",
            warning=response_time_warning,
            critical=response_time_critical,
            description="95th percentile response time (seconds). Investigate bottlenecks.",
            for_seconds=for_seconds,
            cooldown=cooldown,
        ),
        AlertRule(
            "error_rate",
            f"rate({errors_metric}[{w}]) / rate({requests_metric}[{w}])",
            warning=error_rate_warning,
            critical=error_rate_critical,
            description="Failed requests / requests. Emergency response.",
            for_seconds=for_seconds,
            cooldown=cooldown,
        ),
        AlertRule(
            "cache_hit_rate",
            f"{hits} / ({hits} + {misses})",
            warning=cache_hit_rate_warning,
            critical=cache_hit_rate_critical,
            above=False,
            description="Cache hits / lookups. Review the cache strategy.",
            for_seconds=for_seconds,
            cooldown=cooldown,
        ),
    ]
    return [r for r in rules if r.name not in skip]
