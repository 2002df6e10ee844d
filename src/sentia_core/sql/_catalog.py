"""Dialect-free values shared by the dialects and the modules that dispatch to them.

What a live database already has (:class:`ExistingIndex`), what maintenance
found (:class:`MaintenanceReport`, :class:`UnusedIndex`), the plain records
an index build passes between :mod:`._apply` and a dialect, and the helpers
every dialect needs (unwrapping a SQLAlchemy or pooled connection, ANSI
quoting). Nothing here knows a database: that lives in one module per
database (:mod:`._sqlite`, :mod:`._postgres`), found through :mod:`._dialect`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BuildOutcome",
    "ExistingIndex",
    "IndexBuild",
    "MaintenanceReport",
    "UnusedIndex",
]


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


@dataclass(frozen=True, slots=True)
class UnusedIndex:
    """An index the statistics say was never scanned."""

    schema: str | None
    table: str
    name: str
    scans: int
    size_bytes: int
    drop_ddl: str


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    """What :func:`~._apply.maintenance` found and did.

    Attributes:
        analyzed: tables whose statistics were (or, dry-run, would be)
            refreshed.
        statements: the statements run (or that would run).
        unused_indexes: never-scanned, non-constraint indexes (PostgreSQL).
        notes: remarks for people (what could not be checked, and why).
        stats_since: when the usage counters were last reset (epoch seconds),
            or None when unknown.
        dry_run: nothing was executed.
    """

    analyzed: tuple[str, ...]
    statements: tuple[str, ...]
    unused_indexes: tuple[UnusedIndex, ...] = ()
    notes: tuple[str, ...] = ()
    stats_since: float | None = None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class IndexBuild:
    """One index :func:`~._apply.apply` asks a dialect to create."""

    table: str
    name: str
    columns: tuple[str, ...]
    ddl: str


@dataclass(frozen=True, slots=True)
class BuildOutcome:
    """What became of one :class:`IndexBuild`.

    ``status`` is ``"created"``, ``"failed"`` or ``"skipped"``; ``seconds``
    the build time (0 when nothing was built).
    """

    status: str
    reason: str = ""
    seconds: float = 0.0


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
