"""The forms real-world SQL uses that broke redaction or grouping (issue 13).

Each case runs through the general path (the definition) and ``fingerprint``
(fast path where it answers); the leak cases also through every output of the
optimizer and the command line's statement splitter.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentia_core.sql import fingerprint, redact
from sentia_core.sql._fingerprint import (
    _Bail,
    _fast_fingerprint,
    _tokenize_fingerprint,
    split_statements,
)

from .strategies import Sql
from .test_redaction import everything_the_optimizer_lets_out, leaks

# PostgreSQL 16-18 number forms: every one is one literal.
NUMBERS = [
    "0o7654321",
    "0O17",
    "0b100101",
    "0B1_0",
    "0x1F_FF",
    "1_000",
    "1_000.000_005",
    "1_000.5e0_1",
    "1e1_0",
    "1.5E-3_0",
    ".5_5",
    "5.",
    "1_2e+3",
]


@pytest.mark.parametrize("number", NUMBERS)
def test_every_postgresql_number_form_is_one_literal(number: str) -> None:
    sql = f"SELECT {number}, -{number} FROM t WHERE a = {number}"
    assert fingerprint(sql) == "SELECT ?, ? FROM t WHERE a = ?"
    assert _tokenize_fingerprint(sql) == ("SELECT ?, ? FROM t WHERE a = ?", False)
    assert redact(sql) == "SELECT ?, -? FROM t WHERE a = ?"


def test_a_number_with_trailing_junk_is_taken_whole() -> None:
    # PostgreSQL rejects "123abc"; no digit or letter of it may survive.
    assert fingerprint("SELECT 123secret, 0xZZ9") == "SELECT ?, ?"
    assert redact("SELECT 123secret") == "SELECT ?"


LEAKY = [
    # SQLite bracket identifiers, with a quote inside
    ("SELECT [it's] FROM t WHERE token = 'tok_zqsecret1'", "zqsecret1"),
    ("SELECT t.[it's], [a]] FROM t WHERE token = 'tok_zqsecret2'", "zqsecret2"),
    # an unterminated bracket identifier swallows the rest
    ("SELECT [it's FROM t WHERE token = 'zqsecret3'", "zqsecret3"),
    # MySQL backticks with a doubled backtick
    ("SELECT `it``s` FROM t WHERE token = 'zqsecret4'", "zqsecret4"),
    # new number forms
    ("SELECT 0o7654321 FROM t", "7654321"),
    ("SELECT 0b100101 FROM t", "100101"),
    ("SELECT 1_000.000_005 FROM t", "005"),
    ("SELECT 1e1_0 FROM t", "1_0"),
    # a dollar quote cut short after its tag
    ("SELECT * FROM t WHERE a = $tag$ zqsecret5", "zqsecret5"),
]


@pytest.mark.parametrize(("sql", "secret"), LEAKY)
def test_no_output_holds_the_literal(sql: str, secret: str) -> None:
    out = everything_the_optimizer_lets_out([Sql(sql, (secret,))])
    assert not leaks(secret, out), out
    assert not leaks(secret, _tokenize_fingerprint(sql)[0])


def test_bracket_identifiers_are_kept_as_double_quoted_names() -> None:
    sql = "SELECT [it's], [Order Total] FROM [my table] WHERE token = 'x'"
    expected = 'SELECT "it\'s", "Order Total" FROM "my table" WHERE token = ?'
    assert fingerprint(sql) == expected
    assert redact(sql) == "SELECT [it's], [Order Total] FROM [my table] WHERE token = ?"


def test_subscripts_and_arrays_are_not_bracket_identifiers() -> None:
    sql = "SELECT a[1], (f(x))[2:3], '{1}'::int[], ARRAY[[1, 2], [3, 4]] FROM t"
    assert fingerprint(sql) == "SELECT a[?], (f(x))[? : ?], ?::int[], ? FROM t"


def test_a_bracket_identifier_does_not_swallow_the_next_statement() -> None:
    script = "SELECT [it's] FROM t WHERE token = 'tok_SECRET';\nSELECT 2;\nSELECT [a] FROM u"
    assert split_statements(script) == [
        "SELECT [it's] FROM t WHERE token = 'tok_SECRET'",
        "SELECT 2",
        "SELECT [a] FROM u",
    ]


SAME = [
    # nested arrays of any depth fold, whatever their element counts
    ("SELECT ARRAY[[[1,2],[3,4]]]", "SELECT ARRAY[[[1],[3]]]"),
    ("SELECT ARRAY[[[[1]]]] FROM t", "SELECT ARRAY[[[[1, 2, 3]]]] FROM t"),
    # a parenthesized literal is the literal
    ("SELECT * FROM t WHERE a IN ((1), 2)", "SELECT * FROM t WHERE a IN (1, 2)"),
    ("SELECT * FROM t WHERE a = (5)", "SELECT * FROM t WHERE a = 5"),
    ("SELECT (1)::int", "SELECT 1::int"),
    # a string continued on the next line is one literal
    ("SELECT 'first'\n' - next'", "SELECT 'one'"),
    ("SELECT * FROM t WHERE a = 'x'\n'y' AND b = 1", "SELECT * FROM t WHERE a = 'z' AND b = 2"),
    # rows of one shape collapse, nested VALUES lists too
    (
        "INSERT INTO t VALUES (1, (VALUES (1), (2))), (2, (VALUES (3)))",
        "INSERT INTO t VALUES (1, (VALUES (5)))",
    ),
    ("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')", "INSERT INTO t VALUES (9, 'z')"),
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_literal_only_differences_group(a: str, b: str) -> None:
    assert fingerprint(a) == fingerprint(b)
    assert _tokenize_fingerprint(a)[0] == _tokenize_fingerprint(b)[0] == fingerprint(a)


DIFFERENT = [
    # a later row of another shape is structure: table u stays visible
    ("INSERT INTO t VALUES (1, 2), (3, (SELECT secret FROM u))", "INSERT INTO t VALUES (1, 2)"),
    ("INSERT INTO t VALUES (1, 2), (3, DEFAULT)", "INSERT INTO t VALUES (1, 2)"),
    # a row constructor inside an array is not a literal
    ("SELECT array[(1,'foo')::t, null::t]", "SELECT array[null::t]"),
    ("SELECT array[(1,'foo')::t, null::t]", "SELECT ?"),
    # a function call keeps its parentheses
    ("SELECT f(1)", "SELECT 1"),
]


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_structural_differences_do_not_group(a: str, b: str) -> None:
    assert fingerprint(a) != fingerprint(b)
    assert _tokenize_fingerprint(a)[0] != _tokenize_fingerprint(b)[0]


def test_a_row_of_another_shape_keeps_its_table() -> None:
    fp = fingerprint("INSERT INTO t VALUES (1, 2), (3, (SELECT secret FROM u)), (4, 5)")
    assert fp == "INSERT INTO t VALUES (?, ?), (?, (SELECT secret FROM u))"


OPERATORS = [
    ("SELECT * FROM t WHERE d ?| array['a']", "SELECT * FROM t WHERE d ?| ?"),
    ("SELECT * FROM t WHERE d ?& b AND e ?# f", "SELECT * FROM t WHERE d ?& b AND e ?# f"),
    ("SELECT a ?-| b, a ?|| b, d @? p", "SELECT a ?-| b, a ?|| b, d @? p"),
    ("SELECT * FROM t ORDER BY p <-> point(1, 2)", "SELECT * FROM t ORDER BY p <-> point(?, ?)"),
    ("SELECT a<->b, a<#>b, a<=>b", "SELECT a <-> b, a <#> b, a <=> b"),
    # a trailing sign goes back to the number (PostgreSQL's rule) ...
    ("SELECT * FROM t WHERE a=-1 AND b<-2", "SELECT * FROM t WHERE a = ? AND b < ?"),
    # ... unless the operator holds one of ~!@#%^&|`?
    ("SELECT 2^-1", "SELECT ? ^- ?"),
    # placeholders next to operators stay placeholders
    (
        "SELECT * FROM t WHERE a=? AND b=%s AND c=@c",
        "SELECT * FROM t WHERE a = ? AND b = ? AND c = ?",
    ),
    ('SELECT U&"d\\0061t", U&"x" FROM t', 'SELECT U&"d\\0061t", U&"x" FROM t'),
]


@pytest.mark.parametrize(("sql", "expected"), OPERATORS)
def test_operators_and_unicode_identifiers(sql: str, expected: str) -> None:
    assert fingerprint(sql) == expected
    assert _tokenize_fingerprint(sql)[0] == expected


def test_a_continued_string_is_redacted_as_one() -> None:
    assert redact("SELECT 'first'\n' - next' FROM t") == "SELECT ? FROM t"


# Pieces of the forms above, glued or spaced at random: the fast path must give
# the general path's answer wherever it answers (a differential test).
PIECES = [
    *("SELECT", "a", "t.b", "FROM", "t", "WHERE", "IN", "VALUES", "ARRAY", "NULL", "IS"),
    *("NOT", "AND", "DEFAULT", "f(", "(", ")", ",", ";", ".", "[", "]", "[c]", "::int"),
    *("=", "<->", "?|", "?&", "@?", "^-", "=-", ">=", "<=", "||", "*", "+", "-", "x=?"),
    *("?", "%s", "$1", "?::int", "'x'", "'y'\n", "E'z'", "e'q'", "'a''b'", "1", "-2"),
    *("0x1F", "1_000.5", "0o7", "(1)", "(?)", "( 5 )", "(a, b)", "(1, 2)", '"Q"', "`b`"),
    *('U&"d"', "-- c\n", "/* k */"),
]


@given(st.lists(st.tuples(st.sampled_from(PIECES), st.sampled_from(["", " "])), max_size=14))
def test_fast_path_agrees_on_glued_pieces(parts: list[tuple[str, str]]) -> None:
    sql = "".join(piece + sep for piece, sep in parts)
    try:
        fast = _fast_fingerprint(sql)
    except _Bail:
        return
    assert (fast, False) == _tokenize_fingerprint(sql)
