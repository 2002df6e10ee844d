"""Call policies side by side with the libraries Python services use today.

    python benchmarks/policies.py [--quick] [--json PATH] [--rounds N]

Sections (median ns per call; "overhead" = decorated call minus the bare call):

* retry happy path, sync and async: sentia ``Retry`` vs tenacity and stamina.
  Target: sentia's overhead at most 1/5 of the faster peer's. Also what a
  shared ``RetryBudget`` adds per call.
* retry that fails once then succeeds (no back-off sleep): the slow path.
* bulkhead happy path: sentia ``Bulkhead`` vs ``threading.BoundedSemaphore``
  (sync) and ``asyncio.Semaphore`` (async).
* timeout: sentia ``Timeout`` vs ``asyncio.wait_for`` / ``asyncio.timeout``
  (async) and a ``ThreadPoolExecutor`` future with a timeout (sync).
* the full ``Policy`` (retry + circuit breaker + bulkhead) happy path vs the
  same stack assembled from tenacity + pybreaker + a semaphore (sync) and
  tenacity + purgatory + ``asyncio.Semaphore`` (async).

* Hedge, AdaptiveBulkhead and Chaos per-call cost (real calls, timed like
  the rest): what the strategies add on the path users run.
* heavy-tailed latency (simulated, virtual time): lognormal around 10 ms with
  1 % of calls 10x slower; p50/p99/p99.9 and the extra load with no policy,
  retry-only (attempt timeout at the baseline's p95, 3 attempts, 10 %
  budget) and Hedge (p95 and p90 delay, 2 attempts, 10 % budget).
* overload (simulated): Poisson arrivals at 3000/s against a dependency of
  50 workers (~2400/s) whose capacity halves mid-run, client timeout 100 ms;
  no limit vs a fixed Bulkhead(100) vs AdaptiveBulkhead with each
  algorithm: goodput, p99 of successes, and how quickly the limit settles.
  No Python peer offers hedging or adaptive limits, so these compare
  strategies, not libraries.

The simulations (``benchmarks/_policy_sim.py``) drive sentia_core's own
decision cores in a discrete-event loop: deterministic for a seed.

Rate-limit decisions are measured in ``benchmarks/ratelimit.py``.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import purgatory
import pybreaker
import stamina
import stamina.instrumentation
import tenacity
from _harness import Section, Suite, parse_args
from _policy_sim import quantile, sim_hedge, sim_none, sim_overload, sim_retry, spread

from sentia_core.breaker import CircuitBreaker
from sentia_core.policies import (
    AdaptiveBulkhead,
    Bulkhead,
    Chaos,
    Hedge,
    Policy,
    Retry,
    RetryBudget,
    Timeout,
)


def _noop_sleep(seconds: float) -> None:
    pass


async def _noop_async_sleep(seconds: float) -> None:
    pass


def bench_retry_sync(suite: Suite) -> None:
    def target() -> int:
        return 1

    sentia = Retry(attempts=3, on=ConnectionError)(target)
    budgeted = Retry(attempts=3, on=ConnectionError, budget=RetryBudget())(target)
    ten = tenacity.retry(
        stop=tenacity.stop_after_attempt(3),
        retry=tenacity.retry_if_exception_type(ConnectionError),
    )(target)
    sta = stamina.retry(on=ConnectionError, attempts=3)(target)
    m = suite.compare(
        "retry happy path (sync)",
        {
            "bare call": target,
            "sentia Retry": sentia,
            "sentia Retry + RetryBudget": budgeted,
            "tenacity": ten,
            "stamina": sta,
        },
        number=5_000,
    )
    _overheads(suite, m, "bare call", "sentia Retry", ["tenacity", "stamina"], target=0.2)
    suite.note(
        "retry happy path (sync): cost of a RetryBudget deposit ns",
        round(m["sentia Retry + RetryBudget"] - m["sentia Retry"], 1),
    )


def bench_retry_async(suite: Suite) -> None:
    async def target() -> int:
        return 1

    sentia = Retry(attempts=3, on=ConnectionError)(target)
    ten = tenacity.retry(
        stop=tenacity.stop_after_attempt(3),
        retry=tenacity.retry_if_exception_type(ConnectionError),
    )(target)
    sta = stamina.retry(on=ConnectionError, attempts=3)(target)
    m = suite.compare_async(
        "retry happy path (async)",
        {"bare call": target, "sentia Retry": sentia, "tenacity": ten, "stamina": sta},
        number=5_000,
    )
    _overheads(suite, m, "bare call", "sentia Retry", ["tenacity", "stamina"], target=0.2)


def bench_retry_one_failure(suite: Suite) -> None:
    def make_target() -> object:
        state = {"n": 0}

        def target() -> int:
            state["n"] += 1
            if state["n"] % 2:
                raise ConnectionError
            return 1

        return target

    sentia = Retry(attempts=3, on=ConnectionError, backoff=0.0, sleep=_noop_sleep)(make_target())
    ten = tenacity.retry(
        stop=tenacity.stop_after_attempt(3),
        retry=tenacity.retry_if_exception_type(ConnectionError),
        sleep=_noop_sleep,
    )(make_target())
    # stamina logs every retry by default; switch its hooks off so that we time retrying.
    stamina.instrumentation.set_on_retry_hooks([])
    sta = stamina.retry(
        on=ConnectionError, attempts=3, wait_initial=0.0, wait_max=0.0, wait_jitter=0.0
    )(make_target())
    m = suite.compare(
        "retry: fail once, then succeed (no back-off)",
        {"sentia Retry": sentia, "tenacity": ten, "stamina (sleeps 0 s)": sta},
        number=2_000,
    )
    suite.ratio("sentia/tenacity", m["sentia Retry"], m["tenacity"])
    suite.ratio("sentia/stamina", m["sentia Retry"], m["stamina (sleeps 0 s)"])


def bench_bulkhead(suite: Suite) -> None:
    def target() -> int:
        return 1

    bulkhead = Bulkhead(10)
    sentia = bulkhead(target)
    sem = threading.BoundedSemaphore(10)

    def with_semaphore() -> int:
        with sem:
            return target()

    m = suite.compare(
        "bulkhead happy path (sync)",
        {
            "bare call": target,
            "sentia Bulkhead": sentia,
            "threading.BoundedSemaphore": with_semaphore,
        },
    )
    _overheads(suite, m, "bare call", "sentia Bulkhead", ["threading.BoundedSemaphore"])

    async def atarget() -> int:
        return 1

    asentia = Bulkhead(10)(atarget)
    asem = asyncio.Semaphore(10)

    async def with_asyncio_semaphore() -> int:
        async with asem:
            return await atarget()

    m = suite.compare_async(
        "bulkhead happy path (async)",
        {
            "bare call": atarget,
            "sentia Bulkhead": asentia,
            "asyncio.Semaphore": with_asyncio_semaphore,
        },
    )
    _overheads(suite, m, "bare call", "sentia Bulkhead", ["asyncio.Semaphore"])


def bench_timeout(suite: Suite) -> None:
    async def atarget() -> int:
        return 1

    sentia = Timeout(10.0)(atarget)

    async def wait_for() -> int:
        return await asyncio.wait_for(atarget(), 10.0)

    async def asyncio_timeout() -> int:
        async with asyncio.timeout(10.0):
            return await atarget()

    m = suite.compare_async(
        "timeout (async, call finishes in time)",
        {
            "bare call": atarget,
            "sentia Timeout": sentia,
            "asyncio.wait_for": wait_for,
            "asyncio.timeout": asyncio_timeout,
        },
    )
    _overheads(suite, m, "bare call", "sentia Timeout", ["asyncio.wait_for", "asyncio.timeout"])

    def target() -> int:
        return 1

    threaded = Timeout(10.0)
    cooperative = Timeout(10.0, sync_mode="cooperative")
    pool = ThreadPoolExecutor(8)
    try:
        m = suite.compare(
            "timeout (sync, call finishes in time)",
            {
                "sentia Timeout thread mode": threaded(target),
                "ThreadPoolExecutor future": lambda: pool.submit(target).result(10.0),
                "sentia Timeout cooperative": cooperative(target),
            },
            number=2_000,
        )
        suite.ratio(
            "thread mode / ThreadPoolExecutor",
            m["sentia Timeout thread mode"],
            m["ThreadPoolExecutor future"],
        )
    finally:
        pool.shutdown()
        threaded.close()


def bench_policy(suite: Suite) -> None:
    def target() -> int:
        return 1

    policy = Policy(
        retry=Retry(attempts=3, on=ConnectionError),
        breaker=CircuitBreaker("bench"),
        bulkhead=Bulkhead(10),
    )
    sentia = policy(target)

    pb = pybreaker.CircuitBreaker()
    sem = threading.BoundedSemaphore(10)

    def guarded() -> int:
        with sem:
            return target()

    @tenacity.retry(
        stop=tenacity.stop_after_attempt(3),
        retry=tenacity.retry_if_exception_type(ConnectionError),
    )
    def peer_stack() -> int:
        return pb.call(guarded)

    m = suite.compare(
        "Policy retry+breaker+bulkhead happy path (sync)",
        {
            "bare call": target,
            "sentia Policy": sentia,
            "tenacity+pybreaker+BoundedSemaphore": peer_stack,
        },
        number=5_000,
    )
    _overheads(suite, m, "bare call", "sentia Policy", ["tenacity+pybreaker+BoundedSemaphore"])

    async def atarget() -> int:
        return 1

    apolicy = Policy(
        retry=Retry(attempts=3, on=ConnectionError),
        breaker=CircuitBreaker("bench-async"),
        bulkhead=Bulkhead(10),
    )
    asentia = apolicy(atarget)
    factory = purgatory.AsyncCircuitBreakerFactory()
    asem = asyncio.Semaphore(10)

    @factory("bench")
    async def aguarded() -> int:
        async with asem:
            return await atarget()

    @tenacity.retry(
        stop=tenacity.stop_after_attempt(3),
        retry=tenacity.retry_if_exception_type(ConnectionError),
    )
    async def apeer_stack() -> int:
        return await aguarded()

    m = suite.compare_async(
        "Policy retry+breaker+bulkhead happy path (async)",
        {
            "bare call": atarget,
            "sentia Policy": asentia,
            "tenacity+purgatory+asyncio.Semaphore": apeer_stack,
        },
        number=5_000,
    )
    _overheads(suite, m, "bare call", "sentia Policy", ["tenacity+purgatory+asyncio.Semaphore"])


def _overheads(
    suite: Suite,
    medians: dict[str, float],
    bare: str,
    ours: str,
    peers: list[str],
    *,
    target: float | None = None,
) -> None:
    """Record overhead ratios (decorated minus bare) of ours vs each peer and the fastest."""
    base = medians[bare]
    mine = max(medians[ours] - base, 0.1)
    title = suite.sections[-1].title
    suite.note(f"{title}: {ours} overhead ns", round(mine, 1))
    overheads = {p: max(medians[p] - base, 0.1) for p in peers}
    for p, o in overheads.items():
        suite.note(f"{title}: {p} overhead ns", round(o, 1))
        only = len(peers) == 1
        suite.ratio(f"overhead {ours}/{p}", mine, o, target=target if only else None)
    if len(peers) > 1:
        fastest = min(overheads, key=lambda p: overheads[p])
        suite.ratio(
            f"overhead vs fastest peer ({fastest})", mine, overheads[fastest], target=target
        )


def bench_new_strategies(suite: Suite) -> None:
    def target() -> int:
        return 1

    async def atarget() -> int:
        return 1

    off = Chaos(fault=ConnectionError, rate=0.01)  # never enabled: the cost of carrying it
    on = Chaos(fault=ConnectionError, rate=0.0, enabled=True)  # enabled, draws, never injects
    suite.compare(
        "Hedge / AdaptiveBulkhead / Chaos per call (sync)",
        {
            "bare call": target,
            "Bulkhead": Policy(bulkhead=Bulkhead(64))(target),
            "AdaptiveBulkhead": Policy(adaptive=AdaptiveBulkhead())(target),
            "Chaos (disabled)": Policy(chaos=off)(target),
            "Chaos (enabled, rate 0)": Policy(chaos=on)(target),
            "Hedge (thread hop, no hedge)": Policy(hedge=Hedge(3600.0))(target),
        },
        number=2_000,
    )
    suite.compare_async(
        "Hedge / AdaptiveBulkhead / Chaos per call (async)",
        {
            "bare call": atarget,
            "Bulkhead": Policy(bulkhead=Bulkhead(64))(atarget),
            "AdaptiveBulkhead": Policy(adaptive=AdaptiveBulkhead())(atarget),
            "Chaos (disabled)": Policy(chaos=off)(atarget),
            "Hedge (task, no hedge)": Policy(hedge=Hedge(3600.0))(atarget),
        },
        number=2_000,
    )


def bench_hedge_tail(suite: Suite) -> None:
    calls = 20_000 if suite.quick else 200_000
    seed = 19
    base = sim_none(calls, seed)
    attempt_timeout = quantile(base.latencies, 0.95)
    cases = {
        "none": base,
        "retry-only (timeout p95, 3 attempts)": sim_retry(calls, seed, attempt_timeout),
        "Hedge p95 (2 attempts)": sim_hedge(calls, seed, "p95"),
        "Hedge p90 (2 attempts)": sim_hedge(calls, seed, "p90"),
    }
    summaries = {name: r.summary(calls) for name, r in cases.items()}
    for metric, title in (
        ("p50_ms", "heavy-tailed latency: p50"),
        ("p99_ms", "heavy-tailed latency: p99"),
        ("p999_ms", "heavy-tailed latency: p99.9"),
    ):
        suite.sections.append(
            Section(title, "ms", {name: round(s[metric], 2) for name, s in summaries.items()})
        )
    for name, s in summaries.items():
        suite.note(f"tail {name}: extra load %", round(s["extra_load_pct"], 2))
        suite.note(f"tail {name}: failed %", round(s["failed_pct"], 3))
    suite.note("tail: simulated calls", calls)


def bench_overload(suite: Suite) -> None:
    duration = 4.0 if suite.quick else 20.0
    kinds = {
        "none": "none",
        "fixed Bulkhead(100)": "fixed",
        "AdaptiveBulkhead aimd": "aimd",
        "AdaptiveBulkhead vegas": "vegas",
        "AdaptiveBulkhead gradient2": "gradient2",
    }
    results = {name: sim_overload(kind, duration=duration, seed=19) for name, kind in kinds.items()}
    for name, r in results.items():
        suite.note(f"overload {name}: goodput calls/s", round(r.goodput, 1))
        suite.note(f"overload {name}: goodput after halving calls/s", round(r.goodput_after, 1))
        suite.note(f"overload {name}: p99 of successes ms", round(r.p99_ms, 1))
        suite.note(f"overload {name}: timed out %", round(r.timed_out_pct, 2))
        suite.note(f"overload {name}: rejected %", round(r.rejected_pct, 2))
        if kinds[name] not in ("none", "fixed"):
            suite.note(f"overload {name}: limit before halving", round(r.limit_before, 1))
            suite.note(f"overload {name}: limit after halving", round(r.limit_after, 1))
            suite.note(
                f"overload {name}: limit within 25 % of its new level s after halving",
                None if r.settle_s is None else round(r.settle_s, 2),
            )
            suite.note(
                f"overload {name}: limit variation after halving (stdev/mean)",
                round(spread(r.limits, duration / 2 + 1.0, duration), 3),
            )
    suite.note("overload: simulated seconds", duration)


def main() -> None:
    args = parse_args(__doc__ or "policies")
    suite = Suite.from_args("policies", args)
    bench_retry_sync(suite)
    bench_retry_async(suite)
    bench_retry_one_failure(suite)
    bench_bulkhead(suite)
    bench_timeout(suite)
    bench_policy(suite)
    bench_new_strategies(suite)
    bench_hedge_tail(suite)
    bench_overload(suite)
    suite.finish(args)


if __name__ == "__main__":
    main()
