"""Merging is checked against a reference model of what each shape needs.

Each example analyzes a dozen new statements (sqlparse lexing dominates), so
the example count is kept modest.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings

from sentia_core.sql._advisor import IndexSuggestion, ShapeWorkload, suggest_indexes

from .advisor_strategies import workloads


def serves(s: IndexSuggestion, eq: frozenset[str], tail: tuple[str, ...]) -> bool:
    """The reference: an index serves a shape when its first |eq| columns are the
    equality set (in any order) and the next ones are the tail, in order."""
    n = len(eq)
    return set(s.columns[:n]) == eq and s.columns[n : n + len(tail)] == tail


@settings(max_examples=40)
@given(workloads)
def test_every_shape_is_served_by_a_suggestion_that_lists_it(wl) -> None:  # type: ignore[no-untyped-def]
    shapes = [ShapeWorkload(sql, calls, t) for (_, sql, _, _), calls, t in wl]
    out = suggest_indexes(shapes)
    for (table, sql, eq, tail), _, _ in wl:
        hosts = [s for s in out if sql in s.fingerprints]
        assert len(hosts) == 1, (sql, out)
        assert hosts[0].table == table
        assert serves(hosts[0], eq, tail), (sql, hosts[0].columns)


@settings(max_examples=40)
@given(workloads)
def test_suggestions_are_narrow_distinct_ranked_and_no_prefix_of_another(wl) -> None:  # type: ignore[no-untyped-def]
    out = suggest_indexes([ShapeWorkload(sql, c, t) for (_, sql, _, _), c, t in wl])
    times = [s.total_time for s in out]
    assert times == sorted(times, reverse=True)
    for s in out:
        assert 1 <= len(s.columns) <= 3
        assert len(set(s.columns)) == len(s.columns)
        served = sum(t for (_, sql, _, _), _, t in wl if sql in s.fingerprints)
        assert s.total_time == pytest.approx(served)
    for s in out:
        for other in out:
            if s is not other and s.table == other.table:
                assert other.columns[: len(s.columns)] != s.columns


@settings(max_examples=40)
@given(workloads)
def test_the_result_does_not_depend_on_workload_order(wl) -> None:  # type: ignore[no-untyped-def]
    shapes = [ShapeWorkload(sql, c, t) for (_, sql, _, _), c, t in wl]
    shuffled = list(shapes)
    random.Random(len(shapes)).shuffle(shuffled)
    assert suggest_indexes(shapes) == suggest_indexes(shuffled)


@settings(max_examples=40)
@given(workloads)
def test_existing_indexes_equal_to_a_suggestion_suppress_it(wl) -> None:  # type: ignore[no-untyped-def]
    from sentia_core.sql._catalog import ExistingIndex

    shapes = [ShapeWorkload(sql, c, t) for (_, sql, _, _), c, t in wl]
    first = suggest_indexes(shapes)
    existing = [ExistingIndex(s.name, s.table, s.columns) for s in first]
    assert suggest_indexes(shapes, existing=existing) == []
