"""CircuitBreaker overhead side by side with pybreaker, circuitbreaker and purgatory.

Run: ``python benchmarks/breaker.py`` (``--quick`` for a smoke run, ``--json PATH``).

Sections:

1. sync decorated call, CLOSED, success, count window: the per-call overhead
   (decorated minus bare) of each library; target: sentia's overhead at most
   one third of the fastest peer's.
2. the same call with sentia's heavier options (time window, slow-call
   detection, a listener), to show what each costs.
3. async decorated call against purgatory and circuitbreaker.
4. a rejected call while OPEN (raise + catch): what failing fast costs.
5. eight threads calling a 1 ms dependency at once: pybreaker holds its lock
   while the call runs (danielfm/pybreaker#3), sentia holds none.
6. shared state through a real redis-server: sentia with a clean count window
   (a success changes nothing and is not sent), sentia with a time window
   (every outcome is one Lua round trip), pybreaker's Redis storage (several
   commands per call) and purgatory's Redis backend (async only: its sync
   backend fails with redis-py 8).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import circuitbreaker
import pybreaker
from _harness import LocalRedis, Suite, parse_args
from purgatory import AsyncCircuitBreakerFactory, SyncCircuitBreakerFactory

from sentia_core.breaker import CircuitBreaker, RedisStateStore
from sentia_core.errors import CircuitOpenError

PEERS = ("pybreaker", "circuitbreaker", "purgatory")


def work(x: int = 1) -> int:
    return x


async def awork(x: int = 1) -> int:
    return x


class Boom(Exception):
    pass


def boom() -> None:
    raise Boom


def overhead(
    suite: Suite,
    medians: dict[str, float],
    bare: str,
    sentia: str,
    peers: tuple[str, ...],
    *,
    target: float | None,
) -> None:
    """Record overhead figures (case minus bare) and sentia's ratio to the fastest peer."""
    base = medians[bare]
    over = {name: max(medians[name] - base, 0.1) for name in (sentia, *peers)}
    fastest = min(peers, key=lambda p: over[p])
    for name, value in over.items():
        suite.note(f"{suite.sections[-1].title} / overhead {name} (ns)", round(value, 1))
    suite.ratio(
        f"overhead sentia / fastest peer ({fastest})", over[sentia], over[fastest], target=target
    )


def sync_success(suite: Suite) -> None:
    sentia = CircuitBreaker("bench", window_type="count", window_size=100)(work)
    pyb = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)(work)
    cb = circuitbreaker.CircuitBreaker(failure_threshold=5, recovery_timeout=60)(work)
    purg = SyncCircuitBreakerFactory(default_threshold=5, default_ttl=60)("bench")(work)
    for fn in (sentia, pyb, cb, purg):
        fn()
    cases: dict[str, Callable[[], object]] = {
        "bare call": work,
        "sentia_core": sentia,
        "pybreaker": pyb,
        "circuitbreaker": cb,
        "purgatory": purg,
    }
    medians = suite.compare(
        "sync decorated call, CLOSED, success (count window)", cases, number=50_000
    )
    overhead(suite, medians, "bare call", "sentia_core", PEERS, target=1 / 3)
    for peer in PEERS:
        suite.ratio(f"decorated call sentia / {peer}", medians["sentia_core"], medians[peer])


def sync_variants(suite: Suite) -> None:
    def listener(_: object) -> None:
        return None

    listened = CircuitBreaker("listened")
    listened.add_listener(listener)
    cases: dict[str, Callable[[], object]] = {
        "bare call": work,
        "sentia count window": CircuitBreaker("count")(work),
        "sentia time window (10 s)": CircuitBreaker("time", window_type="time", window_size=10)(
            work
        ),
        "sentia + slow-call detection": CircuitBreaker("slow", slow_call_duration=1.0)(work),
        "sentia + failure_predicate": CircuitBreaker("pred", failure_predicate=lambda r: r is None)(
            work
        ),
        "sentia + a listener": listened(work),
        "sentia breaker.call(fn)": lambda: _count_breaker.call(work),
        "sentia with-block": _with_block,
        "pybreaker": pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)(work),
    }
    medians = suite.compare("sync call, sentia options (CLOSED, success)", cases, number=30_000)
    suite.ratio(
        "time window sentia / pybreaker", medians["sentia time window (10 s)"], medians["pybreaker"]
    )
    suite.ratio(
        "slow-call detection sentia / pybreaker",
        medians["sentia + slow-call detection"],
        medians["pybreaker"],
    )


_count_breaker = CircuitBreaker("call")
_with_breaker = CircuitBreaker("with")


def _with_block() -> int:
    with _with_breaker:
        return work()


def async_success(suite: Suite) -> None:
    sentia = CircuitBreaker("abench")(awork)
    cb = circuitbreaker.CircuitBreaker(failure_threshold=5, recovery_timeout=60)(awork)
    factory = AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=60)
    purg = factory("abench")(awork)
    cases = {
        "bare await": awork,
        "sentia_core": sentia,
        "circuitbreaker": cb,
        "purgatory": purg,
    }
    medians = suite.compare_async("async decorated call, CLOSED, success", cases, number=20_000)
    overhead(
        suite, medians, "bare await", "sentia_core", ("circuitbreaker", "purgatory"), target=1 / 3
    )


def rejected(suite: Suite) -> None:
    sentia = CircuitBreaker("open", consecutive_failures=1, reset_timeout=3600)
    sentia_boom = sentia(boom)
    pyb = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=3600)
    pyb_boom = pyb(boom)
    cb = circuitbreaker.CircuitBreaker(
        failure_threshold=1, recovery_timeout=3600, expected_exception=Boom
    )
    cb_boom = cb(boom)
    factory = SyncCircuitBreakerFactory(default_threshold=1, default_ttl=3600)
    purg_boom = factory("open")(boom)
    for fn in (sentia_boom, pyb_boom, cb_boom, purg_boom):
        with contextlib.suppress(Exception):
            fn()

    def attempt(fn: Callable[[], object]) -> Callable[[], object]:
        def run() -> None:
            with contextlib.suppress(Exception):  # each library's own "open" error
                fn()

        return run

    with contextlib.suppress(CircuitOpenError):
        sentia_boom()
    cases = {
        "sentia_core": attempt(sentia_boom),
        "pybreaker": attempt(pyb_boom),
        "circuitbreaker": attempt(cb_boom),
        "purgatory": attempt(purg_boom),
    }
    medians = suite.compare("rejected call while OPEN (raise + catch)", cases, number=20_000)
    for peer in PEERS:
        suite.ratio(f"rejection sentia / {peer}", medians["sentia_core"], medians[peer])


def concurrency(suite: Suite) -> None:
    threads = 8

    def dependency() -> None:
        time.sleep(0.001)

    sentia = CircuitBreaker("threads")(dependency)
    pyb = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)(dependency)
    cb = circuitbreaker.CircuitBreaker(failure_threshold=5, recovery_timeout=60)(dependency)
    pool = ThreadPoolExecutor(threads)

    def burst(fn: Callable[[], object]) -> Callable[[], object]:
        def run() -> None:
            wait([pool.submit(fn) for _ in range(threads)])

        return run

    cases = {
        "no breaker": burst(dependency),
        "sentia_core": burst(sentia),
        "pybreaker": burst(pyb),
        "circuitbreaker": burst(cb),
    }
    medians = suite.compare(
        f"{threads} threads x one 1 ms call each (time per burst)",
        cases,
        number=60,
        rounds=9,
    )
    pool.shutdown()
    suite.ratio("burst sentia / pybreaker", medians["sentia_core"], medians["pybreaker"])
    suite.ratio("burst sentia / no breaker", medians["sentia_core"], medians["no breaker"])


def shared_state(suite: Suite, redis_url: str | None) -> None:
    if redis_url is None:
        suite.note("shared state through Redis", "skipped: no redis-server and no --redis-url")
        return
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    store = RedisStateStore(redis_url)
    sentia = CircuitBreaker("shared", state_store=store)(work)
    # A time window counts every success, so every outcome is a Lua round trip:
    # the cost of sharing state when the shortcut for a clean window does not apply.
    sentia_sent = CircuitBreaker("shared-time", state_store=store, window_type="time")(work)
    pyb_storage = pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, client, namespace="bench")
    pyb = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60, state_storage=pyb_storage)(work)
    for fn in (sentia, sentia_sent, pyb):
        for _ in range(110):  # fill the count window: healthy steady state
            fn()

    def ping() -> object:
        return client.ping()

    cases = {
        "one PING round trip": ping,
        "sentia_core + RedisStateStore": sentia,
        "sentia_core + RedisStateStore, every outcome sent": sentia_sent,
        "pybreaker + CircuitRedisStorage": pyb,
    }
    medians = suite.compare(
        "sync call with shared state on a real redis-server, CLOSED, success",
        cases,
        number=2_000,
        rounds=9,
    )
    suite.ratio(
        "sentia / pybreaker (Redis)",
        medians["sentia_core + RedisStateStore"],
        medians["pybreaker + CircuitRedisStorage"],
    )
    suite.ratio(
        "sentia, every outcome sent / pybreaker (Redis)",
        medians["sentia_core + RedisStateStore, every outcome sent"],
        medians["pybreaker + CircuitRedisStorage"],
    )
    suite.ratio(
        "sentia, every outcome sent / one PING",
        medians["sentia_core + RedisStateStore, every outcome sent"],
        medians["one PING round trip"],
    )
    suite.note(
        "purgatory + redis (sync)",
        "not measured: purgatory 3.0.1's SyncRedisRepository fails with redis-py 8",
    )
    store.close()
    client.close()


def shared_state_async(suite: Suite, redis_url: str | None) -> None:
    if redis_url is None:
        return
    import redis.asyncio as aioredis
    from purgatory.service._async.unit_of_work import AsyncRedisUnitOfWork

    async def build() -> tuple[Any, ...]:
        client = aioredis.Redis.from_url(redis_url)
        store = RedisStateStore(redis_url)
        sentia = CircuitBreaker("ashared", state_store=store)(awork)
        sent = CircuitBreaker("ashared-time", state_store=store, window_type="time")(awork)
        factory = AsyncCircuitBreakerFactory(
            default_threshold=5, default_ttl=60, uow=AsyncRedisUnitOfWork(redis_url)
        )
        await factory.initialize()
        purg = factory("ashared")(awork)
        for _ in range(110):  # fill the count window: healthy steady state
            await sentia()
        return client, store, sentia, sent, purg

    state: dict[str, Any] = {}

    async def lazy(name: str) -> object:
        if not state:
            (
                state["client"],
                state["store"],
                state["sentia"],
                state["sent"],
                state["purg"],
            ) = await build()
        if name == "ping":
            return await state["client"].ping()
        return await state[name]()

    async def ping() -> object:
        return await lazy("ping")

    async def sentia() -> object:
        return await lazy("sentia")

    async def purg() -> object:
        return await lazy("purg")

    async def sent() -> object:
        return await lazy("sent")

    medians = suite.compare_async(
        "async call with shared state on a real redis-server, CLOSED, success",
        {
            "one PING round trip": ping,
            "sentia_core + RedisStateStore": sentia,
            "sentia_core + RedisStateStore, every outcome sent": sent,
            "purgatory + redis": purg,
        },
        number=2_000,
        rounds=9,
    )
    suite.ratio(
        "sentia / purgatory (Redis)",
        medians["sentia_core + RedisStateStore"],
        medians["purgatory + redis"],
    )
    suite.ratio(
        "sentia, every outcome sent / purgatory (Redis)",
        medians["sentia_core + RedisStateStore, every outcome sent"],
        medians["purgatory + redis"],
    )


def main() -> None:
    args = parse_args(__doc__ or "breaker benchmark")
    suite = Suite.from_args("breaker", args)
    sync_success(suite)
    sync_variants(suite)
    async_success(suite)
    rejected(suite)
    concurrency(suite)
    with LocalRedis(args.redis_url) as local:
        shared_state(suite, local.url)
        shared_state_async(suite, local.url)
    suite.finish(args)


if __name__ == "__main__":
    main()
