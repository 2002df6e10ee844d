"""Sliding windows keep exact running totals with bounded memory."""

from __future__ import annotations

from sentia_core.breaker._window import FAILURE, SLOW, CountWindow, TimeWindow


def test_count_window_keeps_the_last_n_outcomes() -> None:
    w = CountWindow(3)
    for outcome in (FAILURE, 0, SLOW):
        w.record(outcome, 0.0)
    assert w.totals(0.0) == (3, 1, 1)
    w.record(0, 0.0)  # evicts the failure
    assert w.totals(0.0) == (3, 0, 1)
    w.record(FAILURE | SLOW, 0.0)  # evicts the first success; the slow call stays
    assert w.totals(0.0) == (3, 1, 2)


def test_count_window_is_clean_only_when_full_of_plain_successes() -> None:
    w = CountWindow(2)
    w.record(0, 0.0)
    assert not w.clean  # not full: another success still changes the count
    w.record(0, 0.0)
    assert w.clean
    w.record(FAILURE, 0.0)
    assert not w.clean
    w.record(0, 0.0)
    w.record(0, 0.0)
    assert w.clean
    w.clear()
    assert not w.clean and w.totals(0.0) == (0, 0, 0)


def test_time_window_counts_calls_of_the_last_n_seconds() -> None:
    w = TimeWindow(10)
    w.record(FAILURE, 100.2)
    w.record(0, 100.9)
    w.record(SLOW, 105.0)
    assert w.totals(105.5) == (3, 1, 1)
    assert w.totals(109.99) == (3, 1, 1)
    assert w.totals(110.0) == (1, 0, 1)  # second 100 fell out
    assert w.totals(114.99) == (1, 0, 1)
    assert w.totals(115.0) == (0, 0, 0)


def test_time_window_skips_long_gaps_in_bounded_work() -> None:
    w = TimeWindow(5)
    w.record(FAILURE, 1.0)
    assert w.totals(1e9) == (0, 0, 0)
    w.record(0, 1e9 + 0.5)
    assert w.totals(1e9 + 1) == (1, 0, 0)


def test_time_window_memory_does_not_grow_with_calls() -> None:
    w = TimeWindow(4)
    for i in range(10_000):
        w.record(FAILURE if i % 2 else 0, 1000 + i / 100)
    assert len(w._b_calls) == 4
    calls, failures, _ = w.totals(1000 + 9999 / 100)
    assert calls == 400 and failures == 200  # seconds 1096..1099, 100 calls each


def test_time_window_ignores_outcomes_older_than_the_window() -> None:
    w = TimeWindow(3)
    w.record(0, 50.0)
    w.record(FAILURE, 40.0)
    assert w.totals(50.0) == (1, 0, 0)
