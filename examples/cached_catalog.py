"""A product catalog behind TieredCache: @cached, get_or_set, tags, single-flight, fail-safe.

Run: ``python examples/cached_catalog.py``. Everything is in-process; a
ManualClock lets the demo fast-forward time (leave ``clock=`` out in real code).
"""

from __future__ import annotations

import random
import threading
import time
from decimal import Decimal
from typing import Any

from sentia_core.cache import CacheEviction, CacheInvalidation, TieredCache
from sentia_core.testing import ManualClock


class Database:
    """Stands in for the real database: counts queries, can go down."""

    def __init__(self) -> None:
        self.queries = 0
        self.down = False
        self.latency = 0.0  # seconds each query takes
        self.lock = threading.Lock()
        self.products = {
            pid: {
                "id": pid,
                "name": f"Widget {pid}",
                "category": ("tools", "garden", "kitchen")[pid % 3],
                "price": Decimal("9.99") + pid,
            }
            for pid in range(1, 201)
        }

    def query(self, what: str) -> None:
        with self.lock:
            self.queries += 1
        if self.down:
            raise ConnectionError(f"database unreachable ({what})")
        if self.latency:
            time.sleep(self.latency)


db = Database()
clock = ManualClock()
cache = TieredCache(
    namespace="catalog",
    max_items=150,  # room for most, not all, of the catalog: evictions will happen
    ttl=300,  # five minutes, the original spec's L1 TTL
    stale_ttl=600,  # fail-safe: serve a value up to ten minutes past its TTL if the DB fails
    clock=clock,
)
events: list[str] = []
cache.add_listener(
    lambda e: (
        events.append(type(e).__name__)
        if isinstance(e, (CacheEviction, CacheInvalidation))
        else None
    )
)


@cache.cached(tags=lambda pid: ("products", f"product:{pid}"))
def get_product(pid: int) -> dict[str, Any]:
    db.query(f"product {pid}")
    return dict(db.products[pid])


def list_category(name: str) -> list[int]:
    def load() -> list[int]:
        db.query(f"category {name}")
        return sorted(p["id"] for p in db.products.values() if p["category"] == name)

    return cache.get_or_set(f"category:{name}", load, ttl=60, tags=("products", f"cat:{name}"))


def section(title: str) -> None:
    print(f"\n== {title}")


def main() -> None:
    rng = random.Random(7)

    section("1. browsing traffic (Zipf-like: a few products are hot)")
    weights = [1 / rank for rank in range(1, 201)]
    for _ in range(3000):
        pid = rng.choices(range(1, 201), weights)[0]
        get_product(pid)
        if rng.random() < 0.1:
            list_category(("tools", "garden", "kitchen")[pid % 3])
    s = cache.stats()
    print(f"3000 product views -> {db.queries} database queries")
    print(f"hit rate {s.hit_rate:.1%}, {s.items} entries, {s.bytes} bytes held")
    print(f"evictions: {s.evictions.size} for max_items, {s.evictions.bytes} for max_bytes")

    section("2. a price change invalidates one product by tag")
    before = db.queries
    db.products[1]["price"] = Decimal("4.99")
    print("stale read before invalidation:", get_product(1)["price"])
    print("invalidated entries:", cache.invalidate_tags("product:1"))
    print("fresh read after invalidation: ", get_product(1)["price"])
    print("queries for that:", db.queries - before)

    section("3. a catalog import invalidates everything tagged 'products'")
    print("invalidated entries:", cache.invalidate_tags("products"))
    print("category 'garden' reloads:", len(list_category("garden")), "products")

    section("4. eight threads ask for the same cold product at once: one query")
    db.latency = 0.05  # a slow query, so that the other threads arrive while it runs
    before = db.queries
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        get_product(150)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    db.latency = 0.0
    print(
        f"8 concurrent requests -> {db.queries - before} query "
        f"({cache.stats().coalesced} callers waited for it)"
    )

    section("5. ten minutes later the database is down: fail-safe serves the last value")
    clock.advance(310)  # past the 300 s TTL, within stale_ttl
    db.down = True
    print("product 150 while the database is down:", get_product(150)["name"])
    try:
        get_product(199)  # never cached: nothing to fall back on
    except ConnectionError as exc:
        print("product 199 (never cached):", exc)
    db.down = False

    section("6. invalidate by key pattern (Redis glob syntax)")
    for pid in (10, 11, 12, 20):
        get_product(pid)
    pattern = get_product.key_for(1).replace("(1)", "(1?)")
    print(f"pattern {pattern!r} removed", cache.invalidate_pattern(pattern), "entries")

    section("final stats")
    s = cache.stats()
    for field in (
        "hits",
        "misses",
        "hit_rate",
        "sets",
        "items",
        "bytes",
        "invalidated",
        "loader_calls",
        "loader_errors",
        "coalesced",
        "stale_served",
    ):
        value = getattr(s, field)
        print(
            f"  {field:14s} {value:.3f}" if isinstance(value, float) else f"  {field:14s} {value}"
        )
    print(f"  evictions      {s.evictions}")
    print(f"  events seen    {len(events)} ({events.count('CacheInvalidation')} invalidations)")
    cache.close()


if __name__ == "__main__":
    main()
