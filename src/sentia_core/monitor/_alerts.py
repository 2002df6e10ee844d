"""Alert rules: thresholds, ``for`` durations, hysteresis, escalation, cooldown.

Theory of operation. Each evaluation turns a rule's current value into one
:class:`Signal` (pure: :func:`classify`), and :data:`TRANSITIONS` maps
``(state, signal)`` to the next :class:`RuleState` — nothing else moves a
rule. Then :func:`decide` (pure) compares the severity receivers should know
about with the one they were last told and returns at most one notification.

* ``for_seconds`` (Prometheus' ``for``): a breach must hold on every
  evaluation for that long before the rule fires; until then it is pending.
  Escalation to critical needs the critical threshold to hold as long.
* Hysteresis: once firing, a rule resolves only when the value crosses
  ``resolve_below`` (``resolve_above`` for rules that fire below a threshold);
  in between it keeps firing (Prometheus has no such thing: prometheus#10536).
* Notifications: a new firing, an escalation, a de-escalation, a repeat
  (every ``repeat_interval`` while firing) and a resolution. Escalations and
  resolutions go out at once; a new firing or a de-escalation within
  ``cooldown`` seconds of the rule's previous notification is held back until
  the cooldown ends (and dropped if the rule resolves meanwhile, together with
  that resolution), so a flapping metric cannot flood receivers, and
  receivers always see firing and resolved strictly alternate.
* No data (no series yet, an empty window) counts as "not breaching".
"""

from __future__ import annotations

import enum
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sentia_core._events import Event
from sentia_core._validate import check_name, check_non_negative, check_optional_positive
from sentia_core.errors import ConfigError

from ._expr import (
    EvalState,
    Expression,
    ExpressionError,
    MetricSource,
    evaluate,
    parse_expression,
)

__all__ = [
    "TRANSITIONS",
    "Alert",
    "AlertRule",
    "AlertStatus",
    "NotificationKind",
    "NotifyState",
    "RuleEngine",
    "RuleState",
    "Severity",
    "Signal",
    "alert_state_diagram",
    "classify",
    "decide",
]


class Severity(str, enum.Enum):
    """How bad a firing alert is."""

    WARNING = "warning"
    CRITICAL = "critical"

    def __str__(self) -> str:
        return self.value


class RuleState(str, enum.Enum):
    """Where a rule is. ``phase`` is the coarse name (inactive/pending/firing/resolved)."""

    INACTIVE = "inactive"
    """Never breached, or a pending breach went away before ``for_seconds``."""
    PENDING = "pending"
    """Breaching, for less than ``for_seconds`` so far."""
    FIRING_WARNING = "firing_warning"
    """Firing at warning severity."""
    FIRING_CRITICAL = "firing_critical"
    """Firing at critical severity."""
    RESOLVED = "resolved"
    """Was firing; the value crossed the resolve threshold."""

    @property
    def phase(self) -> str:
        """``"inactive"``, ``"pending"``, ``"firing"`` or ``"resolved"``."""
        return "firing" if self.value.startswith("firing") else self.value

    @property
    def severity(self) -> Severity | None:
        """The severity while firing, else None."""
        if self is RuleState.FIRING_WARNING:
            return Severity.WARNING
        if self is RuleState.FIRING_CRITICAL:
            return Severity.CRITICAL
        return None

    def __str__(self) -> str:
        return self.value


class Signal(str, enum.Enum):
    """What one evaluation saw, reduced to what the state table needs."""

    CRITICAL_READY = "critical_ready"
    """Beyond the critical threshold for at least ``for_seconds``."""
    WARNING_READY = "warning_ready"
    """Beyond the warning threshold for at least ``for_seconds`` (and not critical-ready)."""
    BREACH_WAIT = "breach_wait"
    """Beyond a threshold, not yet for ``for_seconds``."""
    HOLD = "hold"
    """Not beyond any threshold, but not past the resolve threshold either (hysteresis band)."""
    CLEAR = "clear"
    """Past the resolve threshold, or no data."""

    def __str__(self) -> str:
        return self.value


class NotificationKind(str, enum.Enum):
    """Why a notification was sent."""

    FIRING = "firing"
    ESCALATED = "escalated"
    DEESCALATED = "deescalated"
    REPEAT = "repeat"
    RESOLVED = "resolved"

    def __str__(self) -> str:
        return self.value


_S = RuleState
_G = Signal

#: (state, signal) -> next state. The only place rule transitions are defined.
TRANSITIONS: dict[tuple[RuleState, Signal], RuleState] = {
    (_S.INACTIVE, _G.CRITICAL_READY): _S.FIRING_CRITICAL,
    (_S.INACTIVE, _G.WARNING_READY): _S.FIRING_WARNING,
    (_S.INACTIVE, _G.BREACH_WAIT): _S.PENDING,
    (_S.INACTIVE, _G.HOLD): _S.INACTIVE,
    (_S.INACTIVE, _G.CLEAR): _S.INACTIVE,
    (_S.PENDING, _G.CRITICAL_READY): _S.FIRING_CRITICAL,
    (_S.PENDING, _G.WARNING_READY): _S.FIRING_WARNING,
    (_S.PENDING, _G.BREACH_WAIT): _S.PENDING,
    (_S.PENDING, _G.HOLD): _S.INACTIVE,
    (_S.PENDING, _G.CLEAR): _S.INACTIVE,
    (_S.FIRING_WARNING, _G.CRITICAL_READY): _S.FIRING_CRITICAL,
    (_S.FIRING_WARNING, _G.WARNING_READY): _S.FIRING_WARNING,
    (_S.FIRING_WARNING, _G.BREACH_WAIT): _S.FIRING_WARNING,
    (_S.FIRING_WARNING, _G.HOLD): _S.FIRING_WARNING,
    (_S.FIRING_WARNING, _G.CLEAR): _S.RESOLVED,
    (_S.FIRING_CRITICAL, _G.CRITICAL_READY): _S.FIRING_CRITICAL,
    (_S.FIRING_CRITICAL, _G.WARNING_READY): _S.FIRING_WARNING,
    (_S.FIRING_CRITICAL, _G.BREACH_WAIT): _S.FIRING_CRITICAL,
    (_S.FIRING_CRITICAL, _G.HOLD): _S.FIRING_CRITICAL,
    (_S.FIRING_CRITICAL, _G.CLEAR): _S.RESOLVED,
    (_S.RESOLVED, _G.CRITICAL_READY): _S.FIRING_CRITICAL,
    (_S.RESOLVED, _G.WARNING_READY): _S.FIRING_WARNING,
    (_S.RESOLVED, _G.BREACH_WAIT): _S.PENDING,
    (_S.RESOLVED, _G.HOLD): _S.RESOLVED,
    (_S.RESOLVED, _G.CLEAR): _S.RESOLVED,
}


def alert_state_diagram() -> str:
    """The rule state machine as Mermaid ``stateDiagram-v2`` text, from :data:`TRANSITIONS`."""
    lines = ["stateDiagram-v2", f"    [*] --> {_S.INACTIVE.value}"]
    arrows: dict[tuple[RuleState, RuleState], list[str]] = {}
    for (state, signal), target in TRANSITIONS.items():
        if state is not target:
            arrows.setdefault((state, target), []).append(signal.value)
    for (state, target), signals in arrows.items():
        lines.append(f"    {state.value} --> {target.value}: {' / '.join(signals)}")
    return "\n".join(lines) + "\n"


def _check_threshold(parameter: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(parameter, value, "must be a finite number")
    return float(value)


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A threshold alert on a metric expression.

    Args:
        name: the rule's unique name (shown in notifications).
        metric: what to watch: a metric name or an expression such as
            ``"p95(http_request_seconds[5m])"`` or
            ``"rate(app_errors_total[5m]) / rate(app_requests_total[5m])"``
            (grammar in ``docs/monitor.md``).
        warning: the warning threshold (None: no warning level).
        critical: the critical threshold (None: no critical level).
        above: True fires when the value goes above the thresholds
            (strictly), False when it goes below (cache hit rate).
        for_seconds: how long a breach must last before the rule fires (and
            a critical breach before it escalates); 0 fires at once.
        resolve_below: for ``above=True``, a firing rule resolves only once the
            value is below this (hysteresis); default: as soon as it is no
            longer above the lowest threshold.
        resolve_above: the same for ``above=False`` rules.
        cooldown: seconds after one of the rule's notifications during which a
            new firing or a de-escalation is held back (escalations and
            resolutions are never held).
        repeat_interval: re-send a firing notification every so many seconds
            while it keeps firing (None: never).
        labels: extra labels passed along in notifications (team, service...).
        description: free text passed along in notifications.

    Raises:
        ConfigError: naming the parameter, for any invalid setting.
    """

    name: str
    metric: str
    warning: float | None = None
    critical: float | None = None
    above: bool = True
    for_seconds: float = 0.0
    resolve_below: float | None = None
    resolve_above: float | None = None
    cooldown: float = 300.0
    repeat_interval: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    expression: Expression = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_name("name", self.name)
        set_ = object.__setattr__
        set_(self, "expression", parse_expression(self.metric, "metric"))
        warning = _check_threshold("warning", self.warning)
        critical = _check_threshold("critical", self.critical)
        set_(self, "warning", warning)
        set_(self, "critical", critical)
        if warning is None and critical is None:
            raise ConfigError("warning", None, "a rule needs a warning or a critical threshold")
        if not isinstance(self.above, bool):
            raise ConfigError("above", self.above, "must be True or False")
        if warning is not None and critical is not None:
            if self.above and critical < warning:
                raise ConfigError("critical", critical, "must be >= warning when above=True")
            if not self.above and critical > warning:
                raise ConfigError("critical", critical, "must be <= warning when above=False")
        first = warning if warning is not None else critical
        assert first is not None
        rb = _check_threshold("resolve_below", self.resolve_below)
        ra = _check_threshold("resolve_above", self.resolve_above)
        if rb is not None:
            if not self.above:
                raise ConfigError("resolve_below", rb, "use resolve_above with above=False")
            if rb > first:
                raise ConfigError("resolve_below", rb, f"must be <= the firing threshold {first}")
        if ra is not None:
            if self.above:
                raise ConfigError("resolve_above", ra, "use resolve_below with above=True")
            if ra < first:
                raise ConfigError("resolve_above", ra, f"must be >= the firing threshold {first}")
        set_(self, "resolve_below", rb)
        set_(self, "resolve_above", ra)
        set_(self, "for_seconds", check_non_negative("for_seconds", self.for_seconds))
        set_(self, "cooldown", check_non_negative("cooldown", self.cooldown))
        set_(
            self,
            "repeat_interval",
            check_optional_positive("repeat_interval", self.repeat_interval),
        )
        if not isinstance(self.labels, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.labels.items()
        ):
            raise ConfigError("labels", self.labels, "must map strings to strings")
        set_(self, "labels", MappingProxyType(dict(self.labels)))
        if not isinstance(self.description, str):
            raise ConfigError("description", self.description, "must be a string")

    def threshold(self, severity: Severity) -> float | None:
        """The threshold of ``severity``."""
        return self.critical if severity is Severity.CRITICAL else self.warning

    def breaches(self, value: float, threshold: float | None) -> bool:
        """Whether ``value`` is beyond ``threshold`` in this rule's direction."""
        if threshold is None:
            return False
        return value > threshold if self.above else value < threshold


@dataclass(frozen=True, slots=True)
class Timers:
    """When the current breach began (monotonic seconds), None when not breaching."""

    breach_since: float | None = None
    critical_since: float | None = None


def classify(
    rule: AlertRule, value: float | None, now: float, timers: Timers
) -> tuple[Signal, Timers]:
    """The :class:`Signal` for ``value`` at ``now``, and the updated breach timers (pure)."""
    if value is None or math.isnan(value):
        return Signal.CLEAR, Timers()
    critical = rule.breaches(value, rule.critical)
    breach = critical or rule.breaches(value, rule.warning)
    since = (timers.breach_since if timers.breach_since is not None else now) if breach else None
    crit_since = (
        (timers.critical_since if timers.critical_since is not None else now) if critical else None
    )
    new = Timers(since, crit_since)
    if crit_since is not None and now - crit_since >= rule.for_seconds:
        return Signal.CRITICAL_READY, new
    if since is not None and now - since >= rule.for_seconds:
        return Signal.WARNING_READY if rule.warning is not None else Signal.BREACH_WAIT, new
    if breach:
        return Signal.BREACH_WAIT, new
    if rule.above:
        clear = rule.resolve_below is None or value < rule.resolve_below
    else:
        clear = rule.resolve_above is None or value > rule.resolve_above
    return (Signal.CLEAR if clear else Signal.HOLD), new


@dataclass(frozen=True, slots=True)
class NotifyState:
    """What receivers were last told about a rule, and when (monotonic seconds)."""

    announced: Severity | None = None
    last_sent: float | None = None


def decide(
    rule: AlertRule, desired: Severity | None, now: float, state: NotifyState
) -> tuple[NotificationKind | None, NotifyState]:
    """The notification (if any) that brings receivers from ``state`` to ``desired`` (pure)."""
    announced = state.announced
    if desired is announced:
        if (
            announced is not None
            and rule.repeat_interval is not None
            and state.last_sent is not None
            and now - state.last_sent >= rule.repeat_interval
        ):
            return NotificationKind.REPEAT, NotifyState(announced, now)
        return None, state
    if desired is None:
        return NotificationKind.RESOLVED, NotifyState(None, now)
    cooling = state.last_sent is not None and now - state.last_sent < rule.cooldown
    if announced is None:
        if cooling:
            return None, state
        return NotificationKind.FIRING, NotifyState(desired, now)
    if desired is Severity.CRITICAL:
        return NotificationKind.ESCALATED, NotifyState(desired, now)
    if cooling:
        return None, state
    return NotificationKind.DEESCALATED, NotifyState(desired, now)


@dataclass(frozen=True, slots=True)
class Alert(Event):
    """One notification about a rule, handed to every notifier and listener.

    Attributes:
        rule: the rule's name.
        kind: why it was sent (``firing``, ``escalated``, ``deescalated``,
            ``repeat``, ``resolved``).
        severity: the severity now; for ``resolved``, the one that resolved.
        previous_severity: for escalations and de-escalations, the one before.
        value: the metric's value at the evaluation (None: no data).
        threshold: the threshold of ``severity`` (for ``resolved``, the
            resolve threshold, else the lowest firing threshold).
        metric: the rule's metric expression.
        above: the rule's direction.
        labels: the rule's labels.
        description: the rule's description.
        active_since: wall-clock time the breach that fired began.
    """

    rule: str
    kind: NotificationKind
    severity: Severity
    previous_severity: Severity | None
    value: float | None
    threshold: float | None
    metric: str
    above: bool
    labels: tuple[tuple[str, str], ...]
    description: str
    active_since: float | None

    @property
    def firing(self) -> bool:
        """True unless this is a resolution."""
        return self.kind is not NotificationKind.RESOLVED

    def summary(self) -> str:
        """One line for people, e.g. ``[CRITICAL] cpu firing: system_cpu_percent = 93.5 (> 90)``."""
        value = "no data" if self.value is None else f"{self.value:.6g}"
        cmp = ">" if self.above else "<"
        if self.kind is NotificationKind.RESOLVED:
            return f"[RESOLVED] {self.rule} ({self.severity.value}): {self.metric} = {value}"
        thr = "" if self.threshold is None else f" ({cmp} {self.threshold:g})"
        verb = {
            NotificationKind.FIRING: "firing",
            NotificationKind.ESCALATED: f"escalated from {self.previous_severity}",
            NotificationKind.DEESCALATED: f"de-escalated from {self.previous_severity}",
            NotificationKind.REPEAT: "still firing",
        }[self.kind]
        return f"[{self.severity.value.upper()}] {self.rule} {verb}: {self.metric} = {value}{thr}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what the webhook notifier posts)."""
        return {
            "rule": self.rule,
            "kind": self.kind.value,
            "status": "firing" if self.firing else "resolved",
            "severity": self.severity.value,
            "previous_severity": self.previous_severity.value if self.previous_severity else None,
            "value": self.value,
            "threshold": self.threshold,
            "metric": self.metric,
            "above": self.above,
            "labels": dict(self.labels),
            "description": self.description,
            "active_since": self.active_since,
            "at": self.at,
            "source": self.source,
            "summary": self.summary(),
        }


@dataclass(frozen=True, slots=True)
class AlertStatus:
    """A rule's state, as :meth:`PerformanceMonitor.alerts` reports it.

    Attributes:
        rule: the rule's name.
        state: ``"inactive"``, ``"pending"``, ``"firing"`` or ``"resolved"``.
        severity: the severity while firing, else None.
        value: the value at the last evaluation (None: no data or not evaluated).
        since: wall-clock time the rule entered ``state``.
        active_since: wall-clock time the current breach began (None if none).
        announced: the severity receivers were last told about (None: resolved/nothing).
        last_notified_at: wall-clock time of the rule's last notification.
        evaluated_at: wall-clock time of the last evaluation.
        last_error: why the last evaluation could not read the metric, if it could not.
    """

    rule: str
    state: str
    severity: str | None
    value: float | None
    since: float | None
    active_since: float | None
    announced: str | None
    last_notified_at: float | None
    evaluated_at: float | None
    last_error: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "rule": self.rule,
            "state": self.state,
            "severity": self.severity,
            "value": self.value,
            "since": self.since,
            "active_since": self.active_since,
            "announced": self.announced,
            "last_notified_at": self.last_notified_at,
            "evaluated_at": self.evaluated_at,
            "last_error": self.last_error,
        }


_ACTIVE = ("pending", "firing")


class _Runtime:
    __slots__ = (
        "active_since",
        "error",
        "eval_state",
        "evaluated_at",
        "notified_at",
        "notify",
        "rule",
        "since",
        "state",
        "timers",
        "value",
    )

    def __init__(self, rule: AlertRule) -> None:
        self.rule = rule
        self.state = RuleState.INACTIVE
        self.timers = Timers()
        self.notify = NotifyState()
        self.eval_state = EvalState()
        self.value: float | None = None
        self.error: str | None = None
        self.since: float | None = None  # wall
        self.evaluated_at: float | None = None  # wall
        self.notified_at: float | None = None  # wall
        self.active_since: float | None = None  # wall


class RuleEngine:
    """Holds rules and their runtime state; :meth:`evaluate` is the only mover."""

    def __init__(self, source: str = "monitor") -> None:
        self._source = source
        self._rules: dict[str, _Runtime] = {}
        self._lock = threading.Lock()
        self._evaluating = threading.Lock()
        #: evaluations whose metric could not be read (wrong kind...).
        self.errors = 0

    def add(self, rule: AlertRule) -> None:
        """Add ``rule``. Raises ConfigError when a rule of that name exists."""
        if not isinstance(rule, AlertRule):
            raise ConfigError("rule", rule, "must be an AlertRule")
        with self._lock:
            if rule.name in self._rules:
                raise ConfigError("rule", rule.name, "a rule with this name already exists")
            self._rules[rule.name] = _Runtime(rule)

    def remove(self, name: str) -> bool:
        """Remove the rule called ``name``; returns whether it existed."""
        with self._lock:
            return self._rules.pop(name, None) is not None

    def rules(self) -> list[AlertRule]:
        """Every rule, in the order added."""
        with self._lock:
            return [rt.rule for rt in self._rules.values()]

    def __len__(self) -> int:
        return len(self._rules)

    def evaluate(self, source: MetricSource, now: float, wall: float) -> list[Alert]:
        """Evaluate every rule once; returns the notifications to send, in rule order.

        If another thread is evaluating right now this returns ``[]`` at once
        (that evaluation sends whatever is due). Metric reads (which may run
        gauge callbacks) happen outside the state lock.
        """
        if not self._evaluating.acquire(blocking=False):
            return []
        try:
            with self._lock:
                runtimes = list(self._rules.values())
            values: list[tuple[_Runtime, float | None, str | None]] = []
            for rt in runtimes:
                try:
                    value = evaluate(rt.rule.expression, source, now, rt.eval_state)
                    values.append((rt, value, None))
                except ExpressionError as exc:
                    values.append((rt, None, str(exc)))
            out: list[Alert] = []
            with self._lock:
                for rt, value, error in values:
                    if error is not None:
                        self.errors += 1
                    alert = self._step(rt, value, error, now, wall)
                    if alert is not None:
                        out.append(alert)
            return out
        finally:
            self._evaluating.release()

    def _step(
        self, rt: _Runtime, value: float | None, error: str | None, now: float, wall: float
    ) -> Alert | None:
        rule = rt.rule
        signal, timers = classify(rule, value, now, rt.timers)
        prev = rt.state
        state = TRANSITIONS[prev, signal]
        rt.timers = timers
        rt.value = value
        rt.error = error
        rt.evaluated_at = wall
        rt.state = state
        if state.phase != prev.phase:
            rt.since = wall
            if state.phase in _ACTIVE and prev.phase not in _ACTIVE:
                assert timers.breach_since is not None
                rt.active_since = wall - (now - timers.breach_since)
        kind, notify = decide(rule, state.severity, now, rt.notify)
        before = rt.notify
        rt.notify = notify
        active_since = rt.active_since
        if state.phase not in _ACTIVE:
            rt.active_since = None
        if kind is None:
            return None
        rt.notified_at = wall
        if kind is NotificationKind.RESOLVED:
            severity = before.announced
            assert severity is not None
            threshold = rule.resolve_below if rule.above else rule.resolve_above
            if threshold is None:
                threshold = rule.warning if rule.warning is not None else rule.critical
        else:
            severity = notify.announced
            assert severity is not None
            threshold = rule.threshold(severity)
        previous = (
            before.announced
            if kind in (NotificationKind.ESCALATED, NotificationKind.DEESCALATED)
            else None
        )
        return Alert(
            source=self._source,
            at=wall,
            rule=rule.name,
            kind=kind,
            severity=severity,
            previous_severity=previous,
            value=value,
            threshold=threshold,
            metric=rule.metric,
            above=rule.above,
            labels=tuple(sorted(rule.labels.items())),
            description=rule.description,
            active_since=active_since,
        )

    def status(self, name: str) -> AlertStatus | None:
        """The status of the rule called ``name``, or None."""
        with self._lock:
            rt = self._rules.get(name)
            return None if rt is None else self._status(rt)

    def statuses(self) -> list[AlertStatus]:
        """Every rule's status, in the order added."""
        with self._lock:
            return [self._status(rt) for rt in self._rules.values()]

    @staticmethod
    def _status(rt: _Runtime) -> AlertStatus:
        sev = rt.state.severity
        return AlertStatus(
            rule=rt.rule.name,
            state=rt.state.phase,
            severity=None if sev is None else sev.value,
            value=rt.value,
            since=rt.since,
            active_since=rt.active_since,
            announced=None if rt.notify.announced is None else rt.notify.announced.value,
            last_notified_at=rt.notified_at,
            evaluated_at=rt.evaluated_at,
            last_error=rt.error,
        )
