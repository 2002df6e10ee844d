"""TieredCache side by side with cachetools, functools, cashews and aiocache.

Run: ``python benchmarks/cache.py`` (``--quick`` for a smoke run, ``--json PATH``).

Sections (in-process; part 2 appends its Redis sections to ``REDIS_SECTIONS``,
which run against one ``LocalRedis``):

1. L1 hit ``get`` against ``cachetools.LRUCache.get``, ``cachetools.TTLCache.get``,
   theine's ``Cache.get`` and a plain ``dict.get`` (and sentia with
   ``eviction="lru"``); targets: at most 2x LRUCache (which keeps no TTL
   and no stats) and at most 0.4x TTLCache (which keeps TTLs but no stats).
2. the same hit from a coroutine against cashews' and aiocache's memory
   backends (each case awaits one coroutine).
3. ``set`` (overwrite in a full-ish cache) against LRUCache and TTLCache item
   assignment, for a short string and a small dict (sentia validates and sizes
   the value with the codec; the peers store the reference as is); W-TinyLFU
   against ``eviction="lru"`` (target at most 1.5x), and the write of a new
   key into a full cache (each one evicts) against LRU, cachetools and theine.
4. a decorated function's hit: ``@cache.cached`` against ``cachetools.cached``
   (LRU and TTL) and ``functools.lru_cache`` (C; the floor).
5. the cost per request of a Zipf(1.0) trace over 10,000 keys with room for
   1,000 through ``get_or_set`` (hits, misses, admission and read-buffer
   drains), W-TinyLFU against LRU and cachetools.
5b. hit ratios (a get, and a set on each miss) on Zipf 0.6 / 0.8 / 1.0 over
   100,000 keys with room for 1,000, Zipf 0.8 with one-off scans, a loop
   larger than the cache and the real-world traces found in
   ``benchmarks/traces/`` (or ``$SENTIA_BENCH_TRACES``; fetched by
   ``benchmarks/_fetch_traces.py``): sentia W-TinyLFU and LRU, cachetools
   LRUCache, theine and Belady's optimum (computed offline); goal: at least
   theine's on every trace.

Redis sections (one local redis-server, started here unless ``--redis-url``):

6. L2 hit, sync, L1 off: ``TieredCache.get`` against one redis-py ``GET`` of
   the same bytes (target at most 1.15x) and ``GET`` + ``json.loads``.
7. L2 hit from a coroutine, L1 off: ``AsyncTieredCache.get`` against cashews'
   and aiocache's Redis backends (each with its default serializer); target:
   faster than both.
8. ``get_many`` of 100 keys, L1 off, against one redis-py ``MGET`` of the same
   bytes (target at most 1.2x), and with dict values against ``MGET`` +
   ``json.loads`` of each.
9. ``invalidate_tags`` of a tag on 10,000 keys (target under 100 ms), against
   ``UNLINK`` of the same keys known in advance (500 per command, pipelined);
   also the longest single Redis command during it (SLOWLOG), which is what
   blocks other clients.
10. cross-process propagation: another process calls ``delete``; the time
    until this process's L1 has dropped the key (target under 50 ms).
11. throughput of a Zipf(1.0) read workload over 10,000 keys from 4 threads,
    L1 (1,000 entries) + L2 against L2 only.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import functools
import itertools
import json
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import cachetools
from _harness import LocalRedis, Suite, parse_args
from _traces import TRACE_DIR, Trace, belady, real_traces, synthetic_traces

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


def _theine(capacity: int) -> Any:
    from theine import Cache

    return Cache(capacity)


def l1_hit(suite: Suite, args: argparse.Namespace) -> None:
    sentia, lru, ttl = _filled()
    sentia_lru = TieredCache(max_items=10_000, ttl=300, eviction="lru")
    theine = _theine(10_000)
    for i, key in enumerate(KEYS):
        sentia_lru.set(key, i)
        theine.set(key, i)
    plain = dict.fromkeys(KEYS, 1)
    get, lru_get, ttl_get, dict_get = sentia.get, lru.get, ttl.get, plain.get
    s_lru_get, theine_get = sentia_lru.get, theine.get
    m = suite.compare(
        "L1 hit: get(key)",
        {
            "sentia TieredCache.get (W-TinyLFU)": lambda: get(HOT),
            "sentia TieredCache.get (eviction='lru')": lambda: s_lru_get(HOT),
            "cachetools LRUCache.get": lambda: lru_get(HOT),
            "cachetools TTLCache.get": lambda: ttl_get(HOT),
            "theine Cache.get": lambda: theine_get(HOT),
            "dict.get": lambda: dict_get(HOT),
        },
        number=50_000,
    )
    s = m["sentia TieredCache.get (W-TinyLFU)"]
    suite.ratio("sentia/LRUCache", s, m["cachetools LRUCache.get"], target=2.0)
    suite.ratio("sentia/TTLCache", s, m["cachetools TTLCache.get"], target=0.4)
    suite.ratio("sentia/theine", s, m["theine Cache.get"])
    suite.ratio("sentia W-TinyLFU/sentia LRU", s, m["sentia TieredCache.get (eviction='lru')"])
    suite.ratio("sentia/dict", s, m["dict.get"])
    theine.close()


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
    sentia_lru = TieredCache(max_items=10_000, ttl=300, eviction="lru")
    for i, key in enumerate(KEYS):
        sentia_lru.set(key, i)
    m = suite.compare(
        "set(key, short str) over an existing key: W-TinyLFU against LRU",
        {
            "sentia W-TinyLFU": functools.partial(put, HOT, "in stock"),
            "sentia eviction='lru'": functools.partial(sentia_lru.set, HOT, "in stock"),
        },
        number=20_000,
    )
    suite.ratio("W-TinyLFU/LRU", m["sentia W-TinyLFU"], m["sentia eviction='lru'"], target=1.5)
    set_new_key(suite)


def set_new_key(suite: Suite) -> None:
    """A write of a key not held, into a full cache: one eviction (or rejection) each."""
    capacity = 1_000
    caches: dict[str, Any] = {}
    for eviction in ("tinylfu", "lru"):
        cache = TieredCache(max_items=capacity, ttl=300, eviction=eviction)  # type: ignore[arg-type]
        for key in KEYS:
            cache.set(key, 1)
        caches[eviction] = cache
    lru: cachetools.LRUCache[str, Any] = cachetools.LRUCache(maxsize=capacity)
    theine = _theine(capacity)
    for key in KEYS:
        lru[key] = 1
        theine.set(key, 1)
    fresh = {name: (f"new:{name}:{i}" for i in itertools.count()) for name in ("t", "l", "c", "h")}
    t_set, l_set, h_set = caches["tinylfu"].set, caches["lru"].set, theine.set
    t_keys, l_keys, c_keys, h_keys = fresh["t"], fresh["l"], fresh["c"], fresh["h"]

    def lru_put() -> None:
        lru[next(c_keys)] = 1

    m = suite.compare(
        "set(new key, short str) into a full cache of 1,000 (each write evicts)",
        {
            "sentia W-TinyLFU": lambda: t_set(next(t_keys), "in stock"),
            "sentia eviction='lru'": lambda: l_set(next(l_keys), "in stock"),
            "cachetools LRUCache[k]=v": lru_put,
            "theine Cache.set": lambda: h_set(next(h_keys), "in stock"),
        },
        number=20_000,
    )
    s = m["sentia W-TinyLFU"]
    suite.ratio("W-TinyLFU/LRU", s, m["sentia eviction='lru'"], target=1.5)
    suite.ratio("sentia/LRUCache", s, m["cachetools LRUCache[k]=v"])
    suite.ratio("sentia/theine", s, m["theine Cache.set"])
    theine.close()


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


def _sentia_ratio(trace: Trace, eviction: str) -> float:
    cache = TieredCache(max_items=trace.capacity, ttl=3600, eviction=eviction)  # type: ignore[arg-type]
    get, put = cache.get, cache.set
    hits = 0
    for key in trace.keys:
        if get(key) is None:
            put(key, 1)
        else:
            hits += 1
    return hits / len(trace.keys)


def _cachetools_ratio(trace: Trace) -> float:
    cache: cachetools.LRUCache[str, int] = cachetools.LRUCache(maxsize=trace.capacity)
    get = cache.get
    hits = 0
    for key in trace.keys:
        if get(key) is None:
            cache[key] = 1
        else:
            hits += 1
    return hits / len(trace.keys)


def _theine_ratio(trace: Trace) -> float:
    cache = _theine(trace.capacity)
    get, put = cache.get, cache.set
    hits = 0
    for key in trace.keys:
        if get(key)[1]:
            hits += 1
        else:
            put(key, 1)
    cache.close()
    return hits / len(trace.keys)


def hit_ratio(suite: Suite, args: argparse.Namespace) -> None:
    """Hit ratio per trace: sentia (W-TinyLFU, LRU), cachetools LRU, theine, Belady."""
    traces = synthetic_traces(suite.quick)
    directory = os.environ.get("SENTIA_BENCH_TRACES")
    real, missing = real_traces(suite.quick, Path(directory) if directory else TRACE_DIR)
    traces += real
    if missing:
        suite.note(
            "hit ratio: real traces missing",
            f"{', '.join(missing)} (python benchmarks/_fetch_traces.py --caffeine PATH)",
        )
    out = sys.stdout
    out.write("\n## hit ratio (a get, and a set on each miss)\n")
    header = (
        "trace",
        "room",
        "sentia W-TinyLFU",
        "sentia LRU",
        "cachetools LRU",
        "theine",
        "optimum",
    )
    out.write("  " + " | ".join(header) + "\n")
    behind: list[str] = []
    for trace in traces:
        row = {
            "sentia W-TinyLFU": round(_sentia_ratio(trace, "tinylfu"), 4),
            "sentia LRU": round(_sentia_ratio(trace, "lru"), 4),
            "cachetools LRU": round(_cachetools_ratio(trace), 4),
            "theine": round(_theine_ratio(trace), 4),
            "Belady optimum": round(belady(trace.keys, trace.capacity), 4),
            "capacity": trace.capacity,
            "requests": len(trace.keys),
            "source": trace.source,
        }
        suite.note(f"hit ratio: {trace.name}", row)
        if row["sentia W-TinyLFU"] < row["theine"]:
            behind.append(trace.name)
        cells = [trace.name, f"{trace.capacity:,}"]
        cells += [f"{row[k]:.4f}" for k in header[2:6]]
        cells.append(f"{row['Belady optimum']:.4f}")
        out.write("  " + " | ".join(cells) + "\n")
    verdict = "MET" if not behind else f"MISSED on {', '.join(behind)}"
    suite.note("hit ratio: sentia W-TinyLFU >= theine on every trace", verdict)


def zipf(suite: Suite, args: argparse.Namespace) -> None:
    """The cost per request of a whole Zipf trace (hits, misses, admission, drains)."""
    n = 20_000 if suite.quick else 200_000
    trace = _zipf_trace(n, universe=10_000, s=1.0, seed=42)
    capacity = 1_000
    sentia = TieredCache(max_items=capacity, ttl=3600)
    sentia_lru = TieredCache(max_items=capacity, ttl=3600, eviction="lru")
    lru: cachetools.LRUCache[str, str] = cachetools.LRUCache(maxsize=capacity)
    for key in trace[: capacity * 5]:
        sentia.set(key, key)
        sentia_lru.set(key, key)
        lru[key] = key
    it_s = iter(trace * 50)
    it_r = iter(trace * 50)
    it_l = iter(trace * 50)
    s_get, r_get, l_get = sentia.get_or_set, sentia_lru.get_or_set, lru.get

    def sentia_lookup() -> Any:
        key = next(it_s)
        return s_get(key, functools.partial(str, key))

    def sentia_lru_lookup() -> Any:
        key = next(it_r)
        return r_get(key, functools.partial(str, key))

    def lru_lookup() -> Any:
        key = next(it_l)
        value = l_get(key)
        if value is None:
            lru[key] = value = key
        return value

    m = suite.compare(
        "Zipf(1.0) trace over 10,000 keys, room for 1,000: get-or-load per request",
        {
            "sentia get_or_set (W-TinyLFU)": sentia_lookup,
            "sentia get_or_set (eviction='lru')": sentia_lru_lookup,
            "cachetools LRUCache get/set": lru_lookup,
        },
        number=20_000,
        rounds=7,
    )
    s = m["sentia get_or_set (W-TinyLFU)"]
    suite.ratio("W-TinyLFU/LRU", s, m["sentia get_or_set (eviction='lru')"])
    suite.ratio("sentia/LRUCache", s, m["cachetools LRUCache get/set"])
    suite.note("zipf(1.0) 10k keys: hit ratio, sentia W-TinyLFU", round(sentia.stats().hit_rate, 4))
    suite.note("zipf(1.0) 10k keys: hit ratio, sentia LRU", round(sentia_lru.stats().hit_rate, 4))


#: In-process sections, in order.
SECTIONS: list[Callable[[Suite, argparse.Namespace], None]] = [
    l1_hit,
    l1_hit_async,
    set_,
    cached_hit,
    zipf,
    hit_ratio,
]

# -- Redis sections --------------------------------------------------------------

PRODUCT_JSON = json.dumps(PRODUCT, separators=(",", ":")).encode()


def _plain_redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=0.25, socket_connect_timeout=0.25)


def l2_hit(suite: Suite, args: argparse.Namespace, url: str) -> None:
    cache = TieredCache(redis=url, max_items=0, namespace="bench-l2")
    plain = _plain_redis(url)
    cache.set(HOT, PRODUCT_JSON)
    plain.set("bench-plain:" + HOT, PRODUCT_JSON)
    get, pget, loads = cache.get, plain.get, json.loads
    assert get(HOT) == PRODUCT_JSON
    m = suite.compare(
        "L2 hit (sync, L1 off): get(key) against one redis-py GET",
        {
            "sentia TieredCache.get (L2)": lambda: get(HOT),
            "redis-py GET": lambda: pget("bench-plain:" + HOT),
            "redis-py GET + json.loads": lambda: loads(pget("bench-plain:" + HOT)),
        },
        number=2000,
        rounds=11,
    )
    s = m["sentia TieredCache.get (L2)"]
    suite.ratio("sentia/GET", s, m["redis-py GET"], target=1.15)
    suite.ratio("sentia/GET+json.loads", s, m["redis-py GET + json.loads"])
    cache.clear()
    cache.close()
    plain.delete("bench-plain:" + HOT)
    plain.close()


def _once(setup: Callable[[], Any], fn: Callable[[], Any]) -> Callable[[], Any]:
    """A case that runs ``setup`` (a coroutine function) on its first call, in the
    benchmark's own event loop (async clients bind to the loop that first uses them)."""
    done = False

    async def case() -> Any:
        nonlocal done
        if not done:
            await setup()
            done = True
        return await fn()

    return case


def l2_hit_async(suite: Suite, args: argparse.Namespace, url: str) -> None:
    from urllib.parse import urlparse

    from aiocache import RedisCache
    from cashews import Cache

    from sentia_core.cache import AsyncTieredCache

    sentia = AsyncTieredCache(redis=url, max_items=0, namespace="bench-al2")
    cashews_cache = Cache()
    cashews_cache.setup(url)
    parts = urlparse(url)
    aio = RedisCache(endpoint=parts.hostname, port=parts.port, namespace="bench-aio")

    async def fill_sentia() -> None:
        await sentia.set(HOT, PRODUCT)

    async def fill_cashews() -> None:
        await cashews_cache.set("bench-cashews:" + HOT, PRODUCT, expire=300)

    async def fill_aio() -> None:
        await aio.set(HOT, PRODUCT, ttl=300)

    m = suite.compare_async(
        "L2 hit from a coroutine (L1 off): await get(key)",
        {
            "sentia AsyncTieredCache.get (L2)": _once(fill_sentia, lambda: sentia.get(HOT)),
            "cashews redis://": _once(
                fill_cashews, lambda: cashews_cache.get("bench-cashews:" + HOT)
            ),
            "aiocache RedisCache": _once(fill_aio, lambda: aio.get(HOT)),
        },
        number=1000,
        rounds=11,
    )
    s = m["sentia AsyncTieredCache.get (L2)"]
    suite.ratio("sentia/cashews", s, m["cashews redis://"], target=1.0)
    suite.ratio("sentia/aiocache", s, m["aiocache RedisCache"], target=1.0)
    cleanup = _plain_redis(url)
    for pattern in ("bench-al2:*", "bench-cashews:*", "bench-aio*"):
        for key in cleanup.scan_iter(match=pattern):
            cleanup.unlink(key)
    cleanup.close()


def get_many_100(suite: Suite, args: argparse.Namespace, url: str) -> None:
    keys = [f"product:{i}" for i in range(100)]
    plain_keys = ["bench-plain:" + k for k in keys]
    cache = TieredCache(redis=url, max_items=0, namespace="bench-gm")
    objects = TieredCache(redis=url, max_items=0, namespace="bench-gmo")
    plain = _plain_redis(url)
    cache.set_many(dict.fromkeys(keys, PRODUCT_JSON))
    objects.set_many(dict.fromkeys(keys, PRODUCT))
    plain.mset(dict.fromkeys(plain_keys, PRODUCT_JSON))
    gm, ogm, mget, loads = cache.get_many, objects.get_many, plain.mget, json.loads
    assert len(gm(keys)) == 100
    assert len(ogm(keys)) == 100
    m = suite.compare(
        "get_many(100 keys), L1 off, against one redis-py MGET",
        {
            "sentia get_many (bytes values)": lambda: gm(keys),
            "redis-py MGET": lambda: mget(plain_keys),
            "sentia get_many (dict values)": lambda: ogm(keys),
            "redis-py MGET + json.loads each": lambda: [loads(v) for v in mget(plain_keys)],
        },
        number=200,
        rounds=11,
    )
    suite.ratio(
        "sentia/MGET (bytes)", m["sentia get_many (bytes values)"], m["redis-py MGET"], target=1.2
    )
    suite.ratio(
        "sentia/MGET+json.loads (dicts)",
        m["sentia get_many (dict values)"],
        m["redis-py MGET + json.loads each"],
    )
    cache.clear()
    objects.clear()
    cache.close()
    objects.close()
    plain.delete(*plain_keys)
    plain.close()


def invalidate_tags_10k(suite: Suite, args: argparse.Namespace, url: str) -> None:
    n = 2_000 if suite.quick else 10_000
    rounds = 2 if suite.quick else (suite.rounds or 7)
    cache = TieredCache(redis=url, max_items=0, namespace="bench-tags")
    plain = _plain_redis(url)
    keys = [f"item:{i}" for i in range(n)]
    plain_keys = ["bench-plain:" + k for k in keys]
    sentia: list[float] = []
    baseline: list[float] = []
    longest: list[int] = []
    slowest = ""
    slowlog: Any = None
    try:
        slowlog = plain.config_get("slowlog-log-slower-than")["slowlog-log-slower-than"]
        plain.config_set("slowlog-log-slower-than", 0)
        plain.config_set("slowlog-max-len", 100_000)
    except Exception:
        slowlog = None  # a server that forbids CONFIG: no SLOWLOG figure
    for _ in range(rounds):
        cache.set_many(dict.fromkeys(keys, 1), tags=("catalog",))
        if slowlog is not None:
            plain.slowlog_reset()
        t0 = time.perf_counter_ns()
        count = cache.invalidate_tags("catalog")
        sentia.append(time.perf_counter_ns() - t0)
        if slowlog is not None:
            entries = [
                e
                for e in plain.slowlog_get(100_000)
                if not bytes(e["command"]).startswith(b"SLOWLOG")
            ]
            worst = max(entries, key=lambda e: int(e["duration"]), default=None)
            if worst is not None:
                longest.append(int(worst["duration"]))
                slowest = bytes(worst["command"][:40]).decode("ascii", "replace")
        assert count == n, count
        plain.mset(dict.fromkeys(plain_keys, 1))
        t0 = time.perf_counter_ns()
        pipe = plain.pipeline(transaction=False)
        for i in range(0, n, 500):
            pipe.unlink(*plain_keys[i : i + 500])
        pipe.execute()
        baseline.append(time.perf_counter_ns() - t0)
    if slowlog is not None:
        plain.config_set("slowlog-log-slower-than", slowlog)
        plain.slowlog_reset()
    title = f"invalidate_tags of one tag on {n:,} keys (ns per invalidation)"
    m = suite._record(
        title,
        {
            "sentia invalidate_tags": sentia,
            "redis-py UNLINK, keys known (500/cmd, 1 pipeline)": baseline,
        },
    )
    s = m["sentia invalidate_tags"]
    suite.ratio("sentia / 100 ms target", s, 100e6, target=1.0)
    suite.ratio(
        "sentia/UNLINK of known keys", s, m["redis-py UNLINK, keys known (500/cmd, 1 pipeline)"]
    )
    suite.note(f"invalidate_tags {n:,} keys: median ms", round(s / 1e6, 2))
    if longest:
        suite.note(
            f"invalidate_tags {n:,} keys: longest single Redis command (us), median of rounds",
            sorted(longest)[len(longest) // 2],
        )
        suite.note("  (the longest, last round)", repr(slowest.split("\n")[0]))
    cache.close()
    plain.close()


_CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[2])
from sentia_core.cache import TieredCache
cache = TieredCache(redis=sys.argv[1], namespace="bench-prop")
print("ready", flush=True)
for line in sys.stdin:
    key = "k" + line.strip()
    t0 = time.monotonic()
    cache.delete(key)
    print(t0, flush=True)
cache.close()
"""


def propagation(suite: Suite, args: argparse.Namespace, url: str) -> None:
    import subprocess
    import threading

    from sentia_core.cache import CacheInvalidation

    src = str(Path(__file__).resolve().parent.parent / "src")
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, url, src],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    observer = TieredCache(redis=url, namespace="bench-prop")
    applied: dict[str, float] = {}
    arrived = threading.Condition()

    def on_event(event: object) -> None:
        if isinstance(event, CacheInvalidation) and event.remote:
            with arrived:
                for key in event.targets:
                    applied[key] = time.monotonic()  # after the L1 dropped it
                arrived.notify_all()

    observer.add_listener(on_event)
    delays: list[float] = []
    try:
        assert child.stdout.readline().strip() == "ready"
        for i in range(8 if suite.quick else 60):
            key = f"k{i}"
            observer.set(key, i)
            child.stdin.write(f"{i}\n")
            child.stdin.flush()
            t0 = float(child.stdout.readline())
            with arrived:
                if not arrived.wait_for(lambda k=key: k in applied, timeout=10):
                    raise RuntimeError("an invalidation never arrived")
            delays.append((applied[key] - t0) * 1e9)
            assert observer._core.layer.data.get(key) is None
    finally:
        child.stdin.close()
        child.wait(10)
        observer.clear()
        observer.close()
    m = suite._record(
        "cross-process invalidation: another process's delete() to this L1 dropping the key",
        {"sentia pub/sub propagation": delays},
    )
    s = m["sentia pub/sub propagation"]
    suite.ratio("median / 50 ms target", s, 50e6, target=1.0)
    ordered = sorted(delays)
    suite.note("propagation delay median ms", round(s / 1e6, 3))
    suite.note(
        "propagation delay p90 / max ms",
        f"{ordered[int(0.9 * (len(ordered) - 1))] / 1e6:.3f} / {ordered[-1] / 1e6:.3f}",
    )


def zipf_threads(suite: Suite, args: argparse.Namespace, url: str) -> None:
    import threading

    per_thread = 1_000 if suite.quick else 5_000
    threads = 4
    trace = _zipf_trace(per_thread * threads, universe=10_000, s=1.0, seed=7)
    writer = TieredCache(redis=url, max_items=0, namespace="bench-zipf")
    for start in range(0, 10_000, 1000):
        writer.set_many({f"item:{i}": PRODUCT for i in range(start, start + 1000)})

    def run(cache: TieredCache) -> float:
        get = cache.get
        barrier = threading.Barrier(threads + 1)

        def work(part: list[str]) -> None:
            barrier.wait()
            for key in part:
                get(key)

        workers = [threading.Thread(target=work, args=(trace[i::threads],)) for i in range(threads)]
        for w in workers:
            w.start()
        barrier.wait()
        t0 = time.perf_counter_ns()
        for w in workers:
            w.join()
        return (time.perf_counter_ns() - t0) / len(trace)

    tiered = TieredCache(redis=url, max_items=1000, namespace="bench-zipf")
    l2_only = TieredCache(redis=url, max_items=0, namespace="bench-zipf")
    run(tiered)  # warm the L1
    samples: dict[str, list[float]] = {"L1 (1,000) + L2": [], "L2 only": []}
    for _ in range(2 if suite.quick else (suite.rounds or 5)):
        samples["L1 (1,000) + L2"].append(run(tiered))
        samples["L2 only"].append(run(l2_only))
    m = suite._record(
        f"Zipf(1.0) reads over 10,000 keys, {threads} threads (ns per read, wall)", samples
    )
    suite.ratio("L1+L2 / L2 only", m["L1 (1,000) + L2"], m["L2 only"])
    suite.note("zipf 4 threads: L1+L2 reads/s", round(1e9 / m["L1 (1,000) + L2"]))
    suite.note("zipf 4 threads: L2-only reads/s", round(1e9 / m["L2 only"]))
    st = tiered.stats()
    suite.note("zipf 4 threads: share of reads answered by L1", round(st.l1_hits / st.hits, 3))
    for cache in (tiered, l2_only):
        cache.close()
    writer.clear()
    writer.close()


#: Sections that need Redis: called as ``section(suite, args, url)``.
REDIS_SECTIONS: list[Callable[[Suite, argparse.Namespace, str], None]] = [
    l2_hit,
    l2_hit_async,
    get_many_100,
    invalidate_tags_10k,
    propagation,
    zipf_threads,
]


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
