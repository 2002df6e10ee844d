"""fingerprint(): one shape per statement family, no literal ever survives."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentia_core.sql import fingerprint, redact, shape_id
from sentia_core.sql._fingerprint import (
    _Bail,
    _fast_fingerprint,
    _tokenize_fingerprint,
    fingerprint_ex,
    split_statements,
    statement_kind,
)

from .strategies import Sql, mutated, soups, statements

# --------------------------------------------------------------------------- #
# The format, case by case
# --------------------------------------------------------------------------- #

FORMAT = [
    # comments removed, whitespace collapsed, keywords upper-cased
    ("select  a\n\tfrom t -- note\n where b = 1 /* x */", "SELECT a FROM t WHERE b = ?"),
    # identifiers as written, quoted ones kept quoted
    ('SELECT "Name", Total FROM "Users"', 'SELECT "Name", Total FROM "Users"'),
    # every string form
    (
        "SELECT 'a', E'it\\'s', X'DEAD', B'0101', N'na', U&'d\\0061', $$dollar$$, $q$tag$q$",
        "SELECT ?, ?, ?, ?, ?, ?, ?, ?",
    ),
    # numbers of every form, signs fold into the literal
    (
        "SELECT 1, -2, 3.5, .5, 1e10, 2.5E-3, 0x1F, 1_000 FROM t",
        "SELECT ?, ?, ?, ?, ?, ?, ?, ? FROM t",
    ),
    ("SELECT a - 1, a-1, (a) - -1 FROM t", "SELECT a - ?, a - ?, (a) - ? FROM t"),
    # booleans; NULL is a literal except after IS / IS NOT / NOT
    (
        "UPDATE t SET a = NULL, b = true WHERE c IS NULL AND d IS NOT NULL AND e = FALSE",
        "UPDATE t SET a = ?, b = ? WHERE c IS NULL AND d IS NOT NULL AND e = ?",
    ),
    # driver placeholders
    (
        "SELECT * FROM t WHERE a = ? AND b = %s AND c = %(name)s AND d = $1 AND e = :e AND f = ?3",
        "SELECT * FROM t WHERE a = ? AND b = ? AND c = ? AND d = ? AND e = ? AND f = ?",
    ),
    # IN lists of literals or placeholders collapse, casts kept
    ("SELECT * FROM t WHERE id IN (1, 2, 3)", "SELECT * FROM t WHERE id IN (?)"),
    (
        "SELECT * FROM t WHERE id IN (%(id_1_1)s::INTEGER, %(id_1_2)s::INTEGER)",
        "SELECT * FROM t WHERE id IN (?::INTEGER)",
    ),
    (
        "SELECT * FROM t WHERE (a, b) IN ((1, 2), (3, 4))",
        "SELECT * FROM t WHERE (a, b) IN ((?, ?))",
    ),
    # ...but an IN over a subquery or columns is structure
    (
        "SELECT * FROM t WHERE id IN (SELECT x FROM u WHERE y = 2)",
        "SELECT * FROM t WHERE id IN (SELECT x FROM u WHERE y = ?)",
    ),
    ("SELECT * FROM t WHERE id IN (a, b)", "SELECT * FROM t WHERE id IN (a, b)"),
    # multi-row VALUES keeps the first row (and its column count)
    (
        "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z') RETURNING id",
        "INSERT INTO t(a, b) VALUES (?, ?) RETURNING id",
    ),
    (
        "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v (x, y)",
        "SELECT * FROM (VALUES (?, ?)) AS v(x, y)",
    ),
    # arrays of literals fold; ANY hugs its parenthesis
    (
        "SELECT * FROM t WHERE id = ANY(ARRAY[1, 2, 3]) AND tag = ANY (%s)",
        "SELECT * FROM t WHERE id = ANY(?) AND tag = ANY(?)",
    ),
    ("SELECT * FROM t WHERE id = ANY('{1,2,3}')", "SELECT * FROM t WHERE id = ANY(?)"),
    # canonical spacing around punctuation and operators
    ("SELECT a,b FROM t WHERE x=1 AND y<>2", "SELECT a, b FROM t WHERE x = ? AND y <> ?"),
    ("SELECT count ( * ), lower( name ) FROM t", "SELECT count(*), lower(name) FROM t"),
    ("SELECT a :: text, t . b FROM t", "SELECT a::text, t.b FROM t"),
    # a column after "table." is never a keyword
    ("SELECT t.select FROM t", "SELECT t.select FROM t"),
    # trailing semicolons go
    ("SELECT 1;;", "SELECT ?"),
    ("", ""),
]


@pytest.mark.parametrize(("sql", "expected"), FORMAT)
def test_format(sql: str, expected: str) -> None:
    assert fingerprint(sql) == expected
    assert _tokenize_fingerprint(sql)[0] == expected


# --------------------------------------------------------------------------- #
# Groupings: a corpus of statement families
# --------------------------------------------------------------------------- #

SAME = [
    [
        "SELECT * FROM orders WHERE id = 1",
        "select * from orders where id = 42",
        "SELECT *\n  FROM orders\n  WHERE id=-7 -- by id",
        "SELECT * FROM orders WHERE id = $1",
        "SELECT * FROM orders WHERE id = %s",
        "/* controller=orders */ SELECT * FROM orders WHERE id = :id;",
    ],
    [
        "SELECT name FROM users WHERE email = 'a@example.com' AND active = true",
        "SELECT name FROM users WHERE email = E'b@example.com' AND active = FALSE",
        "SELECT name FROM users WHERE email = $$c@example.com$$ AND active = ?",
    ],
    [
        "SELECT * FROM t WHERE id IN (1)",
        "SELECT * FROM t WHERE id IN (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)",
        "SELECT * FROM t WHERE id IN (?, ?)",
        "SELECT * FROM t WHERE id IN (%s,%s,%s)",
    ],
    [
        "INSERT INTO t (a, b, c) VALUES (1, 'x', 2.5)",
        "INSERT INTO t (a, b, c) VALUES (1, 'x', 2.5), (2, 'y', 3.5), (3, 'z', 4.5)",
        "insert into t (a,b,c) values (?,?,?),(?,?,?)",
    ],
    [
        "SELECT * FROM t WHERE id = ANY(ARRAY[1, 2])",
        "SELECT * FROM t WHERE id = ANY($1)",
        "SELECT * FROM t WHERE id = ANY('{3,4,5}')",
    ],
    [
        "SELECT * FROM t WHERE a IS NULL",
        "select * from t where a is null",
    ],
]

DIFFERENT = [
    "SELECT * FROM orders WHERE id = 1",
    "SELECT * FROM orders WHERE customer_id = 1",
    "SELECT * FROM order_lines WHERE id = 1",
    "SELECT id FROM orders WHERE id = 1",
    "SELECT * FROM orders WHERE id = 1 AND status = 'x'",
    "SELECT * FROM orders WHERE id > 1",
    "SELECT * FROM orders WHERE id IS NULL",
    "SELECT * FROM orders WHERE id IS NOT NULL",
    "SELECT * FROM orders WHERE id IN (1, 2)",
    "SELECT * FROM orders WHERE id IN (SELECT 1)",
    "SELECT * FROM orders WHERE id = 1 ORDER BY id",
    "SELECT * FROM orders WHERE id = 1 LIMIT 1",
    'SELECT * FROM "Orders" WHERE id = 1',
    "DELETE FROM orders WHERE id = 1",
    "INSERT INTO t (a, b) VALUES (1, 2)",
    "INSERT INTO t (a, b, c) VALUES (1, 2, 3)",
]


@pytest.mark.parametrize("family", SAME, ids=[f[0][:40] for f in SAME])
def test_statements_differing_only_in_literals_and_layout_share_a_fingerprint(
    family: list[str],
) -> None:
    shapes = {fingerprint(sql) for sql in family}
    assert len(shapes) == 1, shapes


def test_statements_differing_in_structure_do_not() -> None:
    shapes = [fingerprint(sql) for sql in DIFFERENT]
    assert len(set(shapes)) == len(shapes), shapes


def test_sqlalchemy_generated_sql_groups_by_shape() -> None:
    sa = pytest.importorskip("sqlalchemy")
    from sqlalchemy.dialects import postgresql, sqlite

    meta = sa.MetaData()
    users = sa.Table(
        "users",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String),
        sa.Column("country", sa.String),
    )

    def by_id(i: int) -> sa.Select[tuple[int, str, str]]:
        return sa.select(users).where(users.c.id == i)

    def by_countries(cs: list[str]) -> sa.Select[tuple[int, str, str]]:
        return sa.select(users.c.name).where(users.c.country.in_(cs)).order_by(users.c.name)

    for dialect in (sqlite.dialect(), postgresql.dialect()):
        inline = lambda stmt, d=dialect: str(  # noqa: E731
            stmt.compile(dialect=d, compile_kwargs={"literal_binds": True})
        )
        bound = lambda stmt, d=dialect: str(  # noqa: E731
            stmt.compile(dialect=d, compile_kwargs={"render_postcompile": True})
        )
        # literals inlined, or bound (PostgreSQL adds ::INTEGER casts to binds)
        assert fingerprint(inline(by_id(1))) == fingerprint(inline(by_id(99)))
        assert fingerprint(bound(by_id(5))) == fingerprint(bound(by_id(6)))
        assert fingerprint(inline(by_countries(["DE"]))) == fingerprint(
            inline(by_countries(["DE", "FR", "IT"]))
        )
        assert fingerprint(bound(by_countries(["ES"]))) == fingerprint(
            bound(by_countries(["ES", "PT", "FR"]))
        )
        assert fingerprint(inline(by_id(1))) != fingerprint(inline(by_countries(["DE"])))
        assert re.search(r"IN \(\?(::VARCHAR)?\)", fingerprint(bound(by_countries(["ES", "PT"]))))
        ins = users.insert().values([{"id": i, "name": f"n{i}", "country": "DE"} for i in range(3)])
        one = users.insert().values([{"id": 9, "name": "x", "country": "FR"}])
        assert fingerprint(inline(ins)) == fingerprint(inline(one))


def test_sqlalchemy_orm_sql_with_psycopg_casts_groups() -> None:
    # What SQLAlchemy 2 sends through psycopg 3: pyformat with render casts.
    a = (
        "SELECT users.id, users.name FROM users WHERE users.id IN "
        "(%(id_1_1)s::INTEGER, %(id_1_2)s::INTEGER, %(id_1_3)s::INTEGER)"
    )
    b = "SELECT users.id, users.name FROM users WHERE users.id IN (%(id_1_1)s::INTEGER)"
    assert fingerprint(a) == fingerprint(b)


# --------------------------------------------------------------------------- #
# Malformed text
# --------------------------------------------------------------------------- #

MALFORMED = [
    ("SELECT * FROM t WHERE name = 'secret tail", "SELECT * FROM t WHERE name = ?"),
    ("SELECT * FROM t WHERE x = $$secret", "SELECT * FROM t WHERE x = ?"),
    ('SELECT "secret', "SELECT ?"),
    ("SELECT 1 /* unterminated secret", "SELECT ?"),
    ("SELECT * FROM t WHERE id IN (1, 2", "SELECT * FROM t WHERE id IN (?, ?"),
    ("SELECT a) FROM t", "SELECT a) FROM t"),
    ("INSERT INTO t VALUES (1), (2),", "INSERT INTO t VALUES (?)"),
]


@pytest.mark.parametrize(("sql", "expected"), MALFORMED)
def test_malformed_text_is_fingerprinted_and_flagged(sql: str, expected: str) -> None:
    assert fingerprint_ex(sql) == (expected, True)


def test_nested_comments_are_removed_whole() -> None:
    assert fingerprint_ex("SELECT /* a /* b */ secret */ 1") == ("SELECT ?", False)


# --------------------------------------------------------------------------- #
# Properties
# --------------------------------------------------------------------------- #


def _fast_or_none(sql: str) -> str | None:
    try:
        return _fast_fingerprint(sql)
    except _Bail:
        return None


@given(st.one_of(statements().map(lambda s: s.text), soups().map(lambda s: s.text), mutated()))
def test_fast_path_agrees_with_the_tokenizer(sql: str) -> None:
    fast = _fast_or_none(sql)
    if fast is not None:
        assert (fast, False) == _tokenize_fingerprint(sql)


def _leaks(marker: str, text: str) -> bool:
    if marker.isdigit():  # a number: not as part of a longer number
        return re.search(rf"(?<![\d.]){marker}(?!\d)", text) is not None
    return marker in text


@given(st.one_of(statements(), soups(quotes=False)))
def test_no_literal_survives_fingerprint_or_redact(sql: Sql) -> None:
    for out in (fingerprint(sql.text), redact(sql.text), _tokenize_fingerprint(sql.text)[0]):
        for marker in sql.markers:
            assert not _leaks(marker, out), (sql.text, out)


@given(statements(), st.data())
def test_no_literal_survives_a_truncated_statement(sql: Sql, data: st.DataObject) -> None:
    # A cut cannot turn a literal into code; it can only leave a string open,
    # which then swallows the rest of the text.
    cut = data.draw(st.integers(0, len(sql.text)))
    text = sql.text[:cut]
    for out in (fingerprint(text), redact(text)):
        for marker in sql.markers:
            if marker in text:
                assert not _leaks(marker, out), (text, out)


@given(mutated())
def test_mutated_statements_are_fingerprinted_without_raising(text: str) -> None:
    fp, malformed = fingerprint_ex(text)
    assert isinstance(fp, str) and isinstance(malformed, bool)
    assert isinstance(redact(text), str)


@given(st.text())
def test_any_text_is_fingerprinted_without_raising(text: str) -> None:
    fp, malformed = fingerprint_ex(text)
    assert isinstance(fp, str)
    assert isinstance(malformed, bool)
    assert "\x01" not in fp or "\x01" in text


@given(statements())
def test_fingerprinting_is_idempotent_on_well_formed_statements(sql: Sql) -> None:
    fp, malformed = fingerprint_ex(sql.text)
    if not malformed:
        assert fingerprint(fp) == fp


@given(statements())
def test_fingerprint_tokenizes_with_sqlparse(sql: Sql) -> None:
    import sqlparse

    fp = fingerprint(sql.text)
    assert "".join(str(t) for t in sqlparse.parse(fp)[0].flatten()) == fp


# --------------------------------------------------------------------------- #
# shape_id, redact, split_statements, statement_kind
# --------------------------------------------------------------------------- #


def test_shape_id_is_a_stable_short_digest() -> None:
    fp = "SELECT * FROM t WHERE id = ?"
    assert shape_id(fp) == shape_id(fp)
    assert re.fullmatch(r"[0-9a-f]{16}", shape_id(fp))
    assert shape_id(fp) != shape_id(fp + " LIMIT ?")


def test_shape_id_does_not_change_across_releases() -> None:
    # Stored ids must stay comparable: BLAKE2b-64 of the UTF-8 fingerprint.
    import hashlib

    fp = "SELECT ?"
    assert shape_id(fp) == hashlib.blake2b(b"SELECT ?", digest_size=8).hexdigest()


def test_redact_keeps_the_statement_as_written_minus_literals() -> None:
    assert (
        redact("select *\n from t -- who\n where a in (1, 'b') and c = true")
        == "select * from t where a in (?, ?) and c = ?"
    )


def test_split_statements_ignores_semicolons_in_literals_and_comments() -> None:
    script = "SELECT ';'; -- a; comment\nSELECT 2 /* ; */;\n\n;  SELECT $$;$$"
    assert split_statements(script) == [
        "SELECT ';'",
        "-- a; comment\nSELECT 2 /* ; */",
        "SELECT $$;$$",
    ]


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("SELECT ?", "SELECT"),
        ("WITH x AS (DELETE FROM t RETURNING id) SELECT * FROM x", "SELECT"),
        ("WITH x AS (SELECT ?) INSERT INTO t SELECT * FROM x", "INSERT"),
        ("(SELECT ?) UNION (SELECT ?)", "SELECT"),
        ("UPDATE t SET a = ?", "UPDATE"),
        ("", ""),
        ("?", ""),
    ],
)
def test_statement_kind(sql: str, kind: str) -> None:
    assert statement_kind(sql) == kind
