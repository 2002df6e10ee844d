"""Discrete-event simulations for the hedge and adaptive-concurrency benchmarks.

Virtual time only: deterministic for a seed, fast, bounded. The decisions
come from sentia_core's own cores (the Hedge race ``_HedgeRun`` with its
``LatencyWindow`` and ``RetryBudget``; the ``_LimitCore`` of
``AdaptiveBulkhead`` with each limit algorithm); the simulation supplies the
dependency and the clock.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import dataclass, field

from sentia_core.policies import AdaptiveBulkhead, Hedge, RetryBudget
from sentia_core.policies._adaptive import _LimitCore
from sentia_core.policies._hedge import WIN
from sentia_core.testing import ManualClock

# ------------------------------------------------------------ heavy-tailed


def tail_latency(rng: random.Random) -> float:
    """Lognormal around 10 ms (sigma 0.5); 1 % of calls are 10x slower."""
    x = rng.lognormvariate(math.log(0.010), 0.5)
    return x * 10.0 if rng.random() < 0.01 else x


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass
class TailResult:
    latencies: list[float]
    attempts: int
    failures: int = 0

    def summary(self, calls: int) -> dict[str, float]:
        return {
            "p50_ms": quantile(self.latencies, 0.50) * 1e3,
            "p99_ms": quantile(self.latencies, 0.99) * 1e3,
            "p999_ms": quantile(self.latencies, 0.999) * 1e3,
            "extra_load_pct": (self.attempts / calls - 1.0) * 100.0,
            "failed_pct": self.failures / calls * 100.0,
        }


def _budget() -> RetryBudget:
    # 10 % of calls, no time-based refill: virtual time does not move the bucket
    return RetryBudget(0.1, min_per_second=0.0, max_tokens=10.0, clock=ManualClock())


def sim_none(calls: int, seed: int) -> TailResult:
    rng = random.Random(seed)
    return TailResult([tail_latency(rng) for _ in range(calls)], calls)


def sim_retry(calls: int, seed: int, attempt_timeout: float, attempts: int = 3) -> TailResult:
    """Policy(retry=Retry(attempts, backoff=0, budget), timeout=attempt_timeout)."""
    rng = random.Random(seed)
    budget = _budget()
    out = TailResult([], 0)
    for _ in range(calls):
        budget.deposit()
        elapsed = 0.0
        for k in range(attempts):
            out.attempts += 1
            latency = tail_latency(rng)
            if latency <= attempt_timeout:
                elapsed += latency
                break
            elapsed += attempt_timeout  # CallTimeoutError: retry if allowed
            if k == attempts - 1 or not budget.try_withdraw():
                out.failures += 1
                break
        out.latencies.append(elapsed)
    return out


def sim_hedge(calls: int, seed: int, delay: float | str, max_attempts: int = 2) -> TailResult:
    """Policy(hedge=Hedge(delay, max_attempts, budget)): the race decided by the real core."""
    rng = random.Random(seed)
    hedge = Hedge(delay, max_attempts=max_attempts, budget=_budget(), initial_delay=0.02)
    out = TailResult([], 0)
    for _ in range(calls):
        run = hedge._begin()
        running: list[tuple[float, int]] = []
        last_launch = 0.0

        heapq.heappush(running, (tail_latency(rng), run.launch()))
        first_done: float | None = None
        while True:
            wait = run.wait_for()
            timer = math.inf if wait is None else last_launch + wait
            finish, number = running[0]
            if timer < finish:
                if run.on_timer():
                    heapq.heappush(running, (timer + tail_latency(rng), run.launch()))
                    last_launch = timer
                continue
            heapq.heappop(running)
            if number == 1:
                first_done = finish
            if run.on_outcome(number, None, "ok") == WIN:
                break
        # as Hedge._observe_first: attempt 1's duration, a lower bound if it lost
        hedge.latency.observe(first_done if first_done is not None else finish)
        out.attempts += run.started
        out.latencies.append(finish)
    return out


# ----------------------------------------------------------------- overload


class _Fixed:
    """A constant limit: the fixed Bulkhead's admission, for the simulation."""

    def update(self, limit: float, rtt: float, inflight: int, dropped: bool) -> float:
        return limit


@dataclass
class _Request:
    arrival: float
    inflight: int
    admitted: bool
    done: bool = False
    timed_out: bool = False


@dataclass
class OverloadResult:
    goodput: float
    goodput_after: float
    p99_ms: float
    rejected_pct: float
    timed_out_pct: float
    limit_before: float
    limit_after: float
    settle_s: float | None
    limits: list[tuple[float, int]] = field(default_factory=list)


def sim_overload(
    kind: str,
    *,
    duration: float,
    seed: int,
    rate: float = 3000.0,
    servers: int = 50,
    service_median: float = 0.020,
    timeout: float = 0.100,
    fixed_limit: int = 100,
) -> OverloadResult:
    """Arrivals above capacity; the dependency's capacity halves at ``duration / 2``.

    The dependency is ``servers`` parallel workers with a FIFO queue and
    lognormal service times; the client gives up after ``timeout`` (a drop),
    but the dependency still does the work of an abandoned request, as real
    servers do. ``kind``: ``"none"``, ``"fixed"`` (a bulkhead of
    ``fixed_limit``) or a limit algorithm name.
    """
    rng = random.Random(seed)
    core: _LimitCore | None
    if kind == "none":
        core = None
    elif kind == "fixed":
        core = _LimitCore(_Fixed(), fixed_limit, fixed_limit, fixed_limit)
    else:
        core = AdaptiveBulkhead(kind, initial=20, min=1, max=200)._core  # type: ignore[arg-type]
    change = duration / 2
    capacity = servers
    busy = 0
    queue: deque[_Request] = deque()
    events: list[tuple[float, int, str, _Request | None]] = []
    seq = 0

    def push(t: float, what: str, req: _Request | None) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, what, req))

    def service() -> float:
        return rng.lognormvariate(math.log(service_median), 0.3)

    push(rng.expovariate(rate), "arrival", None)
    push(change, "halve", None)
    for k in range(1, int(duration * 10)):
        push(k / 10, "probe", None)
    arrivals = rejected = timed_out = 0
    ok_latencies: list[float] = []
    ok_after = 0
    limits: list[tuple[float, int]] = []
    while events:
        now, _, what, req = heapq.heappop(events)
        if what == "arrival":
            if now < duration:
                push(now + rng.expovariate(rate), "arrival", None)
            else:
                continue
            arrivals += 1
            if core is not None and not core.try_admit():
                rejected += 1
                continue
            req = _Request(now, core.inflight if core is not None else 0, True)
            push(now + timeout, "timeout", req)
            if busy < capacity:
                busy += 1
                push(now + service(), "done", req)
            else:
                queue.append(req)
        elif what == "done":
            assert req is not None
            busy -= 1
            while queue and busy < capacity:
                busy += 1
                push(now + service(), "done", queue.popleft())
            if not req.timed_out:
                req.done = True
                ok_latencies.append(now - req.arrival)
                if now >= change:
                    ok_after += 1
                if core is not None:
                    core.sample(now - req.arrival, req.inflight, False, now)
        elif what == "timeout":
            assert req is not None
            if not req.done:
                req.timed_out = True
                timed_out += 1
                if core is not None:
                    core.sample(timeout, req.inflight, True, now)
        elif what == "halve":
            capacity = servers // 2
        else:  # probe
            limits.append((now, core.limit if core is not None else 0))
    return OverloadResult(
        goodput=len(ok_latencies) / duration,
        goodput_after=ok_after / (duration - change),
        p99_ms=quantile(ok_latencies, 0.99) * 1e3 if ok_latencies else 0.0,
        rejected_pct=rejected / max(arrivals, 1) * 100.0,
        timed_out_pct=timed_out / max(arrivals, 1) * 100.0,
        limit_before=_mean_limit(limits, change * 0.5, change),
        limit_after=_mean_limit(limits, duration - change * 0.3, duration),
        settle_s=_settle(limits, change, duration) if core is not None else None,
        limits=limits,
    )


def _mean_limit(limits: list[tuple[float, int]], start: float, end: float) -> float:
    window = [v for t, v in limits if start <= t < end]
    return sum(window) / len(window) if window else 0.0


def _settle(limits: list[tuple[float, int]], change: float, end: float) -> float | None:
    """Seconds after ``change`` until the limit first comes within 25 % of its final level."""
    final = _mean_limit(limits, end - (end - change) * 0.3, end)
    if final <= 0:
        return None
    for t, v in limits:
        if t >= change and abs(v - final) <= 0.25 * final:
            return t - change
    return None


def spread(limits: list[tuple[float, int]], start: float, end: float) -> float:
    """The limit's coefficient of variation over [start, end): how much it oscillates."""
    window = [v for t, v in limits if start <= t < end]
    if len(window) < 2:
        return 0.0
    mean = sum(window) / len(window)
    var = sum((v - mean) ** 2 for v in window) / (len(window) - 1)
    return math.sqrt(var) / mean if mean else 0.0
