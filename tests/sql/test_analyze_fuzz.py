"""Fuzzing analyze() and probe(): arbitrary and mutated SQL never crash the caller."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from sentia_core.errors import UnsafeStatementError
from sentia_core.sql._analysis import Analysis, ParameterSlot
from sentia_core.sql._analyze import analyze
from sentia_core.sql._probe import probe

from .advisor_strategies import any_sql, expressions, from_clauses, mutated_sql

_WRITE = re.compile(
    r"\b(INSERT|DELETE|MERGE|TRUNCATE|DROP|ALTER|CREATE|GRANT|VACUUM|ATTACH|PRAGMA|INTO)\b", re.I
)


@given(any_sql)
def test_analyze_never_raises(sql: str) -> None:
    a = analyze(sql)
    assert isinstance(a, Analysis)
    assert a.parsed or a.error
    indexes = [p.index for p in a.parameters]
    assert indexes == sorted(set(indexes))
    for block in a.blocks:
        for pred in block.equality + block.ranges:
            assert pred.column.column


@given(any_sql)
def test_probe_either_refuses_or_returns_a_single_read_only_statement(sql: str) -> None:
    try:
        p = probe(sql)
    except UnsafeStatementError:
        return
    text = " ".join(x for x in p.parts if isinstance(x, str))
    assert ";" not in text
    assert not _WRITE.search(text)
    assert "--" not in text and "/*" not in text
    assert text.split()[0].upper() in {"SELECT", "WITH", "VALUES", "(", "TABLE"}
    assert all(isinstance(x, (str, ParameterSlot)) for x in p.parts)


_SECRET = st.from_regex(r"[A-Za-z]{12}", fullmatch=True).map(lambda s: "zq" + s)


@given(mutated_sql(), _SECRET, st.sampled_from(["'{}'", "E'{}'", "$${}$$", "'{}%'", "'%{}'"]))
def test_no_literal_leaks_into_an_analysis(sql: str, secret: str, form: str) -> None:
    literal = form.format(secret)
    text = f"SELECT * FROM t WHERE lower(a) = {literal} OR b = {literal} AND ({sql})"
    a = analyze(text)
    assert secret not in repr(a)
    try:
        p = probe(text)
    except UnsafeStatementError:
        return
    assert all(secret not in x for x in p.parts if isinstance(x, str))


@settings(max_examples=50)
@given(expressions)
def test_the_parser_stays_in_step_after_any_well_formed_expression(expr: str) -> None:
    # Whatever comes before it, the trailing conjunct must still be found: a
    # parser that loses a parenthesis or a keyword would drop it.
    a = analyze(f"SELECT * FROM t WHERE ({expr}) AND zz_marker = ? ORDER BY zz_order")
    assert a.parsed and not a.partial, (expr, a.error)
    assert ("t", "zz_marker") in {(p.column.table, p.column.column) for p in a.equality}, expr
    assert [o.column.column for o in a.order_by] == ["zz_order"], expr


@settings(max_examples=50)
@given(from_clauses(), st.sampled_from(["", " GROUP BY zz.g", " UNION ALL SELECT 1"]))
def test_the_parser_stays_in_step_after_any_from_clause(frm: str, tail: str) -> None:
    a = analyze(f"WITH c AS (SELECT 1) SELECT * FROM {frm} WHERE zz.marker = ?{tail}")
    assert a.parsed and not a.partial, (frm, a.error)
    assert "zz" in a.tables
    assert ("zz", "marker") in {(p.column.table, p.column.column) for p in a.equality}, frm
