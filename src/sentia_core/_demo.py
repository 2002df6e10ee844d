"""``sentia demo``: a small simulated service on the embedded default, with a report.

Everything runs on this machine with no network: a partner API that fails for
a while (a breaker trips, rejects fast, probes and recovers), a product
catalog behind the cache (Zipf-distributed lookups), a SQLite-backed order
repository with a slow query and an N+1 (the optimizer reports both, suggests
an index, verifies it against SQLite's planner and applies it), and the
monitor's alerts firing and resolving. With ``--redis URL`` the same code runs
with Redis as the shared engine (cache L2, rate limits, shared breaker state).
"""

from __future__ import annotations

import random
import sqlite3
import time
from typing import Any, TextIO

from ._secrets import mask_url
from ._version import __version__

__all__ = ["run_demo"]

CUSTOMERS, ORDERS, PRODUCTS = 2_000, 20_000, 500


class _Partner:
    """A simulated partner API: healthy, then down for a while, then healthy again."""

    def __init__(self, outage_start: float, outage_end: float) -> None:
        self.outage = (outage_start, outage_end)
        self.calls = 0

    def fetch(self, order_id: int) -> dict[str, Any]:
        self.calls += 1
        now = time.monotonic()
        if self.outage[0] <= now < self.outage[1]:
            raise ConnectionError("partner unavailable")
        return {"order": order_id, "status": "shipped"}


def _build_db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    conn.executescript(
        """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, region TEXT);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, status TEXT,
                             created_at TEXT, total REAL);
        CREATE TABLE order_lines (id INTEGER PRIMARY KEY, order_id INTEGER,
                                  product_id INTEGER, qty INTEGER);
        """
    )
    rng = random.Random(7)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO customers VALUES (?, ?, ?)",
        [(i, f"c{i}@example.com", rng.choice("NSEW")) for i in range(1, CUSTOMERS + 1)],
    )
    conn.executemany(
        "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
        [
            (i, rng.randint(1, CUSTOMERS), rng.choice(["open", "shipped", "done", "done"]),
             f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", rng.uniform(5, 500))
            for i in range(1, ORDERS + 1)
        ],
    )  # fmt: skip
    conn.executemany(
        "INSERT INTO order_lines (order_id, product_id, qty) VALUES (?, ?, ?)",
        [(rng.randint(1, ORDERS), rng.randint(1, PRODUCTS), rng.randint(1, 5))
         for _ in range(ORDERS * 2)],
    )  # fmt: skip
    conn.execute("COMMIT")
    return conn


def _orders_page(db: Any, customer_id: int) -> list[tuple[Any, ...]]:
    """A request handler with an N+1: one query for the orders, one per order for its lines."""
    orders = db.execute(
        "SELECT id, status, total FROM orders WHERE customer_id = ? ORDER BY created_at DESC",
        (customer_id,),
    ).fetchall()
    return [
        (o, db.execute("SELECT product_id, qty FROM order_lines WHERE order_id = ?",
                       (o[0],)).fetchall())
        for o in orders
    ]  # fmt: skip


def run_demo(*, duration: float, redis_url: str | None, out: TextIO) -> int:
    """Run the demo for about ``duration`` seconds; returns the exit code."""
    from . import Sentia
    from .breaker import BreakerStateChanged
    from .errors import CircuitOpenError
    from .integrations import wrap_connection
    from .monitor import AlertRule

    def say(text: str = "") -> None:
        out.write(text + "\n")
        out.flush()

    mode = f"Redis at {mask_url(redis_url)}" if redis_url else "embedded (in-process, no Redis)"
    say(f"sentia_core {__version__} demo: {mode}, about {duration:g} s")
    config: dict[str, Any] = {
        "namespace": f"sentia-demo-{random.randrange(1 << 30):x}",
        "monitor": {"system_metrics": True},
        "breakers": {"partner": {"consecutive_failures": 3, "reset_timeout": 0.25,
                                 "shared": redis_url is not None}},
        "services": {"partner": {"timeout": 1.0, "retries": 1}},
        "sql": {"slow_query_threshold": 0.002, "nplusone_threshold": 5},
    }  # fmt: skip
    if redis_url:
        config["redis_url"] = redis_url
    with Sentia(config) as app:
        fired: list[Any] = []
        app.monitor.add_notifier(fired.append)
        app.monitor.add_rule(
            AlertRule(
                "partner_error_rate",
                "rate(app_request_errors_total[1m]) / rate(app_requests_total[1m])",
                warning=0.05,
                critical=0.10,
                resolve_below=0.02,
                description="Share of partner calls that failed.",
            )
        )
        transitions: list[str] = []

        def on_breaker_event(event: object) -> None:
            if isinstance(event, BreakerStateChanged):
                transitions.append(
                    f"{event.from_state.value} -> {event.to_state.value} ({event.reason})"
                )

        app.breaker("partner").add_listener(on_breaker_event)

        # 1. A partner API that goes down and comes back --------------------------------
        say("\n[1] partner API behind @app.protect('partner'): breaker, retry, timeout")
        phase = max(0.6, duration * 0.5)
        start = time.monotonic()
        partner = _Partner(start + phase * 0.25, start + phase * 0.6)
        fetch = app.protect("partner", fallback=lambda exc, oid: {"order": oid, "status": "?"})(
            partner.fetch
        )
        served = fallbacks = 0
        next_tick = start
        while time.monotonic() - start < phase:
            t0 = time.perf_counter()
            result = fetch(served + fallbacks)
            ok = result["status"] != "?"
            app.monitor.record_request(time.perf_counter() - t0, error=not ok)
            served, fallbacks = served + ok, fallbacks + (not ok)
            if time.monotonic() >= next_tick:
                app.monitor.tick()
                next_tick = time.monotonic() + phase / 10
            time.sleep(0.002)
        app.monitor.tick()
        metrics = app.breaker("partner").metrics()
        say(f"    calls answered: {served}, served by the fallback: {fallbacks}, "
            f"reached the partner: {partner.calls}")  # fmt: skip
        say(f"    breaker transitions: {'; '.join(transitions) or 'none'}")
        say(f"    breaker now {metrics.state.value}, opened {metrics.times_opened} time(s), "
            f"rejected {metrics.rejected} call(s) without touching the partner")  # fmt: skip
        try:
            app.breaker("partner").call(lambda: None)
        except CircuitOpenError:  # pragma: no cover - only if the demo ran too short
            say("    (still open: run with a longer --duration to see it recover)")

        # 2. A product catalog behind the cache -----------------------------------------
        say("\n[2] product catalog behind app.cache (Zipf-distributed lookups)")
        loads = 0

        @app.cache.cached(ttl=60, tags=("catalog",))
        def product(pid: int) -> dict[str, Any]:
            nonlocal loads
            loads += 1
            return {"id": pid, "name": f"Widget {pid}", "price": round(pid * 1.07, 2)}

        rng = random.Random(11)
        weights = [1 / (i + 1) for i in range(PRODUCTS)]
        lookups = rng.choices(range(PRODUCTS), weights, k=20_000)
        t0 = time.perf_counter()
        for pid in lookups:
            product(pid)
        elapsed = time.perf_counter() - t0
        st = app.cache.stats()
        say(f"    {len(lookups)} lookups in {elapsed * 1000:.0f} ms "
            f"({elapsed / len(lookups) * 1e6:.2f} us each), loader ran {loads} times")  # fmt: skip
        say(f"    hit rate {st.hit_rate:.1%}, {st.items} items, {st.bytes} bytes in L1")
        app.cache.invalidate_tags("catalog")
        say(f"    invalidate_tags('catalog') -> {app.cache.stats().items} items left")

        # 3. A SQLite repository: slow query, N+1, index advice -------------------------
        say("\n[3] SQLite order repository, recorded by app.queries")
        raw = _build_db()
        db = wrap_connection(raw, app.queries)
        rng = random.Random(3)

        def workload() -> float:
            t = time.perf_counter()
            for _ in range(30):
                with app.queries.unit_of_work("GET /customers/{id}/orders"):
                    _orders_page(db, rng.randint(1, CUSTOMERS))
            return time.perf_counter() - t

        before = workload()
        top = app.queries.top(3)
        for s in top:
            say(f"    {s.calls:4d} calls  {s.total_time * 1000:7.1f} ms  {s.fingerprint[:72]}")
        slow = app.queries.slow_queries()
        say(f"    slow queries (> {app.config.sql.slow_query_threshold * 1000:g} ms): {len(slow)}")
        for r in app.queries.nplusone_reports()[:1]:
            say(f"    N+1: {r.count} x '{r.fingerprint[:60]}' at {r.call_site}")
        suggestions = app.queries.suggest_indexes(connection=raw)
        verified = app.queries.verify(suggestions, raw)
        for v in verified:
            say(f"    suggest {v.suggestion.ddl}: {'verified' if v.accepted else 'rejected'}")
        applied = app.queries.apply(verified, raw, dry_run=False)
        after = workload()
        say(f"    applied {len(applied)} index(es); the same 30 requests took "
            f"{before * 1000:.0f} ms before, {after * 1000:.0f} ms after "
            f"({before / max(after, 1e-9):.1f}x faster)")  # fmt: skip
        raw.close()

        # 4. Monitoring -----------------------------------------------------------------
        app.monitor.tick()
        say("\n[4] monitor")
        for a in fired:
            say(f"    alert {a.rule}: {a.kind} {a.severity or ''} (value {a.value:.3g})"
                if a.value is not None else f"    alert {a.rule}: {a.kind}")  # fmt: skip
        if not fired:
            say("    no alert fired")
        health = app.health()
        say(f"    health: {health.status.value} "
            + ", ".join(f"{n}={c.status.value}" for n, c in health.components.items()))  # fmt: skip
        families = len(app.monitor.families())
        say(f"    {families} metric families exported (prometheus_text(), /metrics)")
    say("\ndone.")
    return 0
