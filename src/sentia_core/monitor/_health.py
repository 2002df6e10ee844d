"""Health checks: each component's status, response time, last error and uptime.

Theory of operation: a check is any callable; it passes by returning None,
True or ``"healthy"``, is degraded by returning ``"degraded"``, and fails by
returning False or ``"unhealthy"``, or by raising, or by not answering within
``timeout`` seconds (it then runs in a small worker pool so that a hung check
cannot hang ``/health``). Coroutine functions are run to completion on a
fresh event loop in that pool. Uptime is time-weighted: the time between two
runs of a check counts as up if the earlier run was healthy or degraded.
The overall status is unhealthy when a critical component is unhealthy,
degraded when any other component is not healthy, else healthy.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import inspect
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sentia_core._validate import check_callable, check_name, check_optional_positive
from sentia_core.errors import ConfigError

__all__ = ["ComponentHealth", "HealthChecks", "HealthReport", "HealthStatus"]


class HealthStatus(str, enum.Enum):
    """The status of a component or of the whole service."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"
    """Not checked yet."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    """One row of the health table.

    Attributes:
        name: the check's name.
        status: its status at the last run.
        critical: whether its failure makes the whole service unhealthy.
        response_time: seconds the last run took (None: never run).
        last_error: the last failure's message (kept after recovery), or None.
        uptime: time-weighted fraction (0..1) of the time it was up since its
            first run (None: never run).
        checked_at: wall-clock time of the last run.
        consecutive_failures: failed runs since the last success.
    """

    name: str
    status: HealthStatus
    critical: bool
    response_time: float | None
    last_error: str | None
    uptime: float | None
    checked_at: float | None
    consecutive_failures: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the original spec's integration-health row shape)."""
        return {
            "status": self.status.value,
            "critical": self.critical,
            "response_time": self.response_time,
            "response_time_ms": None
            if self.response_time is None
            else round(self.response_time * 1000, 3),
            "uptime": self.uptime,
            "last_error": self.last_error,
            "checked_at": self.checked_at,
            "consecutive_failures": self.consecutive_failures,
        }


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The result of :meth:`PerformanceMonitor.health`.

    Attributes:
        status: the overall status.
        components: each component's row, by name.
        checked_at: wall-clock time of the report.
    """

    status: HealthStatus
    components: Mapping[str, ComponentHealth]
    checked_at: float

    @property
    def healthy(self) -> bool:
        """True unless the status is unhealthy (degraded still serves)."""
        return self.status is not HealthStatus.UNHEALTHY

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``/health`` returns)."""
        return {
            "status": self.status.value,
            "checked_at": self.checked_at,
            "components": {n: c.to_dict() for n, c in self.components.items()},
        }


class _Check:
    __slots__ = (
        "critical",
        "failures",
        "fn",
        "last_at",
        "last_error",
        "last_status",
        "last_wall",
        "name",
        "response_time",
        "runs",
        "timeout",
        "total_s",
        "up_runs",
        "up_s",
    )

    def __init__(
        self, name: str, fn: Callable[[], object], critical: bool, timeout: float | None
    ) -> None:
        self.name = name
        self.fn = fn
        self.critical = critical
        self.timeout = timeout
        self.last_status = HealthStatus.UNKNOWN
        self.last_at: float | None = None  # monotonic
        self.last_wall: float | None = None
        self.last_error: str | None = None
        self.response_time: float | None = None
        self.failures = 0
        self.up_s = 0.0
        self.total_s = 0.0
        self.runs = 0
        self.up_runs = 0


def _interpret(result: object) -> tuple[HealthStatus, str | None]:
    if result is None or result is True:
        return HealthStatus.HEALTHY, None
    if result is False:
        return HealthStatus.UNHEALTHY, "check returned False"
    if isinstance(result, HealthStatus):
        return result, None if result is HealthStatus.HEALTHY else f"check returned {result.value}"
    if isinstance(result, str):
        try:
            status = HealthStatus(result.lower())
        except ValueError:
            return HealthStatus.UNHEALTHY, f"check returned {result!r}"
        return status, None if status is HealthStatus.HEALTHY else f"check returned {result!r}"
    return HealthStatus.HEALTHY, None


def _call(fn: Callable[[], object]) -> object:
    result = fn()
    if inspect.isawaitable(result):

        async def wait() -> object:
            return await result

        return asyncio.run(wait())
    return result


class HealthChecks:
    """The registered checks and their history (used by the monitor)."""

    def __init__(self, now: Callable[[], float], wall: Callable[[], float]) -> None:
        self._now = now
        self._wall = wall
        self._checks: dict[str, _Check] = {}
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def add(
        self,
        name: str,
        fn: Callable[[], object],
        *,
        critical: bool = True,
        timeout: float | None = 5.0,
    ) -> None:
        """Register (or replace) the check ``name``.

        Raises:
            ConfigError: bad name, ``fn`` not callable, bad timeout.
        """
        check_name("name", name)
        check_callable("fn", fn)
        if not isinstance(critical, bool):
            raise ConfigError("critical", critical, "must be True or False")
        timeout = check_optional_positive("timeout", timeout)
        with self._lock:
            self._checks[name] = _Check(name, fn, critical, timeout)

    def remove(self, name: str) -> bool:
        """Remove the check ``name``; returns whether it existed."""
        with self._lock:
            return self._checks.pop(name, None) is not None

    def __len__(self) -> int:
        return len(self._checks)

    def run(self) -> HealthReport:
        """Run every check now and return the report."""
        with self._lock:
            checks = list(self._checks.values())
        for check in checks:
            self._run_one(check)
        return self.report()

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=4, thread_name_prefix="sentia-health"
                )
            return self._pool

    def _run_one(self, check: _Check) -> None:
        start = self._now()
        error: str | None
        try:
            if check.timeout is None:
                result = _call(check.fn)
            else:
                future = self._executor().submit(_call, check.fn)
                try:
                    result = future.result(timeout=check.timeout)
                except concurrent.futures.TimeoutError:
                    future.cancel()
                    raise TimeoutError(f"no answer within {check.timeout:g}s") from None
            status, error = _interpret(result)
        except Exception as exc:
            status, error = HealthStatus.UNHEALTHY, f"{type(exc).__name__}: {exc}"
        end = self._now()
        wall = self._wall()
        with self._lock:
            if check.last_at is not None and end > check.last_at:
                span = end - check.last_at
                check.total_s += span
                if check.last_status is not HealthStatus.UNHEALTHY:
                    check.up_s += span
            check.runs += 1
            if status is not HealthStatus.UNHEALTHY:
                check.up_runs += 1
                check.failures = 0
            else:
                check.failures += 1
            if error is not None:
                check.last_error = error
            check.last_status = status
            check.last_at = end
            check.last_wall = wall
            check.response_time = max(0.0, end - start)

    def report(self) -> HealthReport:
        """The report from the last runs (without running anything)."""
        with self._lock:
            rows = {c.name: self._row(c) for c in self._checks.values()}
        status = HealthStatus.HEALTHY
        for row in rows.values():
            if row.status is HealthStatus.UNHEALTHY and row.critical:
                status = HealthStatus.UNHEALTHY
                break
            if row.status is not HealthStatus.HEALTHY:
                status = HealthStatus.DEGRADED
        return HealthReport(status=status, components=rows, checked_at=self._wall())

    @staticmethod
    def _row(c: _Check) -> ComponentHealth:
        if c.runs == 0:
            uptime = None
        elif c.total_s > 0:
            uptime = c.up_s / c.total_s
        else:
            uptime = c.up_runs / c.runs
        return ComponentHealth(
            name=c.name,
            status=c.last_status,
            critical=c.critical,
            response_time=c.response_time,
            last_error=c.last_error,
            uptime=uptime,
            checked_at=c.last_wall,
            consecutive_failures=c.failures,
        )

    def close(self) -> None:
        """Stop the worker pool (hung checks are abandoned, not waited for)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
