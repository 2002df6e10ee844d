"""What the facade feeds the dashboard: breaker transitions, cache layers and degraded
periods, rate-limit denials, registry instances and redacted SQL tables."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from typing import Any

import pytest

from sentia_core import Sentia
from sentia_core.testing import ManualClock


@pytest.fixture
def app(clock: ManualClock):  # type: ignore[no-untyped-def]
    with Sentia(
        {
            "monitor": {"system_metrics": False},
            "breakers": {"pay": {"consecutive_failures": 2, "reset_timeout": 60}},
            "rate_limits": {"api": "2/minute"},
        },
        clock=clock,
    ) as s:
        yield s


def _tick(app: Sentia, clock: ManualClock, n: int = 1) -> None:
    for _ in range(n):
        app.monitor.tick()
        clock.advance(10.0)


def _chart(doc: dict[str, Any], cid: str) -> dict[str, list[Any]]:
    for panel in doc["panels"]:
        for chart in panel["charts"]:
            if chart["id"] == cid:
                return {s["label"]: s["values"] for s in chart["series"]}
    raise KeyError(cid)


def _table(doc: dict[str, Any], tid: str) -> list[list[Any]]:
    for panel in doc["panels"]:
        for table in panel["tables"]:
            if table["id"] == tid:
                return list(table["rows"])
    raise KeyError(tid)


def _fail() -> None:
    raise ConnectionError("down")


def test_breaker_transitions_reach_the_timeline_with_their_reasons(
    app: Sentia, clock: ManualClock
) -> None:
    breaker = app.breaker("pay")
    _tick(app, clock)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            breaker.call(_fail)
    _tick(app, clock, 2)
    (tr,) = app.monitor.transitions("breaker")
    assert (tr.subject, tr.from_state, tr.to_state) == ("pay", "closed", "open")
    assert "consecutive failures" in tr.reason
    doc = app.monitor.dashboard()
    assert _chart(doc, "breakers.state")["pay"] == [0.0, 2.0, 2.0]
    assert _table(doc, "breakers.transitions")[0][1:4] == ["pay", "closed", "open"]
    now = _table(doc, "breakers.now")
    assert now[0][:2] == ["pay", "open"]


def test_rate_limit_denials_per_tier(app: Sentia, clock: ManualClock) -> None:
    _tick(app, clock)
    for _ in range(5):
        app.limiter.hit("api", key="k")
    _tick(app, clock)
    denied = _chart(app.monitor.dashboard(), "ratelimit.denied")["api"]
    assert denied[-1] == pytest.approx(3 / 10.0)  # 3 of 5 denied, over one 10 s bucket


def test_cache_layers_evictions_and_degraded_periods(app: Sentia, clock: ManualClock) -> None:
    cache = app.named_cache("tiny", max_items=2)
    _tick(app, clock)
    for i in range(5):
        cache.set(f"k{i}", i)
    cache.get("k4")
    cache.get("nope")
    _tick(app, clock)
    doc = app.monitor.dashboard()
    assert _chart(doc, "cache.evictions")["tiny size"][-1] == pytest.approx(0.3)
    assert _chart(doc, "cache.hit_rate")["tiny L1"][-1] == pytest.approx(50.0)
    assert "default L1" not in _chart(doc, "cache.hit_rate")  # no lookups: nothing to draw

    # A cache that reports degraded (its Redis L2 bypassed), then recovers.
    real = cache.stats
    cache.stats = lambda: dataclasses.replace(real(), degraded=True)  # type: ignore[method-assign]
    _tick(app, clock)
    cache.stats = real  # type: ignore[method-assign]
    _tick(app, clock)
    assert [(t.from_state, t.to_state) for t in app.monitor.transitions("cache")] == [
        ("ok", "degraded"),
        ("degraded", "ok"),
    ]
    doc = app.monitor.dashboard()
    assert _chart(doc, "cache.degraded")["tiny"][-2:] == [2.0, 0.0]
    (period,) = _table(doc, "cache.degraded_periods")
    assert period[0] == "tiny" and period[2] > period[1]


def test_registry_instances_health_and_outstanding(app: Sentia, clock: ManualClock) -> None:
    registry = app.registry
    registry.register("inventory", "10.0.0.1:80", instance_id="a")
    registry.register("inventory", "10.0.0.2:80", instance_id="b")
    assert registry.call("inventory", lambda inst: inst.id) in ("a", "b")
    _tick(app, clock, 2)
    doc = app.monitor.dashboard()
    instances = _chart(doc, "registry.instances")
    assert instances["inventory total"][-1] == 2.0
    assert instances["inventory healthy"][-1] == 2.0
    assert _chart(doc, "registry.outstanding")["inventory"][-1] == 0.0
    rows = _table(doc, "registry.instances")
    assert sorted(r[1] for r in rows) == ["a", "b"]
    assert {r[4] for r in rows} == {"healthy"}


def test_the_registry_is_not_built_by_the_dashboard(app: Sentia, clock: ManualClock) -> None:
    _tick(app, clock)
    app.monitor.dashboard()
    assert app._registry is None
    assert _table(app.monitor.dashboard(), "registry.instances") == []


def test_sql_tables_are_redacted_and_show_verified_indexes(app: Sentia, clock: ManualClock) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
    conn.executemany("INSERT INTO users (email) VALUES (?)", [(f"u{i}@x.org",) for i in range(500)])
    for i in range(20):
        app.queries.record(f"SELECT * FROM users WHERE email = 'bob{i}@example.com'", 1.5)
    with app.queries.unit_of_work("GET /users"):
        for i in range(12):
            app.queries.record(f"SELECT * FROM orders WHERE user_id = {i}", 0.001)
    verified = app.verify_indexes(conn)
    assert any(v.accepted for v in verified)
    _tick(app, clock, 2)
    doc = app.monitor.dashboard()
    text = json.dumps(doc)
    assert "bob" not in text and "example.com" not in text
    top = _table(doc, "sql.top")
    assert top[0][0] == "SELECT * FROM users WHERE email = ?"
    assert _table(doc, "sql.slow")[0][2] == "SELECT * FROM users WHERE email = ?"
    assert _table(doc, "sql.nplusone")[0][2] == "SELECT * FROM orders WHERE user_id = ?"
    indexes = _table(doc, "sql.indexes")
    assert indexes[0][0].startswith("CREATE INDEX") and indexes[0][1] == "accepted"
    assert _chart(doc, "sql.qps")["all queries"][-1] == 0.0  # nothing since the last tick
    conn.close()
