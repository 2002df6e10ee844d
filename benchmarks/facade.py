"""What wiring costs: each component through the ``Sentia`` facade against the same component alone.

Run: ``python benchmarks/facade.py`` (``--quick`` for a smoke run, ``--json PATH``).

The facade wires every component to the monitor (events for state changes,
counters the monitor's collector reads for per-call outcomes). These sections
measure what a user of the facade pays for that wiring, side by side with the
same component built standalone with the same settings. Target for each:
**at most 1.5x** the standalone component (issue 15).

Sections:

1. a decorated call through ``app.breaker(name)`` against a standalone
   ``CircuitBreaker``.
2. ``@app.protect(name)`` with no timeout (breaker only) against a standalone
   ``Policy(breaker=CircuitBreaker(...))``.
3. an ``app.cache`` L1 hit against a standalone ``TieredCache`` hit.
4. ``app.limiter.hit`` (allowed) against a standalone ``RateLimiter.hit``.
5. sync timeouts: ``@app.protect(name, timeout=1.0)`` in ``"deadline"`` mode
   (inline, contextvar deadline; the default for sync functions) and
   ``"thread"`` mode (a worker thread per call), against the same Policy
   standalone and against the bare function.

The monitor's sampling thread runs in the facade cases (as it does by default
in an application) at its configured interval.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from _harness import Suite, parse_args

from sentia_core import CircuitBreaker, Policy, RateLimiter, Sentia, TieredCache, Timeout

TARGET = 1.5


def work(x: int = 1) -> int:
    return x


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__ or "", argv)
    suite = Suite.from_args("facade wiring", args)
    config = {"rate_limits": {"api": "1000000/second"}}
    app = Sentia(config)
    try:
        run(suite, app)
    finally:
        app.close()
    suite.finish(args)


def run(suite: Suite, app: Sentia) -> None:
    # 1. breaker
    facade_breaker = app.breaker("bench")(work)
    alone_breaker = CircuitBreaker("bench")(work)
    m = suite.compare(
        "decorated breaker call (closed, success)",
        {"bare": work, "app.breaker": facade_breaker, "CircuitBreaker": alone_breaker},
    )
    suite.ratio("app.breaker / standalone", m["app.breaker"], m["CircuitBreaker"], target=TARGET)

    # 2. protect without timeout
    facade_protect = app.protect("bench-protect")(work)
    alone_protect = Policy(breaker=CircuitBreaker("bench-protect"), name="bench-protect")(work)
    m = suite.compare(
        "@app.protect (breaker only, no timeout)",
        {"bare": work, "app.protect": facade_protect, "Policy": alone_protect},
    )
    suite.ratio("app.protect / standalone", m["app.protect"], m["Policy"], target=TARGET)

    # 3. cache hit
    c = app.config.cache
    alone_cache = TieredCache(
        max_items=c.max_items, max_bytes=c.max_bytes, ttl=c.ttl, namespace="bench"
    )
    app.cache.set("k", "value")
    alone_cache.set("k", "value")
    app_get, alone_get = app.cache.get, alone_cache.get
    m = suite.compare(
        "cache L1 hit",
        {"app.cache.get": lambda: app_get("k"), "TieredCache.get": lambda: alone_get("k")},
    )
    suite.ratio("app.cache / standalone", m["app.cache.get"], m["TieredCache.get"], target=TARGET)
    alone_cache.close()

    # 4. limiter hit
    alone_limiter = RateLimiter({"api": "1000000/second"})
    app_hit, alone_hit = app.limiter.hit, alone_limiter.hit
    m = suite.compare(
        "rate limiter hit (allowed)",
        {
            "app.limiter.hit": lambda: app_hit("api", "k"),
            "RateLimiter.hit": lambda: alone_hit("api", "k"),
        },
    )
    suite.ratio(
        "app.limiter / standalone", m["app.limiter.hit"], m["RateLimiter.hit"], target=TARGET
    )
    alone_limiter.close()

    # 5. sync timeouts, both modes
    cases = {"bare": work}
    policies: list[Policy] = []
    for mode, sync_mode in (("deadline", "cooperative"), ("thread", "thread")):
        cases[f"app.protect {mode}"] = app.protect(f"bench-{mode}", timeout=1.0, timeout_mode=mode)(
            work
        )
        alone = Policy(
            breaker=CircuitBreaker(f"bench-{mode}"),
            timeout=Timeout(1.0, sync_mode=sync_mode),
            name=f"bench-{mode}",
        )
        policies.append(alone)
        cases[f"Policy {mode}"] = alone(work)
    m = suite.compare("@app.protect with timeout=1.0, both modes", cases, number=5_000)
    for mode in ("deadline", "thread"):
        suite.ratio(
            f"app.protect {mode} / standalone",
            m[f"app.protect {mode}"],
            m[f"Policy {mode}"],
            target=TARGET,
        )
    suite.ratio("thread mode / deadline mode (facade)", m["app.protect thread"],
                m["app.protect deadline"])  # fmt: skip
    for p in policies:
        if p.timeout is not None:
            p.timeout.close()


if __name__ == "__main__":
    main()
