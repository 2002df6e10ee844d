"""TieredCache side by side with cachetools, functools, cashews and aiocache.

Run: ``python benchmarks/cache.py`` (``--quick`` for a smoke run, ``--json PATH``).

Sections (in-process; part 2 appends its Redis sections to ``REDIS_SECTIONS``,
which run against one ``LocalRedis``):

1. L1 hit ``get`` against ``cachetools.LRUCache.get``, ``cachetools.TTLCache.get``
   and a plain ``dict.get``; targets: at most 2x LRUCache (which keeps no TTL
   and no stats) and at most 0.4x TTLCache (which keeps TTLs but no stats).
2. the same hit from a coroutine against cashews' and aiocache's memory
   backends (each case awaits one coroutine).
3. ``set`` (overwrite in a full-ish cache) against LRUCache and TTLCache item
   assignment, for a short string and a small dict (sentia validates and sizes
   the value with the codec; the peers store the reference as is).
4. a decorated function's hit: ``@cache.cached`` against ``cachetools.cached``
   (LRU and TTL) and ``functools.lru_cache`` (C; the floor).
5. hit ratio on a Zipf(1.0) trace over 10,000 keys with room for 1,000, for
   TieredCache and cachetools.LRUCache (the same LRU, so the same figure), and
   the cost per lookup of the whole trace.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import functools
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import cachetools
from _harness import LocalRedis, Suite, parse_args

from sentia_core.cache import TieredCache

KEYS = [f"product:{i}" for i in range(1000)]
HOT = "product:500"
PRODUCT = {"id": 500, "name": "Widget", "price": 9.99, "tags": ["a", "b"], "stock": 12}


def _filled() -> tuple[TieredCache, cachetools.LRUCache[str, Any], cachetools.TTLCache[str, Any]]:
    sentia = TieredCache(max_items=10_000, ttl=300)
    lru: cachetools.LRUCache[str, Any] = cachetools.LRUCache(maxsize=10_000)
    ttl: cachetools.TTLCache[str, Any] = cachetools.TTLCache(maxsize=10_000, ttl=300)
    for i, key in enumerate(KEYS):
        sentia.set(key, i)
        lru[key] = i
        ttl[key] = i
    return sentia, lru, ttl


def l1_hit(suite: Suite, args: argparse.Namespace) -> None:
    sentia, lru, ttl = _filled()
    plain = dict.fromkeys(KEYS, 1)
    get, lru_get, ttl_get, dict_get = sentia.get, lru.get, ttl.get, plain.get
    m = suite.compare(
        "L1 hit: get(key)",
        {
            "sentia TieredCache.get": lambda: get(HOT),
            "cachetools LRUCache.get": lambda: lru_get(HOT),
            "cachetools TTLCache.get": lambda: ttl_get(HOT),
            "dict.get": lambda: dict_get(HOT),
        },
        number=50_000,
    )
    s = m["sentia TieredCache.get"]
    suite.ratio("sentia/LRUCache", s, m["cachetools LRUCache.get"], target=2.0)
    suite.ratio("sentia/TTLCache", s, m["cachetools TTLCache.get"], target=0.4)
    suite.ratio("sentia/dict", s, m["dict.get"])


def l1_hit_async(suite: Suite, args: argparse.Namespace) -> None:
    from aiocache import SimpleMemoryCache
    from cashews import Cache

    sentia, _, _ = _filled()
    cashews_cache = Cache()
    cashews_cache.setup("mem://?size=10000")
    aio = SimpleMemoryCache()

    async def fill() -> None:
        for i, key in enumerate(KEYS):
            await cashews_cache.set(key, i, expire=300)
            await aio.set(key, i, ttl=300)

    asyncio.run(fill())
    get = sentia.get

    async def sentia_case() -> Any:
        return get(HOT)

    m = suite.compare_async(
        "L1 hit from a coroutine: await get(key)",
        {
            "sentia TieredCache.get": sentia_case,
            "cashews mem://": lambda: cashews_cache.get(HOT),
            "aiocache SimpleMemoryCache": lambda: aio.get(HOT),
        },
        number=5_000,
    )
    s = m["sentia TieredCache.get"]
    suite.ratio("sentia/cashews", s, m["cashews mem://"], target=1.0)
    suite.ratio("sentia/aiocache", s, m["aiocache SimpleMemoryCache"], target=1.0)


def set_(suite: Suite, args: argparse.Namespace) -> None:
    sentia, lru, ttl = _filled()
    put = sentia.set

    def lru_put(value: Any) -> None:
        lru[HOT] = value

    def ttl_put(value: Any) -> None:
        ttl[HOT] = value

    for label, value in (("short str", "in stock"), ("small dict", PRODUCT)):
        m = suite.compare(
            f"set(key, {label}) over an existing key, 1,000 entries",
            {
                "sentia TieredCache.set": functools.partial(put, HOT, value),
                "cachetools LRUCache[k]=v": functools.partial(lru_put, value),
                "cachetools TTLCache[k]=v": functools.partial(ttl_put, value),
            },
            number=20_000,
        )
        s = m["sentia TieredCache.set"]
        suite.ratio("sentia/LRUCache", s, m["cachetools LRUCache[k]=v"])
        suite.ratio("sentia/TTLCache", s, m["cachetools TTLCache[k]=v"])


def cached_hit(suite: Suite, args: argparse.Namespace) -> None:
    sentia = TieredCache()

    @sentia.cached(ttl=300)
    def s_fn(pid: int) -> int:
        return pid

    @cachetools.cached(cachetools.LRUCache(maxsize=10_000))
    def lru_fn(pid: int) -> int:
        return pid

    @cachetools.cached(cachetools.TTLCache(maxsize=10_000, ttl=300))
    def ttl_fn(pid: int) -> int:
        return pid

    @functools.lru_cache(maxsize=10_000)
    def ft_fn(pid: int) -> int:
        return pid

    for fn in (s_fn, lru_fn, ttl_fn, ft_fn):
        fn(42)
    m = suite.compare(
        "decorated function hit: f(42)",
        {
            "sentia @cache.cached": functools.partial(s_fn, 42),
            "cachetools.cached(LRUCache)": functools.partial(lru_fn, 42),
            "cachetools.cached(TTLCache)": functools.partial(ttl_fn, 42),
            "functools.lru_cache": functools.partial(ft_fn, 42),
        },
        number=50_000,
    )
    s = m["sentia @cache.cached"]
    suite.ratio("sentia/cachetools LRU", s, m["cachetools.cached(LRUCache)"])
    suite.ratio("sentia/cachetools TTL", s, m["cachetools.cached(TTLCache)"])
    suite.ratio("sentia/lru_cache", s, m["functools.lru_cache"])


def _zipf_trace(n: int, universe: int, s: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    weights = [1.0 / (k**s) for k in range(1, universe + 1)]
    cumulative: list[float] = []
    total = 0.0
    for w in weights:
        total += w
        cumulative.append(total)
    return [f"item:{bisect.bisect_left(cumulative, rng.random() * total)}" for _ in range(n)]


def zipf(suite: Suite, args: argparse.Namespace) -> None:
    n = 20_000 if suite.quick else 200_000
    trace = _zipf_trace(n, universe=10_000, s=1.0, seed=42)
    capacity = 1_000

    def run_sentia() -> float:
        cache = TieredCache(max_items=capacity, ttl=3600)
        get_or_set = cache.get_or_set
        for key in trace:
            get_or_set(key, functools.partial(str, key))
        return cache.stats().hit_rate

    def run_lru() -> float:
        cache: cachetools.LRUCache[str, str] = cachetools.LRUCache(maxsize=capacity)
        hits = 0
        for key in trace:
            if key in cache:
                hits += 1
                cache[key]  # a read marks the key recently used
            else:
                cache[key] = key
        return hits / len(trace)

    sentia_ratio = run_sentia()
    lru_ratio = run_lru()
    suite.note("zipf(1.0) trace: requests", n)
    suite.note("zipf(1.0) trace: distinct keys / L1 capacity", "10000 / 1000")
    suite.note("zipf(1.0) hit ratio, sentia TieredCache (LRU)", round(sentia_ratio, 4))
    suite.note("zipf(1.0) hit ratio, cachetools LRUCache", round(lru_ratio, 4))

    sentia = TieredCache(max_items=capacity, ttl=3600)
    lru: cachetools.LRUCache[str, str] = cachetools.LRUCache(maxsize=capacity)
    for key in trace[: capacity * 5]:
        sentia.set(key, key)
        lru[key] = key
    it_s = iter(trace * 50)
    it_l = iter(trace * 50)
    s_get, l_get = sentia.get_or_set, lru.get

    def sentia_lookup() -> Any:
        key = next(it_s)
        return s_get(key, functools.partial(str, key))

    def lru_lookup() -> Any:
        key = next(it_l)
        value = l_get(key)
        if value is None:
            lru[key] = value = key
        return value

    m = suite.compare(
        "Zipf trace, get-or-load per request (hits and misses)",
        {"sentia get_or_set": sentia_lookup, "cachetools LRUCache get/set": lru_lookup},
        number=20_000,
        rounds=7,
    )
    suite.ratio("sentia/LRUCache", m["sentia get_or_set"], m["cachetools LRUCache get/set"])


#: In-process sections, in order.
SECTIONS: list[Callable[[Suite, argparse.Namespace], None]] = [
    l1_hit,
    l1_hit_async,
    set_,
    cached_hit,
    zipf,
]

#: Sections that need Redis (part 2): called as ``section(suite, args, url)``.
REDIS_SECTIONS: list[Callable[[Suite, argparse.Namespace, str], None]] = []


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "cache", argv)
    suite = Suite.from_args("cache", args)
    for section in SECTIONS:
        section(suite, args)
    if REDIS_SECTIONS:
        with LocalRedis(args.redis_url) as redis:
            if redis.url is None:
                suite.note("redis sections", "skipped: no redis-server and no --redis-url")
            else:
                for redis_section in REDIS_SECTIONS:
                    redis_section(suite, args, redis.url)
    suite.finish(args)


if __name__ == "__main__":
    main()
