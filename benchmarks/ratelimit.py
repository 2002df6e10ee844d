"""Rate-limit decisions side by side with limits and pyrate-limiter.

Run: ``python benchmarks/ratelimit.py`` (``--quick`` for a smoke run,
``--json PATH``, ``--redis-url URL`` to use a running server).

Sections:

1. in-memory decision, 10,000 callers each under its limit (the usual
   per-IP/per-user case): sentia GCRA and sliding window against limits'
   fixed window, moving window and sliding window counter (MemoryStorage) and
   pyrate-limiter (one InMemoryBucket per caller). Target: sentia GCRA at most
   1/4 of the fastest peer.
2. in-memory decision, one hot key under a large limit, for the O(1)
   strategies (log-based ones grow with the limit and are left out).
3. the ``@limiter.limit`` decorator's overhead over a bare call.
4. Redis decision on one local redis-server: sentia (one EVALSHA on server
   time) against limits' Redis strategies and a plain redis-py GET. Target:
   exactly one round trip per decision and at most 1.1x the GET. Round trips
   are counted at the client (every command redis-py sends) over a separate
   run, not timed.
5. the same through asyncio clients (redis.asyncio; limits with
   ``implementation="redispy"``) against an async GET.

Figures: round trips per decision, and bytes of memory per tracked caller.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import redis
import redis.asyncio as aioredis
from _harness import LocalRedis, Suite, parse_args
from limits import parse, storage, strategies
from limits.aio import storage as aio_storage
from limits.aio import strategies as aio_strategies
from pyrate_limiter import (
    BucketFactory,
    Duration,
    InMemoryBucket,
    Limiter,
    Rate,
    RateItem,
    RedisStateStore,
    StateBucket,
)

from sentia_core.policies._ratelimit import RateLimiter

CALLERS = 10_000
LIMITS_STRATEGIES = {
    "limits fixed window": strategies.FixedWindowRateLimiter,
    "limits moving window": strategies.MovingWindowRateLimiter,
    "limits sliding window counter": strategies.SlidingWindowCounterRateLimiter,
}
AIO_STRATEGIES = {
    "limits fixed window": aio_strategies.FixedWindowRateLimiter,
    "limits moving window": aio_strategies.MovingWindowRateLimiter,
    "limits sliding window counter": aio_strategies.SlidingWindowCounterRateLimiter,
}


class PerCallerBuckets(BucketFactory):
    """pyrate-limiter's documented pattern for per-key limits: one bucket per name."""

    def __init__(self, rates: list[Rate], bucket_class: Any = InMemoryBucket) -> None:
        self.rates = rates
        self.bucket_class = bucket_class
        self.buckets: dict[str, Any] = {}
        self.clock = bucket_class(rates)

    def wrap_item(self, name: str, weight: int = 1) -> RateItem:
        return RateItem(name, self.clock.now(), weight=weight)

    def get(self, item: RateItem) -> Any:
        bucket = self.buckets.get(item.name)
        if bucket is None:
            bucket = self.buckets[item.name] = self.create(self.bucket_class, self.rates)
        return bucket


def _fastest(medians: dict[str, float], prefix: str = "sentia") -> tuple[str, float]:
    peers = {k: v for k, v in medians.items() if not k.startswith(prefix) and "GET" not in k}
    name = min(peers, key=peers.__getitem__)
    return name, peers[name]


def memory_many_callers(suite: Suite) -> None:
    keys = [f"10.0.{i // 256}.{i % 256}" for i in range(CALLERS)]
    gcra = RateLimiter({"api": "1000/minute"}, max_keys=4 * CALLERS)
    window = RateLimiter({"api": "1000/minute"}, algorithm="sliding_window", max_keys=4 * CALLERS)
    rate = parse("1000/minute")
    pyrate = Limiter(PerCallerBuckets([Rate(1000, Duration.MINUTE)]))
    pyrate_gcra = Limiter(PerCallerBuckets([Rate(1000, Duration.MINUTE)], StateBucket))

    def cycling(fn: Callable[[str], object]) -> Callable[[], object]:
        it = itertools.cycle(keys).__next__
        return lambda: fn(it())

    cases: dict[str, Callable[[], object]] = {
        "sentia gcra": cycling(lambda k: gcra.hit("api", k)),
        "sentia sliding window": cycling(lambda k: window.hit("api", k)),
    }
    for name, cls in LIMITS_STRATEGIES.items():
        strategy = cls(storage.MemoryStorage())
        cases[name] = cycling(lambda k, s=strategy: s.hit(rate, k))
    cases["pyrate-limiter sliding log"] = cycling(lambda k: pyrate.try_acquire(k, blocking=False))
    cases["pyrate-limiter GCRA"] = cycling(lambda k: pyrate_gcra.try_acquire(k, blocking=False))
    medians = suite.compare(f"in-memory decision, {CALLERS} callers under the limit", cases)
    peer, fastest = _fastest(medians)
    suite.ratio(f"sentia gcra / {peer}", medians["sentia gcra"], fastest, target=0.25)
    suite.ratio(f"sentia sliding window / {peer}", medians["sentia sliding window"], fastest)
    assert gcra.stats().denied == 0, "a caller hit its limit"
    assert window.stats().denied == 0, "a caller hit its limit"


def memory_hot_key(suite: Suite) -> None:
    gcra = RateLimiter({"api": "1000000/minute"})
    window = RateLimiter({"api": "1000000/minute"}, algorithm="sliding_window")
    rate = parse("1000000/minute")
    fixed = strategies.FixedWindowRateLimiter(storage.MemoryStorage())
    counter = strategies.SlidingWindowCounterRateLimiter(storage.MemoryStorage())
    informed = strategies.FixedWindowRateLimiter(storage.MemoryStorage())

    def limits_same_information() -> object:
        # sentia's decision also carries remaining and reset time: limits needs a second call.
        return informed.hit(rate, "hot"), informed.get_window_stats(rate, "hot")

    medians = suite.compare(
        "in-memory decision, one hot key under the limit",
        {
            "sentia gcra": lambda: gcra.hit("api", "hot"),
            "sentia sliding window": lambda: window.hit("api", "hot"),
            "limits fixed window": lambda: fixed.hit(rate, "hot"),
            "limits sliding window counter": lambda: counter.hit(rate, "hot"),
            "limits fixed window + window stats": limits_same_information,
        },
    )
    peer, fastest = _fastest(medians)
    suite.ratio(f"sentia gcra / {peer}", medians["sentia gcra"], fastest, target=0.25)
    suite.ratio(
        "sentia gcra / limits fixed window + window stats (same information)",
        medians["sentia gcra"],
        medians["limits fixed window + window stats"],
    )
    assert gcra.stats().denied == 0


def decorator_overhead(suite: Suite) -> None:
    limiter = RateLimiter({"api": "1000000/minute"})

    def work() -> int:
        return 1

    limited = limiter.limit("api", key="caller")(work)
    medians = suite.compare(
        "@limiter.limit decorated call (allowed)", {"bare call": work, "sentia @limit": limited}
    )
    suite.note(
        "@limit overhead over a bare call (ns)",
        round(medians["sentia @limit"] - medians["bare call"], 1),
    )


def memory_per_caller() -> dict[str, float]:
    """Bytes of Python heap per tracked caller, after 10,000 callers hit once."""
    keys = [f"10.0.{i // 256}.{i % 256}" for i in range(CALLERS)]
    out: dict[str, float] = {}

    def sentia(algorithm: str) -> Callable[[str], object]:
        limiter = RateLimiter({"api": "1000/minute"}, algorithm=algorithm, max_keys=4 * CALLERS)  # type: ignore[arg-type]
        return lambda k: limiter.hit("api", k)

    def limits_hit(cls: Any) -> Callable[[str], object]:
        strategy, rate = cls(storage.MemoryStorage()), parse("1000/minute")
        return lambda k: strategy.hit(rate, k)

    makers: dict[str, Callable[[], Callable[[str], object]]] = {
        "sentia gcra": lambda: sentia("gcra"),
        "sentia sliding window": lambda: sentia("sliding_window"),
        "limits fixed window": lambda: limits_hit(strategies.FixedWindowRateLimiter),
        "limits sliding window counter": lambda: limits_hit(
            strategies.SlidingWindowCounterRateLimiter
        ),
    }
    for name, make in makers.items():
        hit = make()
        hit("warm-up")
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for k in keys:
            hit(k)
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        out[name] = round((after - before) / CALLERS, 1)
    return out


# -- Redis ----------------------------------------------------------------------------


@contextmanager
def counting_commands() -> Iterator[list[int]]:
    """Count every command redis-py writes to a socket (sync and asyncio), i.e. round trips."""
    counter = [0]
    sync_cls = redis.connection.AbstractConnection
    async_cls = redis.asyncio.connection.AbstractConnection
    sync_send, async_send = sync_cls.send_packed_command, async_cls.send_packed_command

    def sync_counting(self: Any, command: Any, check_health: bool = True) -> None:
        counter[0] += 1
        sync_send(self, command, check_health)

    async def async_counting(self: Any, command: Any, check_health: bool = True) -> None:
        counter[0] += 1
        await async_send(self, command, check_health)

    sync_cls.send_packed_command = sync_counting  # type: ignore[method-assign]
    async_cls.send_packed_command = async_counting  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        sync_cls.send_packed_command = sync_send  # type: ignore[method-assign]
        async_cls.send_packed_command = async_send  # type: ignore[method-assign]


def _round_trips(fn: Callable[[], object], n: int = 200) -> float:
    fn()  # connection set-up and script loading are not per-decision costs
    with counting_commands() as counter:
        for _ in range(n):
            fn()
    return counter[0] / n


async def _async_round_trips(fn: Callable[[], Any], n: int = 200) -> float:
    await fn()
    with counting_commands() as counter:
        for _ in range(n):
            await fn()
    return counter[0] / n


def _server_us(client: Any, fn: Callable[[], object], command: str, n: int = 500) -> float:
    """Server-side microseconds per call of ``command`` (INFO commandstats), over ``n`` calls."""
    fn()
    client.config_resetstat()
    for _ in range(n):
        fn()
    return float(client.info("commandstats")[f"cmdstat_{command}"]["usec_per_call"])


def redis_sync(suite: Suite, url: str) -> None:
    client = redis.Redis.from_url(url)
    client.flushall()
    client.set("plain", b"x" * 16)
    gcra = RateLimiter({"api": "1000000/minute"}, redis=url)
    window = RateLimiter({"api": "1000000/minute"}, redis=url, algorithm="sliding_window")
    rate = parse("1000000/minute")
    cases: dict[str, Callable[[], object]] = {
        "redis-py GET (one round trip)": lambda: client.get("plain"),
        "sentia gcra": lambda: gcra.hit("api", "hot"),
        "sentia sliding window": lambda: window.hit("api", "hot"),
    }
    for name, cls in LIMITS_STRATEGIES.items():
        if name == "limits moving window":
            continue  # O(limit) per hit at this limit; its round trips are counted below
        strategy = cls(storage.RedisStorage(url))
        cases[name] = lambda s=strategy: s.hit(rate, "hot")
    pyrate = Limiter(
        StateBucket([Rate(1_000_000, Duration.MINUTE)], store=RedisStateStore(client, "pyrate-hot"))
    )
    cases["pyrate-limiter GCRA"] = lambda: pyrate.try_acquire("hot", blocking=False)
    medians = suite.compare(
        "Redis decision, local redis-server (sync)", cases, number=2_000, rounds=11
    )
    get = medians["redis-py GET (one round trip)"]
    suite.ratio("sentia gcra / GET", medians["sentia gcra"], get, target=1.1)
    suite.ratio("sentia sliding window / GET", medians["sentia sliding window"], get, target=1.1)
    peer, fastest = _fastest(medians)
    suite.ratio(f"sentia gcra / {peer}", medians["sentia gcra"], fastest)

    trips = {
        "sentia gcra hit": _round_trips(lambda: gcra.hit("api", "k")),
        "sentia gcra peek": _round_trips(lambda: gcra.peek("api", "k")),
        "sentia sliding window hit": _round_trips(lambda: window.hit("api", "k")),
    }
    small = parse("100000/minute")
    trips["pyrate-limiter GCRA hit"] = _round_trips(lambda: pyrate.try_acquire("k", blocking=False))
    for name, cls in LIMITS_STRATEGIES.items():
        strategy = cls(storage.RedisStorage(url))
        trips[f"{name} hit"] = _round_trips(lambda s=strategy, k=name: s.hit(small, k))
        trips[f"{name} test"] = _round_trips(lambda s=strategy, k=name: s.test(small, k))
    for name, value in trips.items():
        suite.note(f"round trips per decision (sync) / {name}", value)
    fixed = strategies.FixedWindowRateLimiter(storage.RedisStorage(url))
    server = {
        "redis-py GET": _server_us(client, lambda: client.get("plain"), "get"),
        "sentia gcra hit": _server_us(client, lambda: gcra.hit("api", "s"), "evalsha"),
        "sentia sliding window hit": _server_us(client, lambda: window.hit("api", "s"), "evalsha"),
        "limits fixed window hit": _server_us(client, lambda: fixed.hit(small, "s"), "evalsha"),
        "pyrate-limiter GCRA hit": _server_us(
            client, lambda: pyrate.try_acquire("s", blocking=False), "evalsha"
        ),
    }
    for name, value in server.items():
        suite.note(f"Redis server time per decision, us (INFO commandstats) / {name}", value)
    assert gcra.stats().redis_errors == 0
    assert window.stats().redis_errors == 0
    gcra.close()
    window.close()
    client.close()


def redis_async(suite: Suite, url: str) -> None:
    async_url = url.replace("redis://", "async+redis://", 1)

    async def setup() -> dict[str, Any]:
        client = aioredis.Redis.from_url(url)
        await client.set("plain", b"x" * 16)
        made: dict[str, Any] = {
            "client": client,
            "gcra": RateLimiter({"api": "1000000/minute"}, redis=aioredis.Redis.from_url(url)),
            "window": RateLimiter(
                {"api": "1000000/minute"},
                redis=aioredis.Redis.from_url(url),
                algorithm="sliding_window",
            ),
        }
        for name, cls in AIO_STRATEGIES.items():
            made[name] = cls(aio_storage.RedisStorage(async_url, implementation="redispy"))
        return made

    rate = parse("1000000/minute")
    state: dict[str, Any] = {}

    async def get() -> object:
        if not state:
            state.update(await setup())
        return await state["client"].get("plain")

    cases: dict[str, Callable[[], Any]] = {
        "redis.asyncio GET (one round trip)": get,
        "sentia gcra": lambda: state["gcra"].ahit("api", "hot"),
        "sentia sliding window": lambda: state["window"].ahit("api", "hot"),
        "limits fixed window": lambda: state["limits fixed window"].hit(rate, "hot"),
        "limits sliding window counter": lambda: state["limits sliding window counter"].hit(
            rate, "hot"
        ),
    }
    medians = suite.compare_async(
        "Redis decision, local redis-server (asyncio)", cases, number=2_000, rounds=11
    )
    base = medians["redis.asyncio GET (one round trip)"]
    suite.ratio("sentia gcra / GET", medians["sentia gcra"], base, target=1.1)
    peer, fastest = _fastest(medians)
    suite.ratio(f"sentia gcra / {peer}", medians["sentia gcra"], fastest)

    async def count() -> dict[str, float]:
        made = await setup()
        small = parse("100000/minute")
        trips = {
            "sentia gcra ahit": await _async_round_trips(lambda: made["gcra"].ahit("api", "k")),
            "sentia sliding window ahit": await _async_round_trips(
                lambda: made["window"].ahit("api", "k")
            ),
        }
        for name in AIO_STRATEGIES:
            trips[f"{name} hit"] = await _async_round_trips(
                lambda s=made[name], k=name: s.hit(small, k)
            )
        await made["client"].aclose()
        for which in ("gcra", "window"):
            await made[which]._store.async_client.aclose()
        return trips

    for name, value in asyncio.run(count()).items():
        suite.note(f"round trips per decision (async) / {name}", value)


def main() -> None:
    args = parse_args(__doc__ or "rate-limit benchmark")
    suite = Suite.from_args("ratelimit", args)
    memory_many_callers(suite)
    memory_hot_key(suite)
    decorator_overhead(suite)
    for name, value in memory_per_caller().items():
        suite.note(f"heap bytes per tracked caller / {name}", value)
    with LocalRedis(args.redis_url) as local:
        if local.url is None:
            suite.note("Redis cases", "skipped: no redis-server and no --redis-url")
        else:
            redis_sync(suite, local.url)
            redis_async(suite, local.url)
    suite.finish(args)


if __name__ == "__main__":
    main()
