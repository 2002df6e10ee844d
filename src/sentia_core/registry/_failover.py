"""Choosing an instance and calling it: balancing, retry on another instance, failover.

See *Calls* in :mod:`._registry`: ``call`` and ``acall`` share every decision
(``_begin``, ``_after_success``, ``_after_failure``); the loops differ only in
``await``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from sentia_core._validate import (
    check_int,
)
from sentia_core.breaker import BreakerLike
from sentia_core.errors import CircuitOpenError, NoHealthyInstanceError

from ._balancers import Balancer, make_balancer
from ._base import _UNSET, T, _RegistryBase
from ._model import (
    Instance,
    InstanceEjected,
)
from ._view import Counters, ServiceView

__all__: list[str] = []


class _Retry:
    """State of a call after its first failure (the success path never makes one)."""

    __slots__ = ("last_error", "rejection", "retries_left", "tried")

    def __init__(self, retries: int) -> None:
        self.retries_left = retries
        self.tried: set[str] = set()
        self.last_error: BaseException | None = None
        self.rejection: BaseException | None = None


class _Failover(_RegistryBase):
    """choose, call and acall over the views."""

    def _balancer(self, view: ServiceView, strategy: object) -> Balancer:
        """The view's balancer for ``strategy``, made (and validated) on first use."""
        key = self._strategy if strategy is None else strategy
        balancer = view.balancers.get(key)
        if balancer is None:
            checked = self._check_strategy(key)
            balancer = (
                checked if not isinstance(checked, str) else make_balancer(checked, self._rng)
            )
            with view.lock:
                balancer = view.balancers.setdefault(key, balancer)
        return balancer

    def choose(
        self, service: str, strategy: str | Balancer | None = None, *, zone: str | None = _UNSET
    ) -> Instance:
        """Pick one instance of ``service`` with a balancer.

        Candidates are the healthy instances not ejected by outlier detection
        (all live instances in panic mode), narrowed to ``zone`` when any
        candidate is there.

        Args:
            service: the service name.
            strategy: a strategy name or :class:`Balancer` (default: the
                registry's ``strategy``).
            zone: the zone to prefer (default: the registry's ``zone`` when
                ``prefer_zone``; None: no preference).

        Raises:
            NoHealthyInstanceError: no candidate.
            ConfigError: unknown strategy.
        """
        now = self._now()
        view = self._views.get(service)
        if view is None or service in self._dirty or now > view.reload_at:
            view = self._reload(service, now)
        if zone is _UNSET:
            zone = self._zone if self._prefer_zone else None
        cands = view.candidates(now, zone)
        if not cands:
            with view.lock:
                view.no_instance_errors += 1
            raise NoHealthyInstanceError(service)
        balancer = view.balancers.get(self._strategy if strategy is None else strategy)
        if balancer is None:
            balancer = self._balancer(view, strategy)
        return balancer.choose(cands, view.outstanding)

    def call(
        self,
        service: str,
        fn: Callable[[Instance], T],
        *,
        retries: int | None = None,
        strategy: str | Balancer | None = None,
        zone: str | None = _UNSET,
        avoid: set[str] | None = None,
    ) -> T:
        """Run ``fn(instance)`` on a chosen instance, failing over to others.

        The call runs through the instance's circuit breaker. An exception
        in ``retry_on`` counts as a failure of that instance (stats, outlier
        detection) and the call is retried on an instance not tried yet, up
        to ``retries`` times; an instance whose breaker is open is skipped
        without using up a retry. Other exceptions propagate at once.

        Args:
            service: the service name.
            fn: called with the :class:`Instance`; its result is returned.
            retries: retries after the first attempt (default: the registry's).
            strategy: balancer for this call (default: the registry's).
            zone: zone to prefer (see :meth:`choose`).
            avoid: instance ids to steer clear of while others are available;
                the chosen instance's id is added to it. Hedged attempts pass
                ``current_hedge_attempt().avoid`` so a hedge goes elsewhere.

        Returns:
            What ``fn`` returned.

        Raises:
            NoHealthyInstanceError: no instance could take the call (none
                available, or every candidate's breaker was open).
            Exception: the last failure of ``fn`` when every attempt failed.
        """
        left = self._retries if retries is None else check_int("retries", retries, minimum=0)
        now = self._now()
        view = self._views.get(service)
        if view is None or service in self._dirty or now > view.reload_at:
            view = self._reload(service, now)
        if zone is _UNSET:
            zone = self._zone if self._prefer_zone else None
        retry: _Retry | None = None
        while True:
            inst, counters, breaker = self._begin(view, now, strategy, zone, retry, avoid=avoid)
            try:
                result = breaker.call(fn, inst)
            except BaseException as exc:
                end = self._now()
                retry = self._after_failure(
                    view, inst, counters, exc, start=now, end=end, retry=retry, retries=left
                )
                if retry is None:
                    raise
                now = end
                continue
            self._after_success(counters, self._now() - now)
            return result

    async def acall(
        self,
        service: str,
        fn: Callable[[Instance], Awaitable[T]],
        *,
        retries: int | None = None,
        strategy: str | Balancer | None = None,
        zone: str | None = _UNSET,
        avoid: set[str] | None = None,
    ) -> T:
        """The asyncio twin of :meth:`call`: awaits ``fn(instance)``.

        A view that must be (re)loaded from the backend is read in a worker
        thread, so the event loop never blocks on Redis.
        """
        left = self._retries if retries is None else check_int("retries", retries, minimum=0)
        now = self._now()
        view = self._views.get(service)
        if view is None or service in self._dirty or now > view.reload_at:
            view = await asyncio.to_thread(self._reload, service, now)
        if zone is _UNSET:
            zone = self._zone if self._prefer_zone else None
        retry: _Retry | None = None
        while True:
            inst, counters, breaker = self._begin(view, now, strategy, zone, retry, avoid=avoid)
            try:
                result = await breaker.call_async(fn, inst)
            except BaseException as exc:
                end = self._now()
                retry = self._after_failure(
                    view, inst, counters, exc, start=now, end=end, retry=retry, retries=left
                )
                if retry is None:
                    raise
                now = end
                continue
            self._after_success(counters, self._now() - now)
            return result

    def _begin(
        self,
        view: ServiceView,
        now: float,
        strategy: object,
        zone: str | None,
        retry: _Retry | None,
        *,
        avoid: set[str] | None = None,
    ) -> tuple[Instance, Counters, BreakerLike]:
        """Pick an instance for the next attempt and count it as started."""
        cands: Sequence[Instance] | None
        if avoid and retry is None:  # a hedge: another instance if there is one
            cands = view.retry_candidates(now, zone, avoid) or view.candidates(now, zone)
        elif retry is None:
            # the cached-candidates fast path of view.candidates(), inlined
            cands = view.cache.get(zone) if now < view.cache_until else None
            if cands is None:
                cands = view.candidates(now, zone)
        else:
            cands = view.retry_candidates(now, zone, retry.tried)
        if not cands:
            with view.lock:
                view.no_instance_errors += 1
            if retry is not None and retry.last_error is not None:
                raise retry.last_error
            cause = retry.rejection if retry is not None else None
            raise NoHealthyInstanceError(view.service) from cause
        balancer = view.balancers.get(self._strategy if strategy is None else strategy)
        if balancer is None:
            balancer = self._balancer(view, strategy)
        inst = balancer.choose(cands, view.outstanding)
        if avoid is not None:
            avoid.add(inst.id)
        counters = view.counters.get(inst.id)
        if counters is None:
            counters = view.counters_for(inst)
        breaker = counters.breaker
        if breaker is None:
            made = self._breaker_factory(counters.breaker_name)
            with view.lock:
                if counters.breaker is None:
                    counters.breaker = made
                breaker = counters.breaker
        next(counters.started)  # GIL-atomic: no lock on the success path
        counters.inflight.append(None)
        return inst, counters, breaker

    @staticmethod
    def _after_success(counters: Counters, latency: float) -> None:
        # Lock-free (see Counters). A success racing a failure's count may let
        # one reset slip; ejection needs a streak anyway.
        counters.inflight.pop()
        counters.samples.append(latency)
        host = counters.host
        if host.consecutive_failures:
            host.consecutive_failures = 0

    def _after_failure(
        self,
        view: ServiceView,
        inst: Instance,
        counters: Counters,
        exc: BaseException,
        *,
        start: float,
        end: float,
        retry: _Retry | None,
        retries: int,
    ) -> _Retry | None:
        """Record a failed attempt; returns the retry state, or None to re-raise ``exc``."""
        rejected = isinstance(exc, CircuitOpenError) and exc.breaker == counters.breaker_name
        failed = not rejected and isinstance(exc, self._retry_on)
        ejected: float | None = None
        counters.inflight.pop()
        with view.lock:
            if rejected:
                counters.rejections += 1
            elif isinstance(exc, Exception):
                counters.samples.append(end - start)
                if failed:
                    counters.failures += 1
                    ejected = self._policy.on_failure(
                        counters.host, end, len(view.instances), view.detector.ejected_count(end)
                    )
                    if ejected is not None:
                        view.invalidate()
                else:
                    counters.host.consecutive_failures = 0  # it answered
        if ejected is not None and self._listeners:
            self._emit(
                InstanceEjected(
                    self._source,
                    self._clock.time(),
                    view.service,
                    inst.id,
                    ejected,
                    counters.host.ejections,
                )
            )
        if not (rejected or failed):
            return None
        if retry is None:
            retry = _Retry(retries)
        retry.tried.add(inst.id)
        if rejected:
            retry.rejection = exc
            return retry
        if retry.retries_left <= 0:
            return None
        retry.retries_left -= 1
        retry.last_error = exc
        return retry
