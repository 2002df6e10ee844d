"""One service as this registry sees it: instances, candidates, counters.

Theory of operation. A :class:`ServiceView` holds the last instance list read
from the backend, sorted by id so that round robin is stable, plus this
process's opinions about each instance: call counters, latency samples and
outlier state. :meth:`ServiceView.candidates` returns the instances a balancer
may pick: healthy and not ejected, or, in panic mode (fewer than
``panic_threshold`` percent of them healthy), all of them; then narrowed to
the preferred zone when that leaves any. The result is cached per zone until
the instance list changes, an instance is ejected, or the earliest ejection
ends, so the hot path (:meth:`ServiceRegistry.choose`) is a dict lookup and a
comparison.

Locking: ``lock`` guards instance-list, outlier and failure updates; nothing
under it blocks or calls user code. A successful call takes no lock at all
(see :class:`Counters`). The candidate cache is read without the lock (a
dict lookup and a float compare, both atomic under the GIL) and rebuilt
under it.
"""

from __future__ import annotations

import collections
import itertools
import math
import threading
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from ._balancers import Balancer
from ._model import HealthStatus, Instance, InstanceStats, ServiceStats
from ._outlier import HostHealth, OutlierDetector, OutlierPolicy

__all__ = ["Counters", "ServiceView"]

#: latency samples kept per instance for the p95.
LATENCY_SAMPLES = 512


class Counters:
    """Per-instance call counters.

    The success path of a call takes no lock: it only uses operations that
    are atomic under the GIL (``next`` on ``started``, ``append`` / ``pop`` on
    ``inflight``, whose length is the number of calls running, and ``append``
    on the bounded ``samples`` deque). Failures, rejections and outlier state
    change under the view's lock.
    """

    __slots__ = (
        "breaker",
        "breaker_name",
        "failures",
        "health_transitions",
        "host",
        "inflight",
        "rejections",
        "samples",
        "started",
    )

    def __init__(self, host: HostHealth, breaker_name: str) -> None:
        self.host = host
        self.breaker: Any = None
        self.breaker_name = breaker_name
        self.started = itertools.count()
        self.inflight: list[None] = []
        self.samples: collections.deque[float] = collections.deque(maxlen=LATENCY_SAMPLES)
        self.failures = 0
        self.rejections = 0
        self.health_transitions = 0

    @property
    def requests(self) -> int:
        """Calls sent to the instance (started minus those its breaker refused)."""
        return int(repr(self.started)[6:-1]) - self.rejections  # "count(N)"

    @property
    def outstanding(self) -> int:
        """Calls running on the instance now."""
        return len(self.inflight)

    def latency(self) -> tuple[float, float]:
        """(mean, p95) of the recent latency samples, seconds; zeros before any."""
        samples = sorted(self.samples.copy())
        if not samples:
            return 0.0, 0.0
        p95 = samples[min(len(samples) - 1, math.ceil(0.95 * len(samples)) - 1)]
        return math.fsum(samples) / len(samples), p95


def _zone_filter(pool: Sequence[Instance], zone: str | None) -> Sequence[Instance]:
    if zone is None:
        return pool
    local = [i for i in pool if i.zone == zone]
    return local or pool


class ServiceView:
    """Instances of one service and this registry's counters for them."""

    def __init__(self, service: str, policy: OutlierPolicy, panic_threshold: float) -> None:
        self.service = service
        self.lock = threading.Lock()
        self.instances: tuple[Instance, ...] = ()
        self.by_id: dict[str, Instance] = {}
        self.counters: dict[str, Counters] = {}
        self.detector = OutlierDetector(policy)
        self.panic_threshold = panic_threshold
        #: monotonic time of the last load attempt (-inf: never loaded).
        self.loaded_at = -math.inf
        #: a request past this time reloads the view (set by the registry).
        self.reload_at = -math.inf
        #: sequence number of the load whose result is applied (drops stale reads).
        self.applied_seq = -1
        self.stale = False
        self.panic = False
        self.no_instance_errors = 0
        self.departed_requests = 0
        self.departed_failures = 0
        self.balancers: dict[object, Balancer] = {}
        # candidate cache: zone -> candidates, valid while now < cache_until
        self.cache: dict[str | None, tuple[Instance, ...]] = {}
        self.cache_until = -math.inf

    # loading -----------------------------------------------------------------

    def apply(self, fresh: list[Instance], seq: int, now: float) -> bool:
        """Install a freshly read instance list; True when what callers see changed.

        Must be called with ``lock`` held. A result older than the one applied
        (``seq`` lower) is ignored.
        """
        self.loaded_at = now
        self.stale = False
        if seq < self.applied_seq:
            return False
        self.applied_seq = seq
        fresh.sort(key=lambda i: i.id)
        new = tuple(fresh)
        if new == self.instances:
            # same membership and statuses; keep the newer timestamps
            self.instances = new
            self.by_id = {i.id: i for i in new}
            return False
        old = self.by_id
        by_id = {i.id: i for i in new}
        for iid, inst in by_id.items():
            before = old.get(iid)
            if before is not None and before.status is not inst.status:
                c = self.counters.get(iid)
                if c is not None:
                    c.health_transitions += 1
        for gone in [i for i in self.counters if i not in by_id]:
            c = self.counters.pop(gone)
            self.departed_requests += c.requests
            self.departed_failures += c.failures
        self.detector.sync(by_id)
        for iid in by_id:
            if iid not in self.counters:
                self.counters[iid] = Counters(self.detector.host(iid), f"{self.service}/{iid}")
        self.instances = new
        self.by_id = by_id
        self.invalidate()
        return True

    def invalidate(self) -> None:
        """Drop cached candidates (called with ``lock`` held)."""
        self.cache = {}
        self.cache_until = -math.inf

    # choosing ------------------------------------------------------------------

    def candidates(self, now: float, zone: str | None) -> tuple[Instance, ...]:
        """The instances a balancer may pick at ``now`` (see the module doc)."""
        if now < self.cache_until:
            cached = self.cache.get(zone)
            if cached is not None:
                return cached
        with self.lock:
            if now >= self.cache_until:
                self.cache = {}
                self.cache_until = self.detector.next_return(now)
            cached = self.cache.get(zone)
            if cached is None:
                cached = tuple(_zone_filter(self._pool(now), zone))
                self.cache[zone] = cached
            return cached

    def _pool(self, now: float) -> Sequence[Instance]:
        everyone = self.instances
        if not everyone:
            self.panic = False
            return ()
        hosts = self.detector.hosts
        healthy = [
            i
            for i in everyone
            if i.status is HealthStatus.HEALTHY
            and not (i.id in hosts and hosts[i.id].is_ejected(now))
        ]
        self.panic = len(healthy) * 100.0 < self.panic_threshold * len(everyone)
        return everyone if self.panic else healthy

    def retry_candidates(self, now: float, zone: str | None, tried: set[str]) -> Sequence[Instance]:
        """Candidates for a retry: as :meth:`candidates`, minus instances already tried,
        falling back from the preferred zone to the others."""
        pool = [i for i in self.candidates(now, None) if i.id not in tried]
        return _zone_filter(pool, zone)

    def outstanding(self, instance: Instance) -> int:
        """Calls running on ``instance`` now (the balancers' load signal)."""
        c = self.counters.get(instance.id)
        return len(c.inflight) if c is not None else 0

    def counters_for(self, instance: Instance) -> Counters:
        """The counters of ``instance`` (created if the view has not seen it yet)."""
        c = self.counters.get(instance.id)
        if c is None:
            with self.lock:
                c = self.counters.get(instance.id)
                if c is None:
                    c = self.counters[instance.id] = Counters(
                        self.detector.host(instance.id), f"{self.service}/{instance.id}"
                    )
        return c

    # stats ---------------------------------------------------------------------

    def snapshot(self, now: float) -> ServiceStats:
        """A consistent :class:`ServiceStats` at ``now``."""
        with self.lock:
            per: dict[str, InstanceStats] = {}
            requests = self.departed_requests
            failures = self.departed_failures
            healthy = 0
            for inst in self.instances:
                c = self.counters.get(inst.id)
                if c is None:
                    continue
                ejected = c.host.is_ejected(now)
                if inst.status is HealthStatus.HEALTHY and not ejected:
                    healthy += 1
                requests += c.requests
                failures += c.failures
                mean, p95 = c.latency()
                per[inst.id] = InstanceStats(
                    instance_id=inst.id,
                    address=inst.address,
                    zone=inst.zone,
                    status=inst.status,
                    ejected=ejected,
                    requests=c.requests,
                    failures=c.failures,
                    rejections=c.rejections,
                    outstanding=c.outstanding,
                    latency_mean=mean,
                    latency_p95=p95,
                    ejections=c.host.ejections,
                    health_transitions=c.health_transitions,
                )
            return ServiceStats(
                service=self.service,
                instances=len(self.instances),
                healthy=healthy,
                panic=self.panic,
                stale=self.stale,
                requests=requests,
                failures=failures,
                no_instance_errors=self.no_instance_errors,
                per_instance=MappingProxyType(per),
            )
