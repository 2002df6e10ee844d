"""Sentia: one configuration builds and wires every component (embedded and Redis)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from sentia_core import Sentia
from sentia_core.breaker import BreakerState
from sentia_core.errors import CircuitOpenError, ConfigError, RateLimitExceeded
from sentia_core.testing import ManualClock

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def app(clock: ManualClock):  # type: ignore[no-untyped-def]
    with Sentia(
        {
            "monitor": {"system_metrics": False},
            "breakers": {"db": {"consecutive_failures": 2, "reset_timeout": 10}},
            "services": {"partner": {"timeout": 5, "retries": 1, "rate_limit": "auth"}},
        },
        clock=clock,
    ) as s:
        yield s


def _event_count(app: Sentia, event_type: str) -> float:
    total = 0.0
    for line in app.monitor.prometheus_text().splitlines():
        if line.startswith("sentia_events_total") and f'type="{event_type}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_embedded_default_needs_nothing(app: Sentia) -> None:
    assert app.embedded
    assert app.cache.get_or_set("answer", lambda: 42) == 42
    assert app.cache.get("answer") == 42
    assert app.limiter.hit("api", key="10.0.0.1").allowed
    with app.queries.unit_of_work("job"):
        app.queries.record("SELECT 1", 0.001)
    assert app.queries.stats().calls == 1


def test_one_breaker_per_name_with_per_name_overrides(app: Sentia, clock: ManualClock) -> None:
    db = app.breaker("db")
    assert app.breaker("db") is db
    assert app.breakers() == {"db": db}
    assert db.config.consecutive_failures == 2
    assert app.breaker("other").config.consecutive_failures == 5  # the original spec's 5

    def down() -> None:
        raise ConnectionError("db down")

    for _ in range(2):
        with pytest.raises(ConnectionError):
            db.call(down)
    assert db.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError):
        db.call(lambda: None)
    clock.advance(10)
    assert db.state is BreakerState.HALF_OPEN


def test_breaker_events_reach_the_monitor(app: Sentia) -> None:
    db = app.breaker("db")
    for _ in range(2):
        with pytest.raises(ConnectionError):
            db.call(_raise_connection_error)
    assert _event_count(app, "BreakerStateChanged") == 1
    app.monitor.tick()
    assert 'breaker_open{breaker="db"} 1.0' in app.monitor.prometheus_text()
    assert app.health().to_dict()["components"]["breakers"]["status"] == "degraded"


def _raise_connection_error() -> None:
    raise ConnectionError("down")


def test_cache_hit_rate_alert_fires_on_simulated_misses(app: Sentia, clock: ManualClock) -> None:
    fired = []
    app.monitor.add_notifier(fired.append)
    app.monitor.tick()
    for i in range(40):  # 50 % hit rate: below the 60 % critical threshold
        app.cache.get(f"missing-{i}")
        app.cache.set(f"k{i}", i)
        app.cache.get(f"k{i}")
    for _ in range(8):
        clock.advance(10)
        app.monitor.tick()
    status = app.monitor.alert("cache_hit_rate")
    assert status.state == "firing"
    assert status.severity == "critical"
    assert any(a.rule == "cache_hit_rate" for a in fired)


def test_error_rate_alert_fires_from_recorded_requests(app: Sentia, clock: ManualClock) -> None:
    app.monitor.tick()
    for i in range(100):
        app.monitor.record_request(0.05, error=i % 5 == 0)  # 20 % errors
    for _ in range(8):
        clock.advance(10)
        app.monitor.tick()
    assert app.monitor.alert("error_rate").state == "firing"


def test_default_rules_can_be_removed_and_overridden(clock: ManualClock) -> None:
    cfg = {
        "monitor": {
            "system_metrics": False,
            "alerts": {"disabled": ["cpu", "memory"], "error_rate_warning": 0.01},
        }
    }
    with Sentia(cfg, clock=clock) as s:
        names = {r.name for r in s.monitor.rules()}
        assert names == {"response_time", "error_rate", "cache_hit_rate"}
        (rule,) = [r for r in s.monitor.rules() if r.name == "error_rate"]
        assert rule.warning == 0.01


def test_protect_uses_the_service_settings(app: Sentia) -> None:
    calls = []

    @app.protect("partner")
    def fetch(order_id: int) -> str:
        calls.append(order_id)
        if len(calls) == 1:
            raise ConnectionError("flaky")
        return f"order {order_id}"

    assert fetch(7) == "order 7"  # retried once (retries = 1)
    assert calls == [7, 7]
    assert app.breaker("partner").metrics().calls == 2
    policy = app.protect("partner")
    assert policy.rate_tier == "auth"


def test_protect_rate_limit_denies_past_the_tier(clock: ManualClock) -> None:
    with Sentia(
        {"monitor": {"system_metrics": False}, "rate_limits": {"tiny": "2/minute"}}, clock=clock
    ) as s:
        guarded = s.protect("partner", rate_limit="tiny", rate_key="tenant-1")(lambda: "ok")
        assert [guarded(), guarded()] == ["ok", "ok"]
        with pytest.raises(RateLimitExceeded):
            guarded()
        assert s.breaker("partner").state is BreakerState.CLOSED  # a denial is no failure


def test_protect_rejects_an_unknown_tier(app: Sentia) -> None:
    with pytest.raises(ConfigError) as info:
        app.protect("partner", rate_limit="nope")
    assert info.value.parameter == "rate_limit"


def test_protect_fallback(app: Sentia) -> None:
    guarded = app.protect("db", fallback=lambda exc, *a: "cached")(_raise_connection_error)
    assert guarded() == "cached"


def test_bad_configuration_fails_at_construction_naming_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        Sentia({"cache": {"max_items": -5}})
    assert info.value.parameter == "cache.max_items"
    with pytest.raises(ConfigError) as info:
        Sentia({"rate_limits": {"api": "lots/fortnight"}})
    assert "api" in str(info.value)


def test_shared_breaker_without_redis_is_a_config_error(clock: ManualClock) -> None:
    # at construction (issue 15 item 6), not at the first app.breaker("db")
    with pytest.raises(ConfigError) as info:
        Sentia({"breakers": {"db": {"shared": True}}, "monitor": {"system_metrics": False}},
               clock=clock)  # fmt: skip
    assert info.value.parameter == "breakers.db.shared"


def test_from_config_file_and_env(tmp_path: Path) -> None:
    with Sentia.from_config(ROOT / "examples" / "sentia.toml") as s:
        assert s.config.services["forecasting"].timeout == 60.0
        assert s.config.sql.max_indexes_per_table == 10
    with Sentia.from_env(
        {"SENTIA_CACHE__MAX_ITEMS": "50", "SENTIA_MONITOR__SYSTEM_METRICS": "0"}
    ) as s:
        assert s.config.cache.max_items == 50


def test_close_stops_background_threads_and_is_idempotent(clock: ManualClock) -> None:
    before = {t.name for t in threading.enumerate()}
    s = Sentia({"monitor": {"system_metrics": False, "sample_interval": 60}}, start_monitor=True)
    assert s.monitor.running
    s.registry.register("orders", "127.0.0.1:9")
    s.close()
    s.close()
    assert not s.monitor.running
    # Idle pool workers exit just after close() (it does not wait on a hung
    # health check); give them a bounded moment, then nothing may be left.
    for t in threading.enumerate():
        if t.name not in before:
            t.join(10)
    after = {t.name for t in threading.enumerate() if t.is_alive()}
    assert after <= before | {"MainThread"}


async def test_async_context_manager(clock: ManualClock) -> None:
    async with Sentia({"monitor": {"system_metrics": False}}, clock=clock) as s:
        assert s.cache.get_or_set("a", lambda: 1) == 1


# ---------------------------------------------------------------------------- Redis mode


@pytest.mark.redis
def test_redis_mode_shares_rate_limits_and_breakers(redis_url: str) -> None:
    cfg = {
        "redis_url": redis_url,
        "monitor": {"system_metrics": False},
        "rate_limits": {"partner": "3/minute"},
        "breakers": {"db": {"shared": True, "consecutive_failures": 2}},
    }
    with Sentia(cfg) as a, Sentia(cfg) as b:
        assert not a.embedded
        allowed = [s.limiter.hit("partner", key="acme").allowed for s in (a, b, a, b)]
        assert allowed == [True, True, True, False]  # one limit across both "processes"
        for _ in range(2):
            with pytest.raises(ConnectionError):
                a.breaker("db").call(_raise_connection_error)
        assert a.breaker("db").state is BreakerState.OPEN
        with pytest.raises(CircuitOpenError):
            b.breaker("db").call(lambda: None)
        report = a.health()
        assert report.to_dict()["components"]["redis"]["status"] == "healthy"


@pytest.mark.redis
def test_redis_unreachable_degrades_health_and_readiness_stays_ok() -> None:
    # Issue 15 item 9: every facade component fails open on Redis, so an outage
    # is "degraded" (200), never "unhealthy" (503, which would pull the pod).
    import json
    import urllib.request

    from tests._servers import RedisServer

    server = RedisServer()
    cfg = {"redis_url": server.url, "monitor": {"system_metrics": False}}

    def get(url: str) -> tuple[int, dict[str, object]]:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())

    try:
        with Sentia(cfg) as s, s.serve(port=0) as http:
            assert s.health().status.value == "healthy"
            server.kill()
            report = s.health()
            assert report.status.value == "degraded"
            assert report.components["redis"].status.value == "unhealthy"
            assert report.components["redis"].critical is False
            assert s.cache.get_or_set("k", lambda: "loaded") == "loaded"  # fails open
            assert s.limiter.hit("api", key="x").allowed  # fail-open by default
            status, ready = get(http.url + "/health/ready")
            assert status == 200 and ready["status"] == "degraded" and ready["ready"] is True
            status, full = get(http.url + "/health")
            assert status == 200 and full["status"] == "degraded"
            assert get(http.url + "/health/live") == (200, {"status": "alive"})
    finally:
        server.stop()


def test_rate_limit_denials_reach_the_monitor(clock: ManualClock) -> None:
    with Sentia(
        {"monitor": {"system_metrics": False}, "rate_limits": {"tiny": "1/minute"}}, clock=clock
    ) as s:
        assert s.limiter.hit("tiny", key="k").allowed
        assert not s.limiter.hit("tiny", key="k").allowed
        assert _event_count(s, "RateLimitDenied") == 1
