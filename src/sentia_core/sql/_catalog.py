"""Dialect-free values shared by the dialects and the modules that dispatch to them.

What a live database already has (:class:`ExistingIndex`) and the helpers
every dialect needs (unwrapping a SQLAlchemy or pooled connection, ANSI
quoting). Nothing here knows a database: that lives in one module per
database (:mod:`._sqlite`, :mod:`._postgres`), found through :mod:`._dialect`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ExistingIndex"]


@dataclass(frozen=True, slots=True)
class ExistingIndex:
    """An index that already exists (or that you describe by hand).

    Attributes:
        name: the index name (``"<rowid>"`` for SQLite's implicit rowid key).
        table: the table name, without schema.
        columns: the key columns in order; an expression key appears in
            parentheses, e.g. ``"(lower(email))"``.
        unique: the index enforces uniqueness.
        primary: it is the primary key (or SQLite's rowid).
        partial: it has a WHERE predicate (so it serves only some rows).
        method: the access method (``"btree"``, ``"hash"``, ``"gin"``...).
        schema: the schema (PostgreSQL), or ``None``.
        valid: False for a PostgreSQL index left invalid by a failed
            ``CREATE INDEX CONCURRENTLY``.
        implicit: created by the database for a constraint or the rowid.
    """

    name: str
    table: str
    columns: tuple[str, ...]
    unique: bool = False
    primary: bool = False
    partial: bool = False
    method: str = "btree"
    schema: str | None = None
    valid: bool = True
    implicit: bool = False

    @property
    def plain_prefix(self) -> tuple[str, ...]:
        """The leading plain columns (up to the first expression), lower-cased.

        Only these can serve a predicate on a column; a partial, invalid or
        non-btree index serves none.
        """
        if self.partial or not self.valid or self.method != "btree":
            return ()
        out: list[str] = []
        for col in self.columns:
            if col.startswith("("):
                break
            out.append(col.lower())
        return tuple(out)

    @property
    def qualified_table(self) -> str:
        """``schema.table`` when a schema is known, else ``table``."""
        return f"{self.schema}.{self.table}" if self.schema else self.table


# --------------------------------------------------------------------------- #
# Connections
# --------------------------------------------------------------------------- #


def unwrap_connection(connection: object) -> Any:
    """The driver connection under a SQLAlchemy connection or pool proxy."""
    inner = getattr(connection, "driver_connection", None)  # pool proxy (SQLAlchemy 2)
    if inner is not None:
        return inner
    pooled = getattr(connection, "connection", None)  # sqlalchemy.engine.Connection
    if pooled is not None and type(connection).__module__.startswith("sqlalchemy"):
        inner = getattr(pooled, "driver_connection", None)
        if inner is not None:
            return inner
    return connection


def ansi_quote(name: str) -> str:
    """Quote one identifier the SQL-standard way (``"name"``, ``"`` doubled).

    SQLite and PostgreSQL both quote so; a dialect that does not (MySQL's
    backticks) gives its own :meth:`~._dialect.Dialect.quote`.
    """
    return '"' + name.replace('"', '""') + '"'


def ansi_quote_table(table: str) -> str:
    """:func:`ansi_quote` for ``table`` or ``schema.table``."""
    return ".".join(ansi_quote(p) for p in table.split(".", 1))


def columns_sql(columns: Sequence[tuple[str, bool]], quote: Callable[[str], str]) -> str:
    """An index's key list: ``"a", "b" DESC`` for ``(column, descending)`` pairs."""
    return ", ".join(quote(c) + (" DESC" if d else "") for c, d in columns)


def indexes_by_table(indexes: Iterable[ExistingIndex]) -> Mapping[str, list[ExistingIndex]]:
    """Group indexes by lower-cased table name (and ``schema.table``)."""
    grouped: dict[str, list[ExistingIndex]] = {}
    for ix in indexes:
        grouped.setdefault(ix.table.lower(), []).append(ix)
        if ix.schema:
            grouped.setdefault(ix.qualified_table.lower(), []).append(ix)
    return grouped
