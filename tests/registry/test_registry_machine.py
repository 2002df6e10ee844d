"""The registry's health, outlier and panic rules together, under random sequences.

A RuleBasedStateMachine drives one registry (ManualClock, memory backend)
owning a few instances whose health checks and call results the test
controls, and checks after every step what must always hold: the balancer
only returns usable instances unless in panic, panic is exactly "too few
usable", the ejection cap holds, no call leaks an outstanding slot, and a
call succeeds whenever every live instance works.
"""

from __future__ import annotations

import math
import random

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from sentia_core.errors import NoHealthyInstanceError
from sentia_core.registry import HealthStatus, Instance, MemoryBackend, ServiceRegistry
from sentia_core.testing import ManualClock


class RegistryMachine(RuleBasedStateMachine):
    @initialize(
        n=st.integers(1, 4),
        threshold=st.integers(1, 3),
        panic=st.sampled_from([0, 50, 100]),
        percent=st.sampled_from([0, 50, 100]),
    )
    def setup(self, n: int, threshold: int, panic: int, percent: int) -> None:
        self.clock = ManualClock()
        self.reg = ServiceRegistry(
            backend=MemoryBackend(self.clock),
            clock=self.clock,
            rng=random.Random(0),
            strategy="round_robin",
            health_check_interval=1,
            healthy_threshold=1,
            unhealthy_threshold=1,
            outlier_consecutive_failures=threshold,
            base_ejection_time=10,
            max_ejection_time=40,
            max_ejection_percent=percent,
            panic_threshold=panic,
            retries=n - 1,
            breaker_factory=lambda name: _NoBreaker(),
        )
        self.ids = [f"i{k}" for k in range(n)]
        self.healthy = dict.fromkeys(self.ids, True)
        self.broken: set[str] = set()
        self.attempts = 0
        for iid in self.ids:
            self.reg.register("svc", f"h:{iid}", instance_id=iid, health_check=self._check(iid))
        self.reg.run_once()
        assert len(self.reg.instances("svc")) == n  # probed once: all healthy
        self.panic, self.percent = panic, percent

    def _check(self, iid: str):  # type: ignore[no-untyped-def]
        return lambda inst: self.healthy[iid]

    def _fn(self, inst: Instance) -> str:
        self.attempts += 1
        if inst.id in self.broken:
            raise ConnectionError(inst.id)
        return inst.id

    @rule(data=st.data(), up=st.booleans())
    def set_health(self, data: st.DataObject, up: bool) -> None:
        self.healthy[data.draw(st.sampled_from(self.ids))] = up

    @rule(data=st.data())
    def break_one(self, data: st.DataObject) -> None:
        self.broken.add(data.draw(st.sampled_from(self.ids)))

    @rule(data=st.data())
    def fix_one(self, data: st.DataObject) -> None:
        self.broken.discard(data.draw(st.sampled_from(self.ids)))

    @rule(dt=st.sampled_from([1.0, 5.0, 10.0, 30.0]))
    def time_passes(self, dt: float) -> None:
        self.clock.advance(dt)
        self.reg.run_once()

    @rule(k=st.integers(1, 6))
    def calls(self, k: int) -> None:
        for _ in range(k):
            try:
                got = self.reg.call("svc", self._fn)
            except ConnectionError:
                assert self.broken, "a call failed though no instance was broken"
                if not self.broken >= set(self.ids):
                    # some instance works: it must have been out of reach
                    # (unhealthy or ejected, and no panic to bring it back)
                    assert self._usable_working() == set()
            except NoHealthyInstanceError:
                assert self.panic == 0  # with any panic threshold, nobody usable -> panic
            else:
                assert got not in self.broken

    def _stats(self):  # type: ignore[no-untyped-def]
        return self.reg.stats().services["svc"]

    def _usable_working(self) -> set[str]:
        s = self._stats()
        usable = {
            i
            for i, st_ in s.per_instance.items()
            if st_.status is HealthStatus.HEALTHY and not st_.ejected
        }
        pool = set(self.ids) if s.panic else usable
        return pool - self.broken

    @invariant()
    def choices_respect_health_ejection_and_panic(self) -> None:
        s = self._stats()
        usable = {
            i
            for i, st_ in s.per_instance.items()
            if st_.status is HealthStatus.HEALTHY and not st_.ejected
        }
        try:
            picks = {self.reg.choose("svc").id for _ in range(2 * len(self.ids))}
        except NoHealthyInstanceError:
            assert not usable and self.panic == 0
            return
        s = self._stats()
        expect_panic = len(usable) * 100 < self.panic * len(self.ids)
        assert s.panic == expect_panic
        assert picks == (set(self.ids) if expect_panic else usable)

    @invariant()
    def the_ejection_cap_holds(self) -> None:
        n = len(self.ids)
        allowed = (
            0
            if self.percent == 0 or n < 2
            else min(n - 1, max(1, math.floor(n * self.percent / 100)))
        )
        ejected = sum(1 for s in self._stats().per_instance.values() if s.ejected)
        assert ejected <= allowed

    @invariant()
    def every_attempt_is_counted_and_none_is_left_running(self) -> None:
        per = self._stats().per_instance.values()
        assert all(s.outstanding == 0 for s in per)
        assert sum(s.requests for s in per) == self.attempts
        assert sum(s.failures for s in per) <= self.attempts

    @invariant()
    def statuses_follow_the_checks_after_a_probe(self) -> None:
        # rise = fall = 1 and a probe every second: after time passes, the
        # published status equals the check's answer at the last probe
        for inst in self.reg.instances("svc", healthy_only=False):
            assert inst.status in (HealthStatus.HEALTHY, HealthStatus.UNHEALTHY)


class _NoBreaker:
    """Breakers are tested elsewhere; here only health, outliers and panic act."""

    def call(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        return fn(*args, **kwargs)

    async def call_async(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        return await fn(*args, **kwargs)


TestRegistryMachine = RegistryMachine.TestCase
TestRegistryMachine.settings = settings(stateful_step_count=15)
