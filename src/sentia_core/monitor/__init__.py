"""Performance monitor: metrics with in-process quantiles, system sampling,
history, alerts with notifiers, health checks and Prometheus/JSON/CSV exposition.

See ``docs/monitor.md``. Everything public is re-exported here.
"""

from ._alerts import (
    TRANSITIONS,
    Alert,
    AlertRule,
    AlertStatus,
    NotificationKind,
    NotifyState,
    RuleState,
    Severity,
    Signal,
    alert_state_diagram,
    classify,
    decide,
)
from ._asgi import MonitorApp
from ._dashboard import DASHBOARD_WINDOWS, Transition
from ._defaults import (
    CACHE_HITS_METRIC,
    CACHE_MISSES_METRIC,
    DEFAULT_RULE_NAMES,
    ERRORS_METRIC,
    REQUESTS_METRIC,
    RESPONSE_TIME_METRIC,
    default_rules,
)
from ._export import DEFAULT_BUCKETS
from ._expr import ExpressionError, parse_expression
from ._health import ComponentHealth, HealthReport, HealthStatus
from ._http import MetricsServer, ServerLimits, ServerStats
from ._metrics import (
    OVERFLOW_LABEL_VALUE,
    Counter,
    Gauge,
    Histogram,
    HistogramSnapshot,
    MetricFamily,
    MetricKind,
)
from ._monitor import EVENTS_METRIC, MonitorStats, PerformanceMonitor
from ._notify import (
    EmailNotifier,
    LoggingNotifier,
    NotificationError,
    Notifier,
    NotifierStats,
    SlackNotifier,
    WebhookNotifier,
)
from ._retention import DEFAULT_RETENTION, HistoryPoint
from ._routing import EndpointAuth
from ._sketch import QuantileSketch
from ._system import SystemCollector, SystemSample
from ._timing import Timer

__all__ = [
    "CACHE_HITS_METRIC",
    "CACHE_MISSES_METRIC",
    "DASHBOARD_WINDOWS",
    "DEFAULT_BUCKETS",
    "DEFAULT_RETENTION",
    "DEFAULT_RULE_NAMES",
    "ERRORS_METRIC",
    "EVENTS_METRIC",
    "OVERFLOW_LABEL_VALUE",
    "REQUESTS_METRIC",
    "RESPONSE_TIME_METRIC",
    "TRANSITIONS",
    "Alert",
    "AlertRule",
    "AlertStatus",
    "ComponentHealth",
    "Counter",
    "EmailNotifier",
    "EndpointAuth",
    "ExpressionError",
    "Gauge",
    "HealthReport",
    "HealthStatus",
    "Histogram",
    "HistogramSnapshot",
    "HistoryPoint",
    "LoggingNotifier",
    "MetricFamily",
    "MetricKind",
    "MetricsServer",
    "MonitorApp",
    "MonitorStats",
    "NotificationError",
    "NotificationKind",
    "Notifier",
    "NotifierStats",
    "NotifyState",
    "PerformanceMonitor",
    "QuantileSketch",
    "RuleState",
    "ServerLimits",
    "ServerStats",
    "Severity",
    "Signal",
    "SlackNotifier",
    "SystemCollector",
    "SystemSample",
    "Timer",
    "Transition",
    "WebhookNotifier",
    "alert_state_diagram",
    "classify",
    "decide",
    "default_rules",
    "parse_expression",
]
