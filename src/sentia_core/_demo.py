"""``sentia demo``: a small simulated service on the embedded default, with a report.

Everything runs on this machine with no network: a partner API that fails for
a while (a breaker trips, rejects fast, probes and recovers), a product
catalog behind the cache (Zipf-distributed lookups), a SQLite-backed order
repository with a slow query and an N+1 (the optimizer reports both, suggests
an index, verifies it against SQLite's planner and applies it), and the
monitor's alerts firing and resolving. With ``--redis URL`` the same code runs
with Redis as the shared engine (cache L2, rate limits, shared breaker state).

Structure: :func:`run_demo` builds one :class:`Demo` (the app, the report
writer, the service code) and runs the sections in :data:`SECTIONS` in order;
each section is a function ``(demo) -> None`` that drives one component and
writes its part of the report. A new section (or a mode that keeps the app
running for a dashboard) is one more function, not a change to the others.
The service's own code lives in ``_demo_service.py``, loaded under a module
name of its own so that call sites point at it (see that module).
"""

from __future__ import annotations

import importlib.util
import logging
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TextIO

from ._secrets import mask_url
from ._version import __version__

if TYPE_CHECKING:
    from ._facade import Sentia

__all__ = ["SECTIONS", "Demo", "load_service", "run_demo", "shorten"]

SERVICE_MODULE = "sentia_demo_service"


def load_service() -> ModuleType:
    """The demo's application code, as a module outside the ``sentia_core`` package."""
    found = sys.modules.get(SERVICE_MODULE)
    if found is not None:
        return found
    path = Path(__file__).with_name("_demo_service.py")
    spec = importlib.util.spec_from_file_location(SERVICE_MODULE, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[SERVICE_MODULE] = module
    spec.loader.exec_module(module)
    return module


def shorten(text: str, width: int) -> str:
    """``text`` on one line, at most ``width`` characters, cut between words (``" ..."``)."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    cut = text.rfind(" ", 0, width - 3)
    return (text[: cut if cut > 0 else width - 4]).rstrip(" ,") + " ..."


@dataclass
class Demo:
    """What every section shares: the app, the service code, the report."""

    app: Sentia
    service: ModuleType
    duration: float
    out: TextIO
    notes: dict[str, Any] = field(default_factory=dict)

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def heading(self, number: int, text: str) -> None:
        self.say(f"\n[{number}] {text}")


def partner_section(demo: Demo) -> None:
    """A partner API that goes down and comes back, behind ``@app.protect``."""
    from .breaker import BreakerStateChanged
    from .errors import CircuitOpenError

    app, say = demo.app, demo.say
    transitions: list[str] = []

    def on_breaker_event(event: object) -> None:
        if isinstance(event, BreakerStateChanged):
            transitions.append(
                f"{event.from_state.value} -> {event.to_state.value} ({event.reason})"
            )

    app.breaker("partner").add_listener(on_breaker_event, outcomes=False)
    demo.heading(1, "a partner API behind @app.protect('partner'): breaker, retry, timeout")
    phase = max(0.6, demo.duration * 0.5)
    start = time.monotonic()
    partner = demo.service.Partner(start + phase * 0.25, start + phase * 0.6)
    fetch: Callable[[int], dict[str, Any]] = app.protect(
        "partner", fallback=lambda exc, oid: {"order": oid, "status": "?"}
    )(partner.fetch)
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
    m = app.breaker("partner").metrics()
    failed = partner.calls - served
    say(f"    {served + fallbacks} requests: {served} answered by the partner, "
        f"{fallbacks} by the fallback while it was down")  # fmt: skip
    say(f"    the partner was called {partner.calls} times ({failed} of them failed)")
    say(f"    the open breaker turned away {m.rejected} more attempts without calling it")
    say("    breaker transitions:")
    for line in transitions or ["none"]:
        say(f"      {line}")
    say(f"    breaker now {m.state.value}, opened {m.times_opened} time(s)")
    try:
        app.breaker("partner").call(lambda: None)
    except CircuitOpenError:  # pragma: no cover - only if the demo ran too short
        say("    (still open: run with a longer --duration to see it recover)")


def cache_section(demo: Demo) -> None:
    """A product catalog behind the cache, with tag invalidation."""
    app, say = demo.app, demo.say
    products = demo.service.PRODUCTS
    demo.heading(2, "a product catalog behind app.cache (Zipf-distributed lookups)")
    loads = 0

    @app.cache.cached(ttl=60, tags=("catalog",))
    def product(pid: int) -> dict[str, Any]:
        nonlocal loads
        loads += 1
        return {"id": pid, "name": f"Widget {pid}", "price": round(pid * 1.07, 2)}

    rng = random.Random(11)
    weights = [1 / (i + 1) for i in range(products)]
    lookups = rng.choices(range(products), weights, k=20_000)
    t0 = time.perf_counter()
    for pid in lookups:
        product(pid)
    elapsed = time.perf_counter() - t0
    st = app.cache.stats()
    say(f"    {len(lookups)} lookups in {elapsed * 1000:.0f} ms "
        f"({elapsed / len(lookups) * 1e6:.2f} us each); the loader ran {loads} times")  # fmt: skip
    say(f"    hit rate {st.hit_rate:.1%}, {st.items} items, {st.bytes} bytes in L1")
    app.cache.invalidate_tags("catalog")
    say(f"    invalidate_tags('catalog') -> {app.cache.stats().items} items left")


def sql_section(demo: Demo) -> None:
    """A SQLite order repository: top shapes, slow queries, the N+1, index advice."""
    from .integrations import wrap_connection

    app, say, service = demo.app, demo.say, demo.service
    demo.heading(3, "a SQLite order repository, recorded by app.queries")
    raw = service.build_db()
    db = wrap_connection(raw, app.queries)
    rng = random.Random(3)
    requests = 30

    def workload() -> float:
        t = time.perf_counter()
        for _ in range(requests):
            with app.queries.unit_of_work("GET /customers/{id}/orders"):
                service.orders_page(db, rng.randint(1, service.CUSTOMERS))
        return time.perf_counter() - t

    before = workload()
    say(f"    {requests} requests to GET /customers/{{id}}/orders; the busiest statements:")
    for s in app.queries.top(3):
        say(f"    {s.calls:5d} calls {s.total_time * 1000:7.1f} ms  {shorten(s.fingerprint, 66)}")
    slow = app.queries.slow_queries()
    say(f"    slow queries (> {app.config.sql.slow_query_threshold * 1000:g} ms): {len(slow)}")
    for r in app.queries.nplusone_reports()[:1]:
        say(f"    N+1: at {r.call_site}")
        say(f"      {shorten(r.fingerprint, 66)}")
        say(f"      ran once per order, up to {r.count} times in one request "
            f"(in {r.occurrences} of the {requests} requests)")  # fmt: skip
    suggestions = app.queries.suggest_indexes(connection=raw)
    verified = app.queries.verify(suggestions, raw)
    for v in verified:
        say(f"    suggest {v.suggestion.ddl}: {'verified' if v.accepted else 'rejected'}")
    applied = app.queries.apply(verified, raw, dry_run=False)
    after = workload()
    say(f"    applied {len(applied)} index(es); the same {requests} requests took "
        f"{before * 1000:.0f} ms before, {after * 1000:.0f} ms after "
        f"({before / max(after, 1e-9):.1f}x faster)")  # fmt: skip
    raw.close()


def monitor_section(demo: Demo) -> None:
    """What the monitor saw: alerts, health, exported metrics."""
    app, say = demo.app, demo.say
    app.monitor.tick()
    demo.heading(4, "the monitor")
    fired = demo.notes.get("fired", [])
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


#: The report's sections, in order.
SECTIONS: list[Callable[[Demo], None]] = [
    partner_section,
    cache_section,
    sql_section,
    monitor_section,
]


def demo_config(redis_url: str | None) -> dict[str, Any]:
    """The demo app's configuration (a fresh namespace, so runs never share Redis keys)."""
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
    return config


@contextmanager
def _quiet_logs() -> Iterator[None]:
    """The report says what the library would log (an N+1 warning...): keep it out of
    the middle of the report, unless the user configured logging themselves."""
    logger = logging.getLogger("sentia_core")
    if logging.getLogger().handlers or logger.handlers:
        yield
        return
    handler = logging.NullHandler()
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def run_demo(
    *,
    duration: float,
    redis_url: str | None,
    out: TextIO,
    dashboard: bool = False,
    port: int = 0,
) -> int:
    """Run the demo for about ``duration`` seconds; returns the exit code.

    With ``dashboard``, the simulated service then keeps running and the
    monitor's dashboard is served on 127.0.0.1:``port`` until interrupted.
    """
    from . import Sentia
    from .monitor import AlertRule

    mode = f"Redis at {mask_url(redis_url)}" if redis_url else "embedded (in-process, no Redis)"
    out.write(f"sentia_core {__version__} demo: {mode}, about {duration:g} s\n")
    # The demo ticks the monitor itself, at the moments the report needs.
    with _quiet_logs(), Sentia(demo_config(redis_url), start_monitor=False) as app:
        demo = Demo(app=app, service=load_service(), duration=duration, out=out)
        fired: list[Any] = []
        demo.notes["fired"] = fired
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
        for section in SECTIONS:
            section(demo)
    if dashboard:
        return _serve_live(redis_url, port, out)
    demo.say("\ndone.")
    return 0


def _serve_live(redis_url: str | None, port: int, out: TextIO) -> int:
    from . import Sentia
    from ._demo_live import live_config, serve_dashboard

    config = live_config(f"sentia-demo-{random.randrange(1 << 30):x}")
    if redis_url:
        config["redis_url"] = redis_url
    with Sentia(config) as app:
        return serve_dashboard(app, host="127.0.0.1", port=port, out=out)
