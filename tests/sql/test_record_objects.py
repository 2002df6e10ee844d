"""record() given statement objects instead of text (issue 12, item 9).

Their ``str()`` is often a repr (psycopg's ``Composed([..., Literal('secret')])``)
that would be fingerprinted as if it were SQL; each kind is read explicitly or
refused with a StatementTypeError.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from psycopg import sql as pgsql

from sentia_core.errors import SentiaError, SqlError
from sentia_core.sql import QueryOptimizer, StatementTypeError


def _everything(opt: QueryOptimizer) -> str:
    return json.dumps(opt.export()) + repr(opt.stats())


def test_a_psycopg_composed_is_rendered_not_its_repr() -> None:
    opt = QueryOptimizer(log_events=False)
    query = pgsql.SQL("SELECT * FROM {} WHERE pw = {}").format(
        pgsql.Identifier("users"), pgsql.Literal("o'SECRETpw")
    )
    opt.record(query, 0.001)
    opt.record(query, 0.001)
    (shape,) = opt.stats().shapes
    assert shape.fingerprint == 'SELECT * FROM "users" WHERE pw = ?'
    assert shape.calls == 2
    assert "SECRET" not in _everything(opt)
    assert "Composed" not in _everything(opt)


def test_a_psycopg_sql_groups_with_the_same_text() -> None:
    opt = QueryOptimizer(log_events=False)
    opt.record(pgsql.SQL("SELECT id FROM t WHERE a = %s"), 0.001)
    opt.record("SELECT id FROM t WHERE a = %s", 0.001)
    (shape,) = opt.stats().shapes
    assert shape.calls == 2


def test_sqlalchemy_text_clause_and_compiled_statements_are_read() -> None:
    opt = QueryOptimizer(log_events=False)
    t = sa.table("orders", sa.column("id"), sa.column("status"))
    stmt = sa.select(t.c.id).where(t.c.status == "SECRETstatus")
    opt.record(sa.text("SELECT id FROM orders WHERE status = :s"), 0.001)
    opt.record(stmt.compile(), 0.001)  # a Compiled: its .string
    opt.record(stmt, 0.001)  # a clause element: the default compiler, binds as placeholders
    fps = {s.fingerprint for s in opt.stats().shapes}
    assert "SELECT id FROM orders WHERE status = ?" in fps
    assert "SELECT orders.id FROM orders WHERE orders.status = ?" in fps
    assert len(fps) == 2
    assert "SECRET" not in _everything(opt)


@pytest.mark.parametrize("thing", [42, object(), ["SELECT 1"], {"sql": "SELECT 1"}, None])
def test_anything_else_is_refused_with_a_clear_error(thing: object) -> None:
    opt = QueryOptimizer(log_events=False)
    with pytest.raises(StatementTypeError, match="needs the SQL text") as info:
        opt.record(thing, 0.001)  # type: ignore[arg-type]
    assert isinstance(info.value, SqlError) and isinstance(info.value, SentiaError)
    assert isinstance(info.value, TypeError)
    with pytest.raises(StatementTypeError):
        opt.record_aggregate(thing, 3, 0.1)  # type: ignore[arg-type]
    assert opt.stats().distinct_shapes == 0


def test_a_psycopg_object_that_cannot_render_is_refused() -> None:
    class Broken(pgsql.Composable):
        def as_bytes(self, context: object = None) -> bytes:
            raise TypeError("needs a connection")

    opt = QueryOptimizer(log_events=False)
    with pytest.raises(StatementTypeError, match="as_string"):
        opt.record(Broken("x"), 0.001)  # type: ignore[arg-type]


def test_bytes_are_still_decoded() -> None:
    opt = QueryOptimizer(log_events=False)
    opt.record(b"SELECT 1 FROM t WHERE a = 'x'", 0.001)  # type: ignore[arg-type]
    (shape,) = opt.stats().shapes
    assert shape.fingerprint == "SELECT ? FROM t WHERE a = ?"


def test_a_sqlalchemy_clause_that_does_not_compile_is_refused() -> None:
    from sqlalchemy.sql.expression import ColumnElement

    class NoCompiler(ColumnElement[int]):  # no compilation rule anywhere
        inherit_cache = True

    opt = QueryOptimizer(log_events=False)
    with pytest.raises(StatementTypeError, match="compile"):
        opt.record(NoCompiler(), 0.001)  # type: ignore[arg-type]
    assert opt.stats().distinct_shapes == 0
