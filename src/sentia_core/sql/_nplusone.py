"""N+1 detection: units of work, per-unit counting, reports with a concrete fix.

Theory of operation
-------------------
A *unit of work* (a request, a job, a transaction) is a :class:`_Unit` held in
a :class:`contextvars.ContextVar`, so threads and asyncio tasks each see their
own, and tasks spawned inside a unit (which copy the context) count into it.
Opening a unit while one is active joins the active one: the outermost unit
is the one reported.

While a unit is active, every SELECT the optimizer records is counted under
``(shape, call site)``; the call site is the first application frame (see
:mod:`._callsite`). When the unit closes, each pair counted at least
``nplusone_threshold`` times becomes a report, unless it is allowed (an allow
pattern, or executed inside :meth:`QueryOptimizer.allow_nplusone`). The same
shape from different call sites is counted separately, which is what keeps
"two loops that each load one row" from looking like one N+1.

Reports are built once per unit at close, never on the recording path; the
analysis that names the table and the filtered column is done lazily, once
per shape.
"""

from __future__ import annotations

import contextvars
import fnmatch
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from sentia_core._events import Event

if TYPE_CHECKING:
    from ._stats import _ShapeRecord

__all__ = ["NPlusOneDetected", "NPlusOneReport", "UnitOfWork"]

F = TypeVar("F", bound=Callable[..., Any])
Indexed = Literal["yes", "no", "unknown"]
_MAX_KEYS_PER_UNIT = 10_000


@dataclass(frozen=True, slots=True)
class NPlusOneReport:
    """One N+1 pattern: the same SELECT repeated from one line inside a unit.

    Attributes:
        shape_id, fingerprint: the repeated statement's shape.
        count: executions in the unit (the largest seen, across occurrences).
        call_site: ``"path:line"`` of the application line that issued them.
        unit: the name of the unit of work.
        table: the table the statement reads, when known.
        column: the one column it filters on, when there is exactly one.
        indexed: whether ``column`` leads an index on ``table``: ``"yes"``,
            ``"no"``, or ``"unknown"`` when no index information was given.
        fix: what to do about it, in words.
        occurrences: how many units showed this pattern.
        at: wall-clock time of the latest occurrence.
    """

    shape_id: str
    fingerprint: str
    count: int
    call_site: str
    unit: str
    table: str | None
    column: str | None
    indexed: Indexed
    fix: str
    occurrences: int
    at: float


@dataclass(frozen=True, slots=True)
class NPlusOneDetected(Event):
    """Emitted when a unit of work closes with an N+1 pattern in it."""

    report: NPlusOneReport


class _Unit:
    """The counts of one active unit of work (shared by tasks that copied it)."""

    __slots__ = ("counts", "lock", "name", "records")

    def __init__(self, name: str) -> None:
        self.name = name
        self.counts: dict[tuple[str, str, int], int] = {}
        self.records: dict[str, _ShapeRecord] = {}
        self.lock = threading.Lock()

    def observe(self, rec: _ShapeRecord, site: tuple[str, int] | None) -> None:
        if site is None:
            return
        key = (rec.shape_id, site[0], site[1])
        with self.lock:
            counts = self.counts
            n = counts.get(key)
            if n is None:
                if len(counts) >= _MAX_KEYS_PER_UNIT:
                    return
                self.records[rec.shape_id] = rec
                counts[key] = 1
            else:
                counts[key] = n + 1


class UnitOfWork:
    """A unit of work: a context manager (sync and async) and a decorator.

    Made by :meth:`QueryOptimizer.unit_of_work`. Use it as ``with``/``async
    with`` around a request or job, or decorate a function (sync or async) to
    make each call a unit. Nested units join the outermost one.
    """

    __slots__ = ("_close", "_created", "_joined", "_token", "_var", "name")

    def __init__(
        self,
        var: contextvars.ContextVar[_Unit | None],
        close: Callable[[_Unit], object],
        name: str,
    ) -> None:
        # The optimizer's context variable holding the current unit, and what
        # reports a finished one: all a unit needs to know of the optimizer.
        self._var = var
        self._close = close
        self.name = name
        self._token: contextvars.Token[_Unit | None] | None = None
        self._created: _Unit | None = None
        self._joined: _Unit | None = None

    def rename(self, name: str) -> None:
        """Rename the unit while it is open (a web middleware learns the route
        template only after routing); its reports carry the new name."""
        self.name = name
        if self._created is not None:
            self._created.name = name

    @property
    def joined(self) -> bool:
        """True while this unit is entered inside another one (which it joined)."""
        return self._joined is not None

    def __enter__(self) -> UnitOfWork:
        var = self._var
        current = var.get()
        if current is not None:
            self._joined = current
        else:
            unit = _Unit(self.name)
            self._created = unit
            self._token = var.set(unit)
        return self

    def __exit__(self, *exc: object) -> None:
        unit = self._created
        if unit is None:  # joined an outer unit: that one reports
            self._joined = None
            return
        token = self._token
        self._created = None
        self._token = None
        var = self._var
        if token is not None:
            try:
                var.reset(token)
            except ValueError:  # closed from another context: clear ours
                var.set(None)
        self._close(unit)

    async def __aenter__(self) -> UnitOfWork:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)

    def __call__(self, fn: F) -> F:
        """Decorate ``fn`` (sync or async): each call runs in its own unit."""
        var, close, name = self._var, self._close, self.name

        if inspect.iscoroutinefunction(fn):
            afn = cast(Callable[..., Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with UnitOfWork(var, close, name):
                    return await afn(*args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with UnitOfWork(var, close, name):
                return fn(*args, **kwargs)

        return cast(F, wrapper)

    def __repr__(self) -> str:
        return f"UnitOfWork(name={self.name!r})"


class _Suppress:
    """Context manager and decorator marking a block whose repetition is intended."""

    __slots__ = ("_token", "_var")

    def __init__(self, var: contextvars.ContextVar[bool]) -> None:
        self._var = var
        self._token: contextvars.Token[bool] | None = None

    def __enter__(self) -> None:
        self._token = self._var.set(True)

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            self._var.reset(self._token)
            self._token = None


class AllowList:
    """Patterns naming N+1 patterns that are intended.

    Each pattern is a shape id, a fingerprint, or a glob matched against the
    call site ``"path:line"`` (``"*/reports.py:*"``, ``"app/export.py:42"``).
    """

    __slots__ = ("_exact", "_globs")

    def __init__(self, patterns: Iterable[str]) -> None:
        exact: set[str] = set()
        globs: list[str] = []
        for p in patterns:
            exact.add(p)
            if any(ch in p for ch in "*?["):
                globs.append(p)
        self._exact = frozenset(exact)
        self._globs = tuple(globs)

    def allows(self, shape_id: str, fingerprint: str, site: str) -> bool:
        if shape_id in self._exact or fingerprint in self._exact or site in self._exact:
            return True
        return any(fnmatch.fnmatchcase(site, g) for g in self._globs)

    def __bool__(self) -> bool:
        return bool(self._exact)


def fix_text(
    *,
    count: int,
    unit: str,
    site: str,
    table: str | None,
    column: str | None,
    indexed: Indexed,
    index_name: str | None,
) -> str:
    """The advice printed with an N+1 report (identifiers only, no literal)."""
    what = f"{table}" if table else "the same table"
    lines = [
        f"{site} ran the same SELECT {count} times in unit of work {unit!r}, "
        f"once per parent row (an N+1).",
    ]
    if column and table:
        lines.append(
            f"Load the rows in one query: SELECT ... FROM {table} WHERE {column} IN (...) "
            "with the keys collected from the parent rows, then match them up in Python."
        )
    else:
        lines.append(
            f"Load the rows of {what} in one query with IN (...) over the keys collected "
            "from the parent rows, then match them up in Python."
        )
    lines.append(
        "With the SQLAlchemy ORM, eager-load the relationship on the query that loads the "
        "parents: .options(selectinload(Parent.children)) for collections, "
        "joinedload(Child.parent) for many-to-one; with Django, prefetch_related / "
        "select_related."
    )
    if column and table:
        if indexed == "no":
            lines.append(
                f"{table}.{column} has no index leading with it: the batched lookup "
                f"will scan; consider CREATE INDEX ON {table} ({column})."
            )
        elif indexed == "yes":
            named = f" ({index_name})" if index_name else ""
            lines.append(f"{table}.{column} is indexed{named}, so the batched lookup is cheap.")
        else:
            lines.append(
                f"Whether {table}.{column} is indexed is unknown (give the optimizer "
                "existing indexes or a connection with set_existing_indexes)."
            )
    return " ".join(lines)
