"""The rule expression language: parsing, errors, and what each function reads."""

from __future__ import annotations

import operator
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentia_core.errors import ConfigError
from sentia_core.monitor import ExpressionError, PerformanceMonitor, parse_expression
from sentia_core.monitor._expr import BinOp, Call, EvalState, Neg, Num, Selector, evaluate
from sentia_core.monitor._monitor import _Source
from sentia_core.testing import ManualClock


def test_parses_selectors_calls_and_arithmetic() -> None:
    assert parse_expression("system_cpu_percent") == Selector("system_cpu_percent")
    assert parse_expression('errors_total{route="/a", code!="200"}') == Selector(
        "errors_total", (("route", "=", "/a"), ("code", "!=", "200"))
    )
    assert parse_expression("p95(http_seconds[5m])") == Call("p95", Selector("http_seconds"), 300.0)
    assert parse_expression("quantile(0.999, http_seconds[90s])") == Call(
        "quantile", Selector("http_seconds"), 90.0, 0.999
    )
    assert parse_expression("mean(h)") == Call("mean", Selector("h"))
    assert parse_expression("rate(a_total[1m]) / rate(b_total[1m]) * 100") == BinOp(
        "*",
        BinOp(
            "/", Call("rate", Selector("a_total"), 60.0), Call("rate", Selector("b_total"), 60.0)
        ),
        Num(100.0),
    )
    assert parse_expression("-(1 - x)") == Neg(BinOp("-", Num(1.0), Selector("x")))
    assert parse_expression('x{l="a \\"quoted\\" \\\\ value"}') == Selector(
        "x", (("l", "=", 'a "quoted" \\ value'),)
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "non-empty"),
        ("rate(x)", "needs a window"),
        ("p95(x[0s])", "positive"),
        ("median(x)", "unknown function"),
        ("x +", "expected a number"),
        ("(x", "expected ')'"),
        ("x{a=b}", "expected 'str'"),
        ('x{a~"b"}', "unexpected character"),
        ("5m", "only allowed in [brackets]"),
        ("quantile(2, x[1m])", "not between 0 and 1"),
        ("x y", "unexpected 'y'"),
        ("p95(3)", "needs a metric name"),
    ],
)
def test_bad_expressions_raise_config_error_naming_metric(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        parse_expression(text)
    assert info.value.parameter == "metric"


_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


def _combine(
    op: str, left: tuple[str, float | None], right: tuple[str, float | None]
) -> tuple[str, float | None]:
    (lt, lv), (rt, rv) = left, right
    undefined = lv is None or rv is None or (op == "/" and rv == 0)
    return f"({lt} {op} {rt})", None if undefined else _OPS[op](lv, rv)


arithmetic = st.recursive(
    st.integers(min_value=0, max_value=50).map(lambda n: (str(n), float(n))),
    lambda inner: st.builds(_combine, st.sampled_from(sorted(_OPS)), inner, inner),
    max_leaves=12,
)


_EMPTY = _Source(PerformanceMonitor(system_metrics=False)._registry)


@given(arithmetic)
def test_arithmetic_evaluates_like_python(case: tuple[str, float | None]) -> None:
    text, expected = case
    got = evaluate(parse_expression(text), _EMPTY, 0.0, EvalState())
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_precedence_and_unary_minus() -> None:
    m = PerformanceMonitor(system_metrics=False)
    src = _Source(m._registry)
    assert evaluate(parse_expression("1 + 2 * 3 - 4 / 2"), src, 0, EvalState()) == 5.0
    assert evaluate(parse_expression("-2 * -3"), src, 0, EvalState()) == 6.0
    assert evaluate(parse_expression("2e2 + .5"), src, 0, EvalState()) == 200.5


@pytest.fixture
def source(monitor: PerformanceMonitor) -> _Source:
    return _Source(monitor._registry)


def value(text: str, source: _Source, now: float = 0.0, state: EvalState | None = None) -> object:
    return evaluate(parse_expression(text), source, now, state or EvalState())


def test_selectors_sum_matching_series(monitor: PerformanceMonitor, source: _Source) -> None:
    monitor.gauge("inventory_units", warehouse="a").set(5)
    monitor.gauge("inventory_units", warehouse="b").set(7)
    assert value("inventory_units", source) == 12.0
    assert value('inventory_units{warehouse="b"}', source) == 7.0
    assert value('inventory_units{warehouse!="b"}', source) == 5.0
    assert value('inventory_units{warehouse="zz"}', source) is None
    assert value("unknown_metric", source) is None


def test_histogram_functions_over_windows(
    monitor: PerformanceMonitor, source: _Source, clock: ManualClock
) -> None:
    h = monitor.histogram("http_seconds", route="/")
    for v in (1.0, 2.0, 3.0):
        h.observe(v)
    clock.advance(120)
    monitor.histogram("http_seconds", route="/b").observe(0.5)
    assert value("count(http_seconds)", source) == 4.0
    assert value("count(http_seconds[1m])", source) == 1.0
    assert value("max(http_seconds)", source) == 3.0
    assert value("max(http_seconds[1m])", source) == 0.5
    assert value("min(http_seconds[5m])", source) == 0.5
    assert value("sum(http_seconds)", source) == 6.5
    assert value("mean(http_seconds)", source) == 1.625
    assert value('p50(http_seconds{route="/"})', source) == pytest.approx(2.0, rel=0.01)
    assert value("quantile(1, http_seconds)", source) == 3.0
    assert value("http_seconds", source) == 4.0  # a bare histogram reads its count
    clock.advance(600)
    assert value("p99(http_seconds[5m])", source) is None
    assert value("count(http_seconds[5m])", source) == 0.0


def test_quantiles_of_counters_are_an_error(monitor: PerformanceMonitor, source: _Source) -> None:
    monitor.counter("jobs_total").inc()
    with pytest.raises(ExpressionError, match="need a histogram"):
        value("p95(jobs_total)", source)


def test_rate_and_increase_use_samples_taken_at_each_evaluation(
    monitor: PerformanceMonitor, source: _Source
) -> None:
    c = monitor.counter("requests_total")
    state = EvalState()
    expr = parse_expression("rate(requests_total[60s])")
    inc = parse_expression("increase(requests_total[60s])")
    assert evaluate(expr, source, 0.0, state) is None  # one sample: no rate yet
    c.inc(30)
    assert evaluate(expr, source, 10.0, state) == 3.0
    assert evaluate(inc, source, 10.0, state) is None  # its own samples
    c.inc(60)
    assert evaluate(expr, source, 40.0, state) == 90 / 40
    # past the window: the baseline is the newest sample at or before now - 60
    c.inc(20)
    assert evaluate(expr, source, 70.0, state) == pytest.approx((110 - 30) / 60)
    assert evaluate(expr, source, 70.0, state) == pytest.approx((110 - 30) / 60)  # same instant


def test_rate_samples_stay_bounded(monitor: PerformanceMonitor, source: _Source) -> None:
    c = monitor.counter("requests_total")
    state = EvalState()
    expr = parse_expression("rate(requests_total[60s])")
    for i in range(10_000):
        c.inc()
        evaluate(expr, source, i * 0.01, state)
    samples = next(iter(state.samples.values()))
    assert len(samples) <= 256 + 8  # about window / (window / 256), plus the baseline
    assert evaluate(expr, source, 100.0, state) == pytest.approx(1 / 0.01, rel=0.05)


def test_ratios_with_no_traffic_have_no_data(monitor: PerformanceMonitor, source: _Source) -> None:
    monitor.counter("errors_total")
    monitor.counter("requests_total")
    state = EvalState()
    text = "rate(errors_total[1m]) / rate(requests_total[1m])"
    assert value(text, source, 0.0, state) is None
    assert value(text, source, 10.0, state) is None  # 0 / 0
