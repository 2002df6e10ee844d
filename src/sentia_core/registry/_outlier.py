"""Passive outlier detection: eject instances that keep failing real calls.

Theory of operation (Envoy's consecutive-errors detector). Each instance has
a :class:`HostHealth`. A success resets its consecutive-failure count; the
``consecutive_failures``-th failure in a row ejects it, unless that would
eject more than ``max_ejection_percent`` of the service's live instances (at
least one is always allowed to eject when the percentage is not 0, and at
least one instance always stays). An ejection lasts
``base_ejection_time * multiplier`` seconds, capped at ``max_ejection_time``;
the multiplier is 1 for a first ejection, grows by one with each
re-ejection, and shrinks by one for every ``base_ejection_time`` the host
spends back in rotation. When the ejection ends the instance simply returns;
the next failures decide again.

Everything is pure: ``now`` comes in as an argument, nothing blocks, nothing
is locked here (the registry holds its per-service lock around these calls).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from sentia_core._validate import check_int, check_positive
from sentia_core.errors import ConfigError

__all__ = ["HostHealth", "OutlierDetector", "OutlierPolicy"]

_NEVER = -math.inf


class HostHealth:
    """Mutable outlier state of one instance."""

    __slots__ = (
        "consecutive_failures",
        "ejected_until",
        "ejections",
        "multiplier",
        "returned_at",
    )

    def __init__(self) -> None:
        self.consecutive_failures = 0
        #: monotonic time the current ejection ends (-inf: not ejected).
        self.ejected_until = _NEVER
        #: the multiplier of the last ejection (before decay).
        self.multiplier = 0
        #: when the last ejection ended (decay counts from here).
        self.returned_at = _NEVER
        #: total times ejected.
        self.ejections = 0

    def is_ejected(self, now: float) -> bool:
        """Whether an ejection is in force at ``now``."""
        return now < self.ejected_until


@dataclass(frozen=True, slots=True)
class OutlierPolicy:
    """Outlier-detection settings, validated at construction.

    Attributes:
        consecutive_failures: failures in a row that eject an instance (>= 1).
        base_ejection_time: seconds of a first ejection.
        max_ejection_time: cap on an ejection's length, seconds (>= base).
        max_ejection_percent: most of a service (0..100 %) that may be ejected
            at once; 0 disables ejection.
    """

    consecutive_failures: int = 5
    base_ejection_time: float = 30.0
    max_ejection_time: float = 300.0
    max_ejection_percent: float = 50.0

    def __post_init__(self) -> None:
        check_int("outlier_consecutive_failures", self.consecutive_failures, minimum=1)
        check_positive("base_ejection_time", self.base_ejection_time, duration=False)
        check_positive("max_ejection_time", self.max_ejection_time, duration=False)
        if self.max_ejection_time < self.base_ejection_time:
            raise ConfigError(
                "max_ejection_time", self.max_ejection_time, "must be >= base_ejection_time"
            )
        pct = self.max_ejection_percent
        if isinstance(pct, bool) or not isinstance(pct, (int, float)) or not 0 <= pct <= 100:
            raise ConfigError("max_ejection_percent", pct, "must be a number between 0 and 100")

    def allowed(self, live: int) -> int:
        """How many of ``live`` instances may be ejected at once."""
        if self.max_ejection_percent <= 0 or live <= 1:
            return 0
        return min(live - 1, max(1, math.floor(live * self.max_ejection_percent / 100.0)))

    def on_success(self, host: HostHealth) -> None:
        """A call to ``host`` succeeded."""
        host.consecutive_failures = 0

    def on_failure(self, host: HostHealth, now: float, live: int, ejected: int) -> float | None:
        """A call to ``host`` failed; returns the ejection length if it is ejected now.

        Args:
            host: the instance's state.
            now: monotonic time of the failure.
            live: live instances of the service.
            ejected: how many of them are ejected at ``now``.
        """
        if host.is_ejected(now):
            return None  # panic mode routed to it; the ejection already stands
        host.consecutive_failures += 1
        if host.consecutive_failures < self.consecutive_failures:
            return None
        if ejected >= self.allowed(live):
            return None
        base = self.base_ejection_time
        multiplier = host.multiplier
        if multiplier and host.returned_at > _NEVER:
            decay = int((now - host.returned_at) // base)
            multiplier = max(0, multiplier - decay)
        multiplier += 1
        duration = min(base * multiplier, self.max_ejection_time)
        host.multiplier = multiplier
        host.ejected_until = now + duration
        host.returned_at = now + duration
        host.consecutive_failures = 0
        host.ejections += 1
        return duration


class OutlierDetector:
    """The hosts of one service under one :class:`OutlierPolicy`.

    Not thread-safe by itself: the caller serializes access.
    """

    __slots__ = ("hosts", "policy")

    def __init__(self, policy: OutlierPolicy) -> None:
        self.policy = policy
        self.hosts: dict[str, HostHealth] = {}

    def host(self, instance_id: str) -> HostHealth:
        """The state of ``instance_id`` (created on first use)."""
        h = self.hosts.get(instance_id)
        if h is None:
            h = self.hosts[instance_id] = HostHealth()
        return h

    def sync(self, live_ids: Iterable[str]) -> None:
        """Track exactly ``live_ids``: add new hosts, forget departed ones."""
        live = set(live_ids)
        for gone in [i for i in self.hosts if i not in live]:
            del self.hosts[gone]
        for i in live:
            self.host(i)

    def success(self, instance_id: str) -> None:
        """A call to ``instance_id`` succeeded."""
        self.policy.on_success(self.host(instance_id))

    def failure(self, instance_id: str, now: float) -> float | None:
        """A call to ``instance_id`` failed; returns the ejection length if ejected now."""
        host = self.host(instance_id)
        return self.policy.on_failure(host, now, len(self.hosts), self.ejected_count(now))

    def ejected_count(self, now: float) -> int:
        """How many hosts are ejected at ``now``."""
        return sum(1 for h in self.hosts.values() if now < h.ejected_until)

    def ejected_ids(self, now: float) -> frozenset[str]:
        """Ids of the hosts ejected at ``now``."""
        return frozenset(i for i, h in self.hosts.items() if now < h.ejected_until)

    def next_return(self, now: float) -> float:
        """The earliest time an ejected host returns (inf when none is ejected)."""
        times = [h.ejected_until for h in self.hosts.values() if now < h.ejected_until]
        return min(times) if times else math.inf
