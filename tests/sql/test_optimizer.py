"""QueryOptimizer: capture, per-shape statistics, slow queries, export, configuration."""

from __future__ import annotations

import json
import logging
import random
import threading
from typing import Any

import pytest

from sentia_core._events import Event
from sentia_core.errors import ConfigError
from sentia_core.sql import (
    OptimizerStats,
    QueryOptimizer,
    ShapeStats,
    SlowQuery,
    SlowQueryDetected,
    StatementTypeError,
    fingerprint,
    shape_id,
)
from sentia_core.testing import ManualClock


def make(clock: ManualClock, **kw: Any) -> QueryOptimizer:
    kw.setdefault("rng", random.Random(1))
    return QueryOptimizer(clock=clock, **kw)


# --------------------------------------------------------------------------- #
# Statistics per shape
# --------------------------------------------------------------------------- #


def test_executions_of_one_shape_are_aggregated(clock: ManualClock) -> None:
    opt = make(clock)
    for i, d in enumerate([0.010, 0.020, 0.030, 0.040]):
        opt.record(f"SELECT * FROM orders WHERE id = {i}", d, rows=1)
        clock.advance(1)
    (s,) = opt.stats().shapes
    assert s.fingerprint == "SELECT * FROM orders WHERE id = ?"
    assert s.shape_id == shape_id(s.fingerprint)
    assert s.kind == "SELECT"
    assert s.calls == 4
    assert s.total_time == pytest.approx(0.1)
    assert s.mean_time == pytest.approx(0.025)
    assert s.max_time == pytest.approx(0.04)
    assert s.rows == 4
    assert s.first_seen == pytest.approx(clock.time() - 4)
    assert s.last_seen == pytest.approx(clock.time() - 1)
    assert s.p50 == pytest.approx(0.02, rel=0.011)
    assert s.p99 == pytest.approx(0.04, rel=0.011)
    assert s.sample == "SELECT * FROM orders WHERE id = ?"
    assert not s.malformed


def test_percentiles_follow_the_distribution(clock: ManualClock) -> None:
    opt = make(clock)
    for i in range(1, 1001):
        opt.record("SELECT 1", i / 1000)
    s = opt.shape("SELECT 1")
    assert s is not None
    assert s.calls == 1000
    assert s.p50 == pytest.approx(0.5, rel=0.011)
    assert s.p95 == pytest.approx(0.95, rel=0.011)
    assert s.p99 == pytest.approx(0.99, rel=0.011)
    assert s.max_time == 1.0


def test_different_shapes_are_kept_apart_and_ranked(clock: ManualClock) -> None:
    opt = make(clock)
    for _ in range(10):
        opt.record("SELECT * FROM a WHERE id = ?", 0.001)
    opt.record("SELECT * FROM b WHERE id = ?", 0.5)
    opt.record("UPDATE a SET x = ? WHERE id = ?", 0.002, rows=3)
    stats = opt.stats()
    assert isinstance(stats, OptimizerStats)
    assert stats.distinct_shapes == 3
    assert stats.calls == 12
    assert stats.total_time == pytest.approx(0.512)
    assert [s.fingerprint for s in stats.shapes][0] == "SELECT * FROM b WHERE id = ?"
    assert [s.fingerprint for s in opt.top(1, by="calls")] == ["SELECT * FROM a WHERE id = ?"]
    assert [s.kind for s in opt.top(3, by="rows")][0] == "UPDATE"
    assert len(opt.top(10)) == 3


def test_shape_lookup_by_id_or_by_any_statement(clock: ManualClock) -> None:
    opt = make(clock)
    opt.record("SELECT * FROM t WHERE a = 1", 0.01)
    by_sql = opt.shape("select * from t where a = 99")
    assert by_sql is not None
    assert opt.shape(by_sql.shape_id) == by_sql
    assert opt.shape("SELECT nothing") is None


def test_params_are_never_stored(clock: ManualClock) -> None:
    opt = make(clock)
    secret = "zqparamsecret"
    opt.record("SELECT * FROM users WHERE token = ?", 0.01, params=(secret,))
    opt.record("SELECT * FROM users WHERE token = %(t)s", 0.01, params={"t": secret})
    assert secret not in json.dumps(opt.export()) + repr(opt.stats()) + repr(opt)


def test_call_sites_are_sampled(clock: ManualClock) -> None:
    opt = make(clock, sample_rate=1.0)
    for _ in range(3):
        opt.record("SELECT 1", 0.001)  # call site under test
    (s,) = opt.stats().shapes
    (site,) = s.call_sites
    line = _line_of("# call site under" + " test")
    assert site.site.endswith(f"test_optimizer.py:{line}")
    assert site.count == 3


def _line_of(snippet: str) -> int:
    with open(__file__) as fh:
        for n, line in enumerate(fh, 1):
            if snippet in line:
                return n
    raise AssertionError(snippet)


def test_no_call_site_is_sampled_at_rate_zero(clock: ManualClock) -> None:
    opt = make(clock, sample_rate=0.0)
    opt.record("SELECT 1", 0.001)
    assert opt.stats().shapes[0].call_sites == ()


def test_sampling_follows_the_rate(clock: ManualClock) -> None:
    opt = make(clock, sample_rate=0.25, rng=random.Random(7))
    for _ in range(2000):
        opt.record("SELECT 1", 0.001)
    (site,) = opt.stats().shapes[0].call_sites
    assert 400 <= site.count <= 600


def test_call_sites_per_shape_are_bounded(clock: ManualClock) -> None:
    opt = make(clock, sample_rate=1.0, max_call_sites=2)
    code = compile(
        "\n".join(f"opt.record('SELECT 1', 0.001)  # line {i}" for i in range(5)), "app.py", "exec"
    )
    exec(code, {"opt": opt, "__name__": "app"})
    assert len(opt.stats().shapes[0].call_sites) == 2


# --------------------------------------------------------------------------- #
# Slow queries
# --------------------------------------------------------------------------- #


def test_slow_queries_are_kept_logged_and_emitted(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    opt = make(clock, slow_query_threshold=0.5)
    events: list[Event] = []
    opt.add_listener(events.append)
    with caplog.at_level(logging.INFO, logger="sentia_core.sql"):
        opt.record("SELECT * FROM big WHERE x = 'zqslowsecret'", 0.75, rows=10)
        opt.record("SELECT * FROM big WHERE x = 'other'", 0.1)
    (q,) = opt.slow_queries()
    assert isinstance(q, SlowQuery)
    assert (q.fingerprint, q.duration, q.threshold, q.rows) == (
        "SELECT * FROM big WHERE x = ?",
        0.75,
        0.5,
        10,
    )
    assert q.at == clock.time()
    assert "test_optimizer.py:" in q.call_site
    (event,) = events
    assert isinstance(event, SlowQueryDetected)
    assert event.query == q and event.source == "sql:default"
    assert "slow query" in caplog.text and "zqslowsecret" not in caplog.text
    assert opt.stats().slow_queries == 1
    assert opt.stats().shapes[0].slow_calls == 1


def test_slow_queries_are_bounded_newest_kept(clock: ManualClock) -> None:
    opt = make(clock, slow_query_threshold=0.1, max_slow_queries=3, log_events=False)
    for i in range(5):
        opt.record(f"SELECT {i} FROM t{i}", 0.2)
    assert [q.fingerprint for q in opt.slow_queries()] == [
        "SELECT ? FROM t2",
        "SELECT ? FROM t3",
        "SELECT ? FROM t4",
    ]
    assert opt.stats().slow_queries == 5


def test_a_failing_listener_does_not_break_recording(clock: ManualClock) -> None:
    opt = make(clock, slow_query_threshold=0.1, log_events=False)

    def boom(event: Event) -> None:
        raise RuntimeError("listener bug")

    opt.add_listener(boom)
    opt.record("SELECT 1", 0.2)
    assert opt.stats().calls == 1
    assert opt.listeners.errors == 1


# --------------------------------------------------------------------------- #
# Bounds: shapes, the statement cache
# --------------------------------------------------------------------------- #


def test_shapes_beyond_the_bound_evict_the_least_called(clock: ManualClock) -> None:
    opt = make(clock, max_shapes=10)
    for _ in range(5):
        opt.record("SELECT * FROM hot", 0.001)
    for i in range(20):
        opt.record(f"SELECT * FROM cold_{i}", 0.001)
    stats = opt.stats()
    assert stats.distinct_shapes <= 10
    assert stats.evicted_shapes >= 10
    assert opt.shape("SELECT * FROM hot") is not None
    assert stats.calls == 25  # evicted calls still count in the totals


def test_the_statement_cache_is_bounded(clock: ManualClock) -> None:
    opt = make(clock, max_cached_statements=100)
    for i in range(1000):
        opt.record(f"SELECT * FROM t WHERE id = {i}", 0.001)
    stats = opt.stats()
    assert stats.cached_statements <= 100
    assert stats.distinct_shapes == 1
    assert stats.calls == 1000


def test_very_long_statements_are_not_cached(clock: ManualClock) -> None:
    opt = make(clock, max_statement_length=50)
    long_sql = "SELECT " + ", ".join(f"c{i}" for i in range(50)) + " FROM t"
    opt.record(long_sql, 0.001)
    opt.record(long_sql, 0.001)
    assert opt.stats().cached_statements == 0
    assert opt.stats().shapes[0].calls == 2


def test_samples_are_truncated(clock: ManualClock) -> None:
    opt = make(clock)
    opt.record("SELECT " + ", ".join(f"column_{i}" for i in range(1000)) + " FROM t", 0.001)
    assert len(opt.stats().shapes[0].sample) < 2100


def test_reset_forgets_everything(clock: ManualClock) -> None:
    opt = make(clock, slow_query_threshold=0.1, log_events=False)
    opt.record("SELECT 1", 0.2)
    opt.reset()
    stats = opt.stats()
    assert (stats.calls, stats.distinct_shapes, stats.slow_queries, stats.cached_statements) == (
        0,
        0,
        0,
        0,
    )
    assert opt.slow_queries() == []
    opt.record("SELECT 1", 0.01)
    assert opt.stats().calls == 1


# --------------------------------------------------------------------------- #
# Never raising, whatever it is fed
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'unterminated",
        "",
        "   ",
        "\x00\x01\x02",
        b"SELECT 1",
        bytearray(b"SELECT \xff"),
        "SELECT (((((((((((((((((((((((((((((((",
        "/* unterminated comment",
    ],
)
def test_record_never_raises(clock: ManualClock, sql: Any) -> None:
    opt = make(clock)
    opt.record(sql, 0.001)
    assert opt.stats().calls == 1


@pytest.mark.parametrize("sql", [12345, None, ["SELECT", 1]])
def test_record_refuses_what_is_not_sql_text(clock: ManualClock, sql: Any) -> None:
    # Issue 12: str() of an arbitrary object is a repr, never fingerprinted as SQL
    # (tests/sql/test_record_objects.py covers the statement objects it reads).
    opt = make(clock)
    with pytest.raises(StatementTypeError):
        opt.record(sql, 0.001)
    assert opt.stats().calls == 0


@pytest.mark.parametrize("duration", [-1.0, float("nan"), float("inf"), "fast", None, 10**30])
def test_bad_durations_are_tolerated(clock: ManualClock, duration: Any) -> None:
    opt = make(clock, log_events=False)
    opt.record("SELECT 1", duration, rows="many")  # type: ignore[arg-type]
    (s,) = opt.stats().shapes
    assert s.calls == 1
    assert s.total_time >= 0.0 and s.rows == 0


def test_malformed_statements_are_flagged(clock: ManualClock) -> None:
    opt = make(clock)
    opt.record("SELECT * FROM t WHERE name = 'cut", 0.001)
    (s,) = opt.stats().shapes
    assert s.malformed
    assert opt.stats().malformed_statements == 1


def test_record_aggregate_imports_measured_totals(clock: ManualClock) -> None:
    opt = make(clock, slow_query_threshold=1.0)
    opt.record_aggregate("SELECT * FROM t WHERE id = $1", 100, 5.0, max_time=2.0, rows=100)
    opt.record_aggregate("SELECT * FROM t WHERE id = $1", 0, 0.0)
    s = opt.shape("SELECT * FROM t WHERE id = 1")
    assert s is not None
    assert (s.calls, s.total_time, s.max_time, s.rows, s.slow_calls) == (100, 5.0, 2.0, 100, 1)
    assert s.p50 == pytest.approx(0.05, rel=0.011)  # 99 values at the mean, the max once
    with pytest.raises(ConfigError):
        opt.record_aggregate("SELECT 1", -1, 1.0)


# --------------------------------------------------------------------------- #
# Threads
# --------------------------------------------------------------------------- #


def test_concurrent_recording_loses_nothing() -> None:
    opt = QueryOptimizer(sample_rate=0.5)
    barrier = threading.Barrier(8)

    def worker(k: int) -> None:
        barrier.wait()
        for i in range(2000):
            opt.record(f"SELECT * FROM t{k % 2} WHERE id = {i}", 0.001, rows=1)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = opt.stats()
    assert stats.calls == 16_000
    assert {s.calls for s in stats.shapes} == {8000}
    assert sum(s.rows for s in stats.shapes) == 16_000
    assert stats.total_time == pytest.approx(16.0)


# --------------------------------------------------------------------------- #
# Export
# --------------------------------------------------------------------------- #


def test_export_is_json_and_complete(clock: ManualClock) -> None:
    opt = make(clock, slow_query_threshold=0.1, log_events=False)
    opt.record("SELECT * FROM t WHERE id = 1", 0.2)
    data = json.loads(json.dumps(opt.export()))
    assert data["optimizer"] == "default"
    assert data["calls"] == 1
    assert data["shapes"][0]["fingerprint"] == "SELECT * FROM t WHERE id = ?"
    assert data["slow_queries"][0]["duration"] == 0.2
    assert data["nplusone"] == []


def test_stats_snapshots_are_frozen(clock: ManualClock) -> None:
    opt = make(clock)
    opt.record("SELECT 1", 0.01)
    s = opt.stats().shapes[0]
    assert isinstance(s, ShapeStats)
    with pytest.raises(AttributeError):
        s.calls = 5  # type: ignore[misc]


def test_fingerprint_is_what_the_optimizer_groups_by(clock: ManualClock) -> None:
    opt = make(clock)
    opt.record("select * from t where id in (1,2,3)", 0.01)
    assert opt.stats().shapes[0].fingerprint == fingerprint("SELECT * FROM t WHERE id IN (?)")


# --------------------------------------------------------------------------- #
# Configuration
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"name": ""}, "name"),
        ({"slow_query_threshold": -1}, "slow_query_threshold"),
        ({"slow_query_threshold": "1 fortnight"}, "slow_query_threshold"),
        ({"sample_rate": 1.5}, "sample_rate"),
        ({"sample_rate": -0.1}, "sample_rate"),
        ({"nplusone_threshold": 1}, "nplusone_threshold"),
        ({"nplusone_threshold": 2.5}, "nplusone_threshold"),
        ({"nplusone_allow": "app.py:*"}, "nplusone_allow"),
        ({"nplusone_allow": [""]}, "nplusone_allow"),
        ({"max_shapes": 0}, "max_shapes"),
        ({"max_cached_statements": -1}, "max_cached_statements"),
        ({"max_statement_length": 0}, "max_statement_length"),
        ({"max_slow_queries": -1}, "max_slow_queries"),
        ({"max_reports": -1}, "max_reports"),
        ({"max_call_sites": 0}, "max_call_sites"),
        ({"internal_modules": "myapp.db"}, "internal_modules"),
        ({"internal_modules": [3]}, "internal_modules"),
        ({"log_events": "yes"}, "log_events"),
        ({"clock": object()}, "clock"),
        ({"rng": 42}, "rng"),
    ],
)
def test_invalid_configuration_names_the_parameter(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ConfigError) as info:
        QueryOptimizer(**kwargs)
    assert info.value.parameter == parameter


def test_top_rejects_unknown_keys(clock: ManualClock) -> None:
    opt = make(clock)
    with pytest.raises(ConfigError) as info:
        opt.top(3, by="fun")
    assert info.value.parameter == "by"
    with pytest.raises(ConfigError):
        opt.top(0)


def test_defaults_match_the_documentation() -> None:
    opt = QueryOptimizer()
    assert opt.slow_query_threshold == 1.0
    assert opt.sample_rate == 0.1
    assert opt.nplusone_threshold == 5
    assert opt.max_shapes == 2000
    assert repr(opt) == "QueryOptimizer(name='default', shapes=0, slow_query_threshold=1.0)"
