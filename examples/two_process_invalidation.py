"""Two processes share a Redis L2; an invalidation in one reaches the other's L1.

Run: ``python examples/two_process_invalidation.py``. It uses the Redis at
``SENTIA_REDIS_URL``; without one it starts a throwaway ``redis-server`` on a
free loopback port (and says so and exits if there is no ``redis-server``).

The *web* process (this one) serves product prices from a TieredCache: its
own in-memory L1 in front of Redis, in front of the "database" (plain Redis
keys ``example-db:*`` here). The *admin* process (a second Python process)
changes prices in the database and invalidates the cache -- by key, by tag,
by pattern. Each time, the web process's L1 drops the stale entries within
about a millisecond, announced on the namespace's pub/sub channel.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from sentia_core.cache import CacheInvalidation, TieredCache

NAMESPACE = "example-catalog"


# -- the admin process ------------------------------------------------------------


def admin(url: str, conn: Connection) -> None:
    """The second process: edits the database, then invalidates the cache."""
    import redis

    db = redis.Redis.from_url(url)
    cache = TieredCache(redis=url, namespace=NAMESPACE)
    conn.send("ready")
    while True:
        command, args = conn.recv()
        if command == "stop":
            break
        started = time.monotonic()  # CLOCK_MONOTONIC: comparable across processes here
        if command == "reprice":
            product, price = args
            db.set(f"example-db:price:{product}", price)
            cache.delete(f"price:{product}")
        elif command == "sale":  # every garden product, by tag
            for product in ("201", "202", "203"):
                db.set(f"example-db:price:{product}", "1.00")
            cache.invalidate_tags("category:garden")
        elif command == "reset-5xx":  # by pattern
            for product in ("501", "502"):
                db.set(f"example-db:price:{product}", "0.00")
            cache.invalidate_pattern("price:5*")
        conn.send(started)
    cache.close()


# -- the web process -----------------------------------------------------------------


class Web:
    """This process: prices through the cache, and a record of remote invalidations."""

    def __init__(self, url: str) -> None:
        import redis

        self.db = redis.Redis.from_url(url)
        self.db_reads = 0
        self.cache = TieredCache(redis=url, namespace=NAMESPACE, ttl=300)
        self.arrived: list[tuple[float, CacheInvalidation]] = []
        self._changed = threading.Condition()
        self.cache.add_listener(self._on_event)

    def _on_event(self, event: object) -> None:
        if isinstance(event, CacheInvalidation) and event.remote:
            with self._changed:
                self.arrived.append((time.monotonic(), event))
                self._changed.notify_all()

    def price(self, product: str, category: str) -> str:
        def from_database() -> str:
            self.db_reads += 1
            value = self.db.get(f"example-db:price:{product}")
            return value.decode() if value is not None else "?"

        return self.cache.get_or_set(
            f"price:{product}", from_database, tags=(f"category:{category}",)
        )

    def wait_for_invalidation(self, count: int) -> tuple[float, CacheInvalidation]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.arrived) >= count, timeout=10):
                raise RuntimeError("the invalidation never arrived")
            return self.arrived[count - 1]


def run(url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    conn, child_conn = ctx.Pipe()
    child = ctx.Process(target=admin, args=(url, child_conn), daemon=True)
    child.start()
    assert conn.recv() == "ready"
    web = Web(url)
    catalog = {"42": "tools", "201": "garden", "202": "garden", "203": "garden"}
    catalog |= {"501": "kitchen", "502": "kitchen", "601": "kitchen"}
    for product in catalog:
        web.db.set(f"example-db:price:{product}", "9.99")

    def ask(command: str, *args: Any) -> float:
        conn.send((command, args))
        return float(conn.recv())

    print(f"web process {os.getpid()} and admin process {child.pid} share {url}\n")

    print("1. the web process warms its cache")
    for product, category in catalog.items():
        web.price(product, category)
    reads = web.db_reads
    assert all(web.price(p, c) == "9.99" for p, c in catalog.items())
    print(
        f"   {len(catalog)} prices, {reads} database reads; served again from L1 "
        f"(database reads still {web.db_reads})"
    )

    print("\n2. admin reprices product 42 and deletes its cache entry")
    started = ask("reprice", "42", "12.49")
    arrived, event = web.wait_for_invalidation(1)
    print(
        f"   the web L1 dropped {event.targets} {1000 * (arrived - started):.2f} ms "
        "after the admin's delete() began"
    )
    print(f"   web now serves price:42 = {web.price('42', 'tools')} (from the database)")

    print("\n3. admin puts the garden category on sale: invalidate_tags('category:garden')")
    started = ask("sale")
    arrived, event = web.wait_for_invalidation(2)
    print(
        f"   dropped {event.count} garden entries after {1000 * (arrived - started):.2f} ms; "
        f"prices now {[web.price(p, 'garden') for p in ('201', '202', '203')]}"
    )

    print("\n4. admin resets the 5xx products: invalidate_pattern('price:5*')")
    started = ask("reset-5xx")
    arrived, event = web.wait_for_invalidation(3)
    print(
        f"   dropped {event.count} entries matching {event.targets[0]!r} after "
        f"{1000 * (arrived - started):.2f} ms; price:501 = {web.price('501', 'kitchen')}, "
        f"price:601 untouched = {web.price('601', 'kitchen')}"
    )

    s = web.cache.stats()
    assert s.redis is not None
    print(
        f"\nweb cache: {s.l1_hits} L1 hits, {s.backend_hits} Redis hits, "
        f"{s.redis.messages_applied} invalidations applied from the other process, "
        f"degraded={s.degraded}, gaps={s.redis.gaps}"
    )
    conn.send(("stop", ()))
    child.join(10)
    web.cache.clear()
    web.cache.close()
    for product in catalog:
        web.db.delete(f"example-db:price:{product}")


# -- a Redis to run against ------------------------------------------------------------


@contextmanager
def local_redis() -> Any:
    """SENTIA_REDIS_URL, or a throwaway redis-server on a free loopback port."""
    url = os.environ.get("SENTIA_REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="sentia-example-redis-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    with local_redis() as url:
        if url is None:
            print("No Redis: set SENTIA_REDIS_URL or install redis-server to run this example.")
            return
        run(url)


if __name__ == "__main__":
    main()
