"""Active health checks and the rise/fall state machine they feed.

Theory of operation: the registry that registered an instance checks it (the
Consul-agent model: each service checks itself and publishes the result, so
N consumers do not each probe M instances). A check is a probe (HTTP GET
expecting 2xx, TCP connect, or any callable) plus optional per-check
``interval``, ``timeout``, ``rise`` and ``fall``; unset values come from the
registry. Each probe result goes through :class:`HealthTracker`:

============  =========================  ==========================
status        a probe passes             a probe fails
============  =========================  ==========================
starting      healthy (one is enough)    unhealthy
healthy       (resets the fail count)    unhealthy after ``fall`` in a row
unhealthy     healthy after ``rise``     (resets the pass count)
              in a row
============  =========================  ==========================

A probe slower than its timeout counts as failed even if it returned True.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from sentia_core._validate import check_int, check_optional_positive
from sentia_core.errors import ConfigError

from ._model import HealthStatus, Instance

__all__ = [
    "CallableCheck",
    "HealthCheck",
    "HealthTracker",
    "HttpCheck",
    "TcpCheck",
    "as_health_check",
]

_USER_AGENT = "sentia-core-health-check/1"
#: most bytes of a health-check response body that are read (and discarded).
_MAX_BODY = 65536


@runtime_checkable
class HealthCheck(Protocol):
    """An active check: a probe and optional overrides of the registry's defaults."""

    @property
    def interval(self) -> float | None:
        """Seconds between probes (None: the registry's ``health_check_interval``)."""
        ...

    @property
    def timeout(self) -> float | None:
        """Seconds a probe may take (None: the registry's ``health_check_timeout``)."""
        ...

    @property
    def rise(self) -> int | None:
        """Passes in a row to become healthy (None: the registry's ``healthy_threshold``)."""
        ...

    @property
    def fall(self) -> int | None:
        """Failures in a row to become unhealthy (None: ``unhealthy_threshold``)."""
        ...

    def probe(self, instance: Instance, timeout: float) -> bool:
        """Probe ``instance`` once within ``timeout`` seconds; True when it passed.

        Should not raise; an exception counts as a failed probe.
        """
        ...


def _check_overrides(
    interval: float | None, timeout: float | None, rise: int | None, fall: int | None
) -> None:
    check_optional_positive("interval", interval, duration=False)
    check_optional_positive("timeout", timeout, duration=False)
    if rise is not None:
        check_int("rise", rise, minimum=1)
    if fall is not None:
        check_int("fall", fall, minimum=1)


@dataclass(frozen=True, slots=True)
class HttpCheck:
    """HTTP GET with the stdlib ``http.client``; any 2xx passes (redirects fail).

    Args:
        target: a path on the instance (``"/health"``, resolved against its
            address) or an absolute ``http://`` / ``https://`` URL.
        interval, timeout, rise, fall: per-check overrides (see :class:`HealthCheck`).
        verify_tls: verify the server certificate for ``https`` (default True).
    """

    target: str = "/health"
    interval: float | None = None
    timeout: float | None = None
    rise: int | None = None
    fall: int | None = None
    verify_tls: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.target, str) or not self.target:
            raise ConfigError("target", self.target, "must be a path or an http(s) URL")
        if "://" in self.target and not self.target.startswith(("http://", "https://")):
            raise ConfigError("target", self.target, "only http:// and https:// are supported")
        _check_overrides(self.interval, self.timeout, self.rise, self.fall)

    def url_for(self, instance: Instance) -> str:
        """The URL this check requests for ``instance``."""
        if "://" in self.target:
            return self.target
        return instance.url(self.target)

    def probe(self, instance: Instance, timeout: float) -> bool:
        try:
            parts = urlsplit(self.url_for(instance))
            host = parts.hostname
            if not host:
                return False
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            conn: http.client.HTTPConnection
            if parts.scheme == "https":
                ctx = ssl.create_default_context()
                if not self.verify_tls:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                conn = http.client.HTTPSConnection(host, parts.port, timeout=timeout, context=ctx)
            elif parts.scheme == "http":
                conn = http.client.HTTPConnection(host, parts.port, timeout=timeout)
            else:
                return False
            try:
                conn.request("GET", path, headers={"User-Agent": _USER_AGENT})
                response = conn.getresponse()
                status = response.status
                # drain a little so the connection closes cleanly (no RST);
                # never more than _MAX_BODY bytes, whatever the server sends
                response.read(_MAX_BODY)
            finally:
                conn.close()
            return 200 <= status < 300
        except (OSError, http.client.HTTPException, ValueError):
            return False


@dataclass(frozen=True, slots=True)
class TcpCheck:
    """Passes when a TCP connection opens (to the instance's address by default).

    Args:
        host: host to connect to (default: the instance's host).
        port: port to connect to (default: the instance's port).
        interval, timeout, rise, fall: per-check overrides (see :class:`HealthCheck`).
    """

    host: str | None = None
    port: int | None = None
    interval: float | None = None
    timeout: float | None = None
    rise: int | None = None
    fall: int | None = None

    def __post_init__(self) -> None:
        if self.port is not None:
            check_int("port", self.port, minimum=1)
            if self.port > 65535:
                raise ConfigError("port", self.port, "must be at most 65535")
        _check_overrides(self.interval, self.timeout, self.rise, self.fall)

    def probe(self, instance: Instance, timeout: float) -> bool:
        host = self.host or instance.host
        port = self.port or instance.port
        if not host or port is None:
            return False
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except (OSError, ValueError):
            return False


@dataclass(frozen=True, slots=True)
class CallableCheck:
    """Any callable ``fn(instance)``: passes when it returns True or None.

    It fails when it returns anything falsy other than None or raises. The
    callable must bound its own duration; one that overruns ``timeout`` is
    counted as failed.

    Args:
        fn: the check.
        interval, timeout, rise, fall: per-check overrides (see :class:`HealthCheck`).
    """

    fn: Callable[[Instance], object]
    interval: float | None = None
    timeout: float | None = None
    rise: int | None = None
    fall: int | None = None

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise ConfigError("fn", self.fn, "must be callable")
        _check_overrides(self.interval, self.timeout, self.rise, self.fall)

    def probe(self, instance: Instance, timeout: float) -> bool:
        try:
            result = self.fn(instance)
        except Exception:
            return False
        return result is None or bool(result)


def as_health_check(value: object) -> HealthCheck | None:
    """Normalize ``register(health_check=...)``.

    Accepts None, a :class:`HealthCheck`, a callable ``fn(instance)``, an
    ``http(s)://`` URL or a ``/path`` (HTTP GET), or ``tcp://host:port`` /
    ``"tcp"`` (TCP connect to the instance).

    Raises:
        ConfigError: anything else (names ``health_check``).
    """
    if value is None or isinstance(value, (HttpCheck, TcpCheck, CallableCheck)):
        return value
    if isinstance(value, str):
        if value.startswith(("http://", "https://", "/")):
            return HttpCheck(value)
        if value == "tcp":
            return TcpCheck()
        if value.startswith("tcp://"):
            parts = urlsplit(value)
            try:
                port = parts.port
            except ValueError:
                port = None
            if not parts.hostname or port is None:
                raise ConfigError("health_check", value, "a TCP check is tcp://host:port")
            return TcpCheck(parts.hostname, port)
        raise ConfigError(
            "health_check", value, "expected an http(s):// URL, a /path, 'tcp' or tcp://host:port"
        )
    if isinstance(value, HealthCheck):
        _check_overrides(value.interval, value.timeout, value.rise, value.fall)
        return value
    if callable(value):
        return CallableCheck(value)
    raise ConfigError("health_check", value, "expected a HealthCheck, a callable, a URL or a path")


class HealthTracker:
    """Rise/fall hysteresis over probe results (see the table in the module doc).

    Args:
        rise: passes in a row that make an unhealthy instance healthy.
        fall: failures in a row that make a healthy instance unhealthy.
        status: the starting status.
    """

    __slots__ = ("fails", "fall", "passes", "rise", "status")

    def __init__(self, rise: int, fall: int, status: HealthStatus = HealthStatus.STARTING) -> None:
        self.rise = check_int("rise", rise, minimum=1)
        self.fall = check_int("fall", fall, minimum=1)
        self.status = status
        self.passes = 0
        self.fails = 0

    def record(self, passed: bool) -> HealthStatus | None:
        """Feed one probe result; returns the new status if it changed, else None."""
        status = self.status
        if passed:
            self.fails = 0
            self.passes += 1
            if status is HealthStatus.STARTING or (
                status is HealthStatus.UNHEALTHY and self.passes >= self.rise
            ):
                return self._move(HealthStatus.HEALTHY)
            return None
        self.passes = 0
        self.fails += 1
        if status is HealthStatus.STARTING or (
            status is HealthStatus.HEALTHY and self.fails >= self.fall
        ):
            return self._move(HealthStatus.UNHEALTHY)
        return None

    def _move(self, status: HealthStatus) -> HealthStatus:
        self.status = status
        self.passes = 0
        self.fails = 0
        return status
