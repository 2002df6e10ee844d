"""read_existing_indexes / read_schema / read_column_stats on real SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from sentia_core.errors import ConfigError
from sentia_core.sql._catalog import ExistingIndex
from sentia_core.sql._dialect import read_column_stats, read_existing_indexes, read_schema


def by_name(indexes: list[ExistingIndex]) -> dict[tuple[str, str], ExistingIndex]:
    return {(ix.table, ix.name): ix for ix in indexes}


# -- SQLite ------------------------------------------------------------------- #


@pytest.fixture
def lite() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.executescript(
        """
        CREATE TABLE a (id INTEGER PRIMARY KEY, x INT, y TEXT, z TEXT UNIQUE);
        CREATE TABLE b (code INT PRIMARY KEY, v INT);
        CREATE TABLE c (k TEXT PRIMARY KEY, n INT) WITHOUT ROWID;
        CREATE TABLE "Mixed Case" ("Some Col" INT, other INT);
        CREATE INDEX ix_a_x_y ON a (x, y DESC);
        CREATE INDEX ix_a_expr ON a (lower(y), x);
        CREATE INDEX ix_a_partial ON a (x) WHERE y IS NOT NULL;
        CREATE INDEX "Ix Mixed" ON "Mixed Case" ("Some Col");
        INSERT INTO a (x, y, z) VALUES (1, 'p', 'q'), (1, 'r', 's'), (2, 'p', 't');
        """
    )
    yield conn
    conn.close()


def test_sqlite_integer_primary_key_is_the_implicit_rowid_index(lite: sqlite3.Connection) -> None:
    ix = by_name(read_existing_indexes(lite))
    rowid = ix[("a", "<rowid>")]
    assert rowid.columns == ("id",) and rowid.primary and rowid.unique and rowid.implicit
    # INT (not INTEGER) PRIMARY KEY and WITHOUT ROWID tables get a real autoindex instead
    assert ("b", "<rowid>") not in ix and ("c", "<rowid>") not in ix
    auto_b = [i for i in ix.values() if i.table == "b" and i.name.startswith("sqlite_autoindex")]
    assert [(i.columns, i.primary, i.unique, i.implicit) for i in auto_b] == [
        (("code",), True, True, True)
    ]
    assert any(i.table == "c" and i.primary and i.columns == ("k",) for i in ix.values())


def test_sqlite_unique_constraints_composite_expression_and_partial(
    lite: sqlite3.Connection,
) -> None:
    ix = by_name(read_existing_indexes(lite))
    unique_z = [i for i in ix.values() if i.table == "a" and i.columns == ("z",)]
    assert len(unique_z) == 1 and unique_z[0].unique and unique_z[0].implicit
    assert ix[("a", "ix_a_x_y")].columns == ("x", "y")
    assert ix[("a", "ix_a_x_y")].plain_prefix == ("x", "y")
    expr = ix[("a", "ix_a_expr")]
    assert expr.columns == ("(expression)", "x") and expr.plain_prefix == ()
    partial = ix[("a", "ix_a_partial")]
    assert partial.partial and partial.plain_prefix == ()


def test_sqlite_names_are_folded_to_lower_case(lite: sqlite3.Connection) -> None:
    ix = by_name(read_existing_indexes(lite))
    assert ix[("mixed case", "Ix Mixed")].columns == ("some col",)


def test_sqlite_schema_and_column_stats(lite: sqlite3.Connection) -> None:
    schema = read_schema(lite)
    assert schema["a"] == ("id", "x", "y", "z")
    assert schema["mixed case"] == ("some col", "other")
    stats = read_column_stats(lite, ["a"])
    assert stats[("a", "x")] == 2.0 and stats[("a", "z")] == 3.0
    assert not any(t == "b" for t, _ in stats)


def test_a_list_passes_through_and_is_checked() -> None:
    given = [ExistingIndex("ix", "t", ("a",))]
    assert read_existing_indexes(given) == given
    with pytest.raises(ConfigError):
        read_existing_indexes([("ix", "t")])  # type: ignore[list-item]


def test_unsupported_connections_are_refused() -> None:
    with pytest.raises(ConfigError) as err:
        read_existing_indexes(object())
    assert err.value.parameter == "connection"


def test_a_sqlalchemy_connection_is_unwrapped(tmp_path: Any) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, a INT)")
        conn.exec_driver_sql("CREATE INDEX ix_t_a ON t (a)")
        names = {ix.name for ix in read_existing_indexes(conn)}
        assert names == {"<rowid>", "ix_t_a"}
        assert read_schema(conn.connection) == {"t": ("id", "a")}
    engine.dispose()


def test_exported_names_are_frozen_values() -> None:
    ix = ExistingIndex("ix", "t", ("a",), schema="s")
    assert ix.qualified_table == "s.t"
    with pytest.raises(AttributeError):
        ix.name = "other"  # type: ignore[misc]


# -- PostgreSQL --------------------------------------------------------------- #


@pytest.fixture(scope="module")
def pg(postgres_server: Any) -> Iterator[Any]:
    import psycopg

    from .advisor_db import pg_database

    with pg_database(postgres_server.dsn) as dsn, psycopg.connect(dsn) as conn:
        conn.execute(
            """
            CREATE SCHEMA sales;
            CREATE TABLE public.items (id serial PRIMARY KEY, sku text UNIQUE, name text,
                                       qty int, price numeric);
            CREATE TABLE sales."Orders" (id bigint PRIMARY KEY, item_id int, "When" date);
            CREATE INDEX ix_items_name_qty ON items (name, qty DESC) INCLUDE (price);
            CREATE INDEX ix_items_lower ON items (lower(name));
            CREATE INDEX ix_items_partial ON items (qty) WHERE qty > 0;
            CREATE INDEX ix_items_hash ON items USING hash (sku);
            CREATE INDEX "Ix When" ON sales."Orders" (item_id, "When");
            INSERT INTO items (sku, name, qty, price)
                SELECT 'sku' || g, 'name' || (g % 10), g % 3, g FROM generate_series(1, 300) g;
            INSERT INTO items (sku, name, qty) VALUES ('dup', 'x', 1);
            ANALYZE;
            """
        )
        conn.commit()
        yield conn


@pytest.mark.postgres
def test_postgres_constraints_expressions_partial_and_methods(pg: Any) -> None:
    ix = by_name(read_existing_indexes(pg))
    pkey = ix[("items", "items_pkey")]
    assert pkey.primary and pkey.unique and pkey.implicit and pkey.schema == "public"
    assert ix[("items", "items_sku_key")].implicit and ix[("items", "items_sku_key")].unique
    composite = ix[("items", "ix_items_name_qty")]
    assert composite.columns == ("name", "qty")  # INCLUDE columns are not key columns
    assert not composite.implicit
    assert ix[("items", "ix_items_lower")].columns == ("(lower(name))",)
    assert ix[("items", "ix_items_partial")].partial
    assert ix[("items", "ix_items_hash")].method == "hash"
    assert ix[("items", "ix_items_hash")].plain_prefix == ()


@pytest.mark.postgres
def test_postgres_other_schemas_and_quoted_names(pg: Any) -> None:
    ix = by_name(read_existing_indexes(pg))
    quoted = ix[("Orders", "Ix When")]
    assert quoted.schema == "sales" and quoted.columns == ("item_id", "When")
    assert quoted.qualified_table == "sales.Orders"


@pytest.mark.postgres
def test_postgres_invalid_index_is_reported_invalid(pg: Any) -> None:
    import psycopg

    pg.autocommit = True
    try:
        pg.execute("INSERT INTO items (sku, name) VALUES ('dup2', 'x')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            pg.execute("CREATE UNIQUE INDEX CONCURRENTLY ix_items_name_u ON items (name)")
        broken = by_name(read_existing_indexes(pg))[("items", "ix_items_name_u")]
        assert not broken.valid and broken.plain_prefix == ()
        pg.execute("DROP INDEX ix_items_name_u")
    finally:
        pg.autocommit = False


@pytest.mark.postgres
def test_postgres_schema_and_column_stats(pg: Any) -> None:
    schema = read_schema(pg)
    assert schema["items"] == ("id", "sku", "name", "qty", "price")
    assert schema["public.items"] == schema["items"]
    assert schema["sales.Orders"] == ("id", "item_id", "When")
    stats = read_column_stats(pg, ["items"])
    assert stats[("items", "qty")] == pytest.approx(3, abs=1)
    assert stats[("items", "sku")] > 200  # unique: n_distinct = -1 -> all rows
    assert stats[("public.items", "name")] == stats[("items", "name")]
