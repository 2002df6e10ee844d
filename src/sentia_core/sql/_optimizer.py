"""QueryOptimizer: capture on the hot path, statistics, slow queries, N+1, advice.

Theory of operation
-------------------
:meth:`QueryOptimizer.record` is called by the application (or an
integration) after every statement. Its hot path is one dict lookup from the
raw SQL string to the shape's :class:`_ShapeRecord`, one clock read, and a
few field updates under the shape's own lock. No parsing: a raw string is
fingerprinted once, the first time it is seen (:mod:`._fingerprint`), and
the result is kept in a bounded cache (FIFO, trimmed by half when full, so a
hit costs nothing to maintain). Heavier, sqlparse-based analysis runs lazily,
once per shape, only when a report or index advice needs it.

Off the hot path, and only when asked for: a slow execution is recorded,
logged and emitted as an event; ``sample_rate`` of the executions walk the
stack for their call site; inside a unit of work, SELECTs are counted per
``(shape, call site)`` for N+1 detection (:mod:`._nplusone`).

Nothing that leaves this module holds a literal: shapes carry fingerprints,
samples are redacted, call sites are ``file:line``; ``params`` are accepted
for API symmetry with DB-API and never looked at or stored.
"""

from __future__ import annotations

import contextvars
import logging
import math
import random
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from sentia_core._clock import SYSTEM_CLOCK, Clock
from sentia_core._events import Event, Listeners
from sentia_core._validate import (
    check_choice,
    check_fraction,
    check_int,
    check_name,
    check_non_negative,
)
from sentia_core.errors import ConfigError, SqlError

from ._callsite import CallSiteFinder
from ._fingerprint import fingerprint, fingerprint_ex, redact, shape_id, statement_kind
from ._nplusone import (
    AllowList,
    Indexed,
    NPlusOneDetected,
    NPlusOneReport,
    UnitOfWork,
    _Suppress,
    _Unit,
    fix_text,
)
from ._stats import (
    DRAIN_AT,
    MAX_VALUE,
    MIN_VALUE,
    OptimizerStats,
    ShapeStats,
    SlowQuery,
    SlowQueryDetected,
    _ShapeRecord,
)

if TYPE_CHECKING:
    from ._advisor import IndexSuggestion, ShapeWorkload
    from ._analysis import Analysis
    from ._apply import AppliedIndex, MaintenanceReport
    from ._catalog import ExistingIndex
    from ._verify import VerifiedSuggestion

__all__ = ["QueryOptimizer"]

_log = logging.getLogger("sentia_core.sql")

_TOP_KEYS = (
    "total_time",
    "calls",
    "mean_time",
    "max_time",
    "p50",
    "p95",
    "p99",
    "rows",
    "slow_calls",
)
_SAMPLE_LIMIT = 2_000


class StatementTypeError(SqlError, TypeError):
    """``record`` was given a statement object it cannot read as SQL text.

    Its ``str()`` would be a repr (``Composed([... Literal('secret')])``), not
    SQL: fingerprinting it would keep literals. Pass the SQL text instead.
    """


def _coerce_sql(sql: object) -> str:
    """The SQL text of a statement object a user may pass to ``record``.

    ``bytes`` are decoded as UTF-8; psycopg ``sql.SQL``/``Composed``/... are
    rendered with ``as_string(None)`` (psycopg's default adapters: literals
    become quoted SQL literals, which the fingerprint then removes);
    SQLAlchemy ``TextClause`` gives its ``.text``, a compiled statement its
    ``.string``, any other SQLAlchemy clause ``str()`` (its default compiler,
    bound values as placeholders). Anything else raises.

    Raises:
        StatementTypeError: an object of any other type, or a psycopg object
            that cannot be rendered without a connection (then pass
            ``obj.as_string(conn)``).
    """
    if isinstance(sql, (bytes, bytearray, memoryview)):
        return bytes(sql).decode("utf-8", "replace")
    cls = type(sql)
    modules = {c.__module__ for c in cls.__mro__}
    if "psycopg.sql" in modules or "psycopg2.sql" in modules:
        try:
            text = sql.as_string(None)  # type: ignore[attr-defined]
        except Exception as exc:
            raise StatementTypeError(
                f"cannot render a psycopg {cls.__name__} without a connection: "
                "record(statement.as_string(connection), ...) instead"
            ) from exc
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if isinstance(text, str):
            return text
    elif any(m.startswith("sqlalchemy.") for m in modules):
        text = getattr(sql, "text", None)  # TextClause
        if not isinstance(text, str):
            text = getattr(sql, "string", None)  # a Compiled statement
        if not isinstance(text, str) and hasattr(sql, "compile"):
            try:  # a ClauseElement: the default compiler, binds as placeholders
                text = str(sql)
            except Exception as exc:
                raise StatementTypeError(
                    f"cannot compile a SQLAlchemy {cls.__name__} without its dialect: "
                    "record(str(statement.compile(engine)), ...) instead"
                ) from exc
        if isinstance(text, str):
            return text
    raise StatementTypeError(
        f"record() needs the SQL text (str), got {cls.__module__}.{cls.__qualname__}; "
        "psycopg sql objects, SQLAlchemy text()/compiled statements and bytes are read too"
    )


class QueryOptimizer:
    """Per-shape SQL statistics, slow queries, N+1 detection and index advice.

    Args:
        name: names the optimizer in events (``source="sql:<name>"``) and logs.
        slow_query_threshold: seconds; an execution at or above it is a slow
            query (recorded, logged, emitted). Default 1.0; 0 makes every
            execution slow (debugging); ``math.inf`` turns the check off.
        sample_rate: fraction (0..1) of executions whose call site is sampled
            into the shape's statistics. Default 0.1.
        nplusone_threshold: executions of one SELECT shape from one call site
            inside one unit of work that make an N+1 report. Default 5.
        nplusone_allow: patterns of intended repetition never reported: a
            shape id, a fingerprint, or a glob on the call site
            (``"*/reports.py:*"``).
        max_shapes: shapes tracked at most; beyond it the least-called tenth
            is evicted. Default 2000.
        max_cached_statements: raw statement texts kept in the fingerprint
            cache; when full, the older half is dropped. Default 10 000.
        max_statement_length: texts longer than this (characters) are
            fingerprinted on every call instead of cached. Default 16 384.
        max_slow_queries: slow queries kept for :meth:`slow_queries`.
            Default 100.
        max_reports: N+1 patterns kept for :meth:`nplusone_reports`.
            Default 100.
        max_call_sites: call sites kept per shape. Default 10.
        internal_modules: extra module names whose frames are never a call
            site (your own data-access layer, say).
        log_events: log slow queries (INFO) and N+1 reports (WARNING) to the
            ``sentia_core.sql`` logger. Default True.
        clock: time source (seconds); tests pass a ManualClock.
        rng: random source for call-site sampling.

    Raises:
        ConfigError: any invalid parameter, naming it.
    """

    def __init__(
        self,
        *,
        name: str = "default",
        slow_query_threshold: float = 1.0,
        sample_rate: float = 0.1,
        nplusone_threshold: int = 5,
        nplusone_allow: Iterable[str] = (),
        max_shapes: int = 2000,
        max_cached_statements: int = 10_000,
        max_statement_length: int = 16_384,
        max_slow_queries: int = 100,
        max_reports: int = 100,
        max_call_sites: int = 10,
        internal_modules: Iterable[str] = (),
        log_events: bool = True,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        self.name = check_name("name", name)
        self.slow_query_threshold = check_non_negative(
            "slow_query_threshold", slow_query_threshold, allow_inf=True
        )
        self.sample_rate = check_fraction("sample_rate", sample_rate)
        self.nplusone_threshold = check_int("nplusone_threshold", nplusone_threshold, minimum=2)
        if isinstance(nplusone_allow, str):
            raise ConfigError("nplusone_allow", nplusone_allow, "must be a list of patterns")
        allow = list(nplusone_allow)
        for p in allow:
            if not isinstance(p, str) or not p:
                raise ConfigError("nplusone_allow", p, "patterns must be non-empty strings")
        self._allow = AllowList(allow)
        self.max_shapes = check_int("max_shapes", max_shapes, minimum=1)
        self.max_cached_statements = check_int(
            "max_cached_statements", max_cached_statements, minimum=0
        )
        self.max_statement_length = check_int(
            "max_statement_length", max_statement_length, minimum=1
        )
        self.max_call_sites = check_int("max_call_sites", max_call_sites, minimum=1)
        max_slow = check_int("max_slow_queries", max_slow_queries, minimum=0)
        max_rep = check_int("max_reports", max_reports, minimum=0)
        if isinstance(internal_modules, str):
            raise ConfigError("internal_modules", internal_modules, "must be a list of names")
        mods = list(internal_modules)
        for m in mods:
            if not isinstance(m, str) or not m:
                raise ConfigError("internal_modules", m, "names must be non-empty strings")
        if not isinstance(log_events, bool):
            raise ConfigError("log_events", log_events, "must be a bool")
        self.log_events = log_events
        if not all(callable(getattr(clock, a, None)) for a in ("monotonic", "time")):
            raise ConfigError("clock", clock, "must have monotonic() and time()")
        if rng is not None and not isinstance(rng, random.Random):
            raise ConfigError("rng", rng, "must be a random.Random")
        self._clock = clock
        self._monotonic = clock.monotonic
        self._rng = rng if rng is not None else random.Random()
        self._random = self._rng.random
        self._sites = CallSiteFinder(mods)
        self._source = f"sql:{self.name}"
        #: Subscribers to :class:`SlowQueryDetected` and :class:`NPlusOneDetected`.
        self.listeners: Listeners[Event] = Listeners()

        self._lock = threading.Lock()  # guards shapes, the cache's shape, counters
        self._by_sql: dict[str, _ShapeRecord] = {}
        self._shapes: dict[str, _ShapeRecord] = {}  # by shape id
        self._by_fp: dict[str, _ShapeRecord] = {}  # the same, by fingerprint
        self._slow: deque[SlowQuery] = deque(maxlen=max_slow)
        self._reports: dict[tuple[str, str], NPlusOneReport] = {}
        self._max_reports = max_rep
        self._evicted = 0
        self._evicted_calls = 0
        self._evicted_time = 0.0
        self._malformed = 0
        self._errors = 0
        self._slow_count = 0
        self._report_count = 0
        self._started = self._monotonic()
        self._unit_var: contextvars.ContextVar[_Unit | None] = contextvars.ContextVar(
            f"sentia_sql_unit_{id(self)}", default=None
        )
        self._suppress_var: contextvars.ContextVar[bool] = contextvars.ContextVar(
            f"sentia_sql_allow_{id(self)}", default=False
        )
        self._existing: list[ExistingIndex] | None = None
        self._existing_source: Callable[[], object] | None = None
        self._described: dict[str, tuple[str | None, str | None]] = {}

    # ------------------------------------------------------------------ capture

    def record(
        self,
        sql: str,
        duration: float,
        params: object = None,
        rows: int | None = None,
    ) -> None:
        """Record one execution of ``sql`` that took ``duration`` seconds.

        Cheap enough for every statement of a service: after the first time a
        text is seen, one dict lookup, one clock read and a few field updates.
        Never raises for any text; malformed text is fingerprinted as well as
        possible and flagged.

        Args:
            sql: the statement as sent to the driver (placeholders or literals):
                a ``str``, or ``bytes``, a psycopg ``sql.SQL``/``Composed``
                (rendered with ``as_string(None)``), a SQLAlchemy ``text()``
                clause, compiled statement or other clause element.
            duration: seconds it took (negative or NaN counts as 0).
            params: the bound parameters. Accepted for symmetry with DB-API
                ``execute``; never read and never stored.
            rows: rows returned or affected, when known.

        Raises:
            StatementTypeError: ``sql`` is an object of any other type (its
                ``str()`` would be a repr, not SQL).
        """
        try:
            rec = self._by_sql.get(sql)
        except TypeError:  # unhashable object standing in for SQL text
            rec = None
        if rec is None:
            rec = self._learn(sql)
            if rec is None:
                return
        try:
            if not duration > MIN_VALUE:  # zero, tiny, negative or NaN
                duration = 0.0
            elif duration > MAX_VALUE:
                duration = MAX_VALUE
        except TypeError:  # not a number at all
            duration = 0.0
        rec.last_seen = self._monotonic()
        pending = rec.pending
        pending.append(duration)
        if rows is not None and type(rows) is int and rows > 0:
            rec.pending_rows.append(rows)
        if len(pending) >= DRAIN_AT:
            rec.drain()
        if duration >= self.slow_query_threshold:
            self._on_slow(rec, duration, rows)
        rate = self.sample_rate
        if rate and self._random() < rate:
            rec.add_site(self._sites.find(2), self.max_call_sites)
        if rec.is_select:
            unit = self._unit_var.get()
            if unit is not None and not self._suppress_var.get():
                unit.observe(rec, self._sites.find(2))

    def record_aggregate(
        self,
        sql: str,
        calls: int,
        total_time: float,
        *,
        max_time: float | None = None,
        rows: int | None = None,
    ) -> None:
        """Record executions measured elsewhere (``pg_stat_statements``, a log).

        The duration histogram gets ``calls`` values at the mean (and the
        maximum once, when given), so percentiles of imported shapes are
        estimates.

        Args:
            sql: the statement or its normalized form.
            calls: how many executions (0 is ignored).
            total_time: their summed duration, seconds.
            max_time: the slowest execution, seconds, when known.
            rows: rows returned or affected in total, when known.

        Raises:
            ConfigError: a negative ``calls``, ``total_time`` or ``max_time``.
        """
        check_int("calls", calls, minimum=0)
        check_non_negative("total_time", total_time, duration=False)
        if max_time is not None:
            check_non_negative("max_time", max_time, duration=False)
        if calls == 0:
            return
        rec = self._by_sql.get(sql) if isinstance(sql, str) else None
        if rec is None:
            rec = self._learn(sql)
            if rec is None:
                return
        mean = total_time / calls
        now = self._monotonic()
        with rec.lock:
            rec._drain_locked()
            rec.calls += calls
            rec.total_time += total_time
            top = max_time if max_time is not None else mean
            rec.max_time = max(rec.max_time, top)
            if rows is not None and type(rows) is int and rows >= 0:
                rec.rows += rows
            rec.last_seen = now
            if max_time is not None and calls > 1:
                rec.hist.add(mean, calls - 1)
                rec.hist.add(max_time)
            else:
                rec.hist.add(mean, calls)
            if top >= self.slow_query_threshold:
                rec.slow_calls += 1

    def _learn(self, sql: object) -> _ShapeRecord | None:
        """First sight of a text: fingerprint it and find or make its shape."""
        # not inside the try below: a statement object that is not SQL is a
        # programming error, said at the first call
        text = sql if isinstance(sql, str) else _coerce_sql(sql)
        try:
            if text is not sql:
                rec = self._by_sql.get(text)
                if rec is not None:
                    return rec
            fp, malformed = fingerprint_ex(text)
            rec = self._by_fp.get(fp)
            if rec is None or malformed:
                rec = self._shape_for(text, fp, malformed)
            if self.max_cached_statements and len(text) <= self.max_statement_length:
                cache = self._by_sql
                if len(cache) >= self.max_cached_statements:
                    with self._lock:  # keep the newer half (dicts keep insertion order)
                        items = list(self._by_sql.items())
                        cache = self._by_sql = dict(items[len(items) // 2 :])
                cache[text] = rec
                if rec.evicted:  # evicted meanwhile: do not cache a dead shape
                    cache.pop(text, None)
            return rec
        except Exception:  # never let a statement break the application
            self._errors += 1
            return None

    def _shape_for(self, text: str, fp: str, malformed: bool) -> _ShapeRecord:
        """The shape of ``fp``, made under the lock when it is new."""
        with self._lock:
            if malformed:
                self._malformed += 1
            rec = self._by_fp.get(fp)
            if rec is not None:
                if malformed:
                    rec.malformed = True
                return rec
            sid = shape_id(fp)
            sample = redact(text)
            if len(sample) > _SAMPLE_LIMIT:
                sample = sample[:_SAMPLE_LIMIT] + " ..."
            rec = _ShapeRecord(
                sid,
                fp,
                kind=statement_kind(fp),
                sample=sample,
                malformed=malformed,
                now=self._monotonic(),
            )
            self._shapes[sid] = rec
            self._by_fp[fp] = rec
            if len(self._shapes) > self.max_shapes:
                self._evict(keep=rec)
            return rec

    def _evict(self, keep: _ShapeRecord) -> None:
        # Called under self._lock with one shape too many: drop the least
        # called tenth (pg_stat_statements deallocates the same way), never
        # the shape being added.
        shapes = self._shapes
        n = max(1, len(shapes) // 10)
        victims = sorted(
            (r for r in shapes.values() if r is not keep),
            key=lambda r: (r.calls + len(r.pending), r.last_seen),
        )
        for rec in victims[:n]:
            rec.drain()
            rec.evicted = True
            del shapes[rec.shape_id]
            self._by_fp.pop(rec.fingerprint, None)
            self._evicted += 1
            self._evicted_calls += rec.calls
            self._evicted_time += rec.total_time
            self._described.pop(rec.shape_id, None)
        self._by_sql = {k: v for k, v in self._by_sql.items() if not v.evicted}

    def _on_slow(self, rec: _ShapeRecord, duration: float, rows: int | None) -> None:
        site = self._sites.site(4)
        query = SlowQuery(
            shape_id=rec.shape_id,
            fingerprint=rec.fingerprint,
            duration=duration,
            threshold=self.slow_query_threshold,
            rows=rows if type(rows) is int else None,
            at=self._clock.time(),
            call_site=site,
        )
        with rec.lock:
            rec.slow_calls += 1
        self._slow.append(query)
        self._slow_count += 1
        if self.log_events:
            _log.info(
                "slow query %s took %.3fs at %s: %s",
                rec.shape_id,
                duration,
                site,
                rec.fingerprint,
            )
        if self.listeners:
            self.listeners.emit(SlowQueryDetected(self._source, query.at, query))

    # ------------------------------------------------------------- N+1

    def unit_of_work(self, name: str = "unit") -> UnitOfWork:
        """A unit of work (request, job, transaction) for N+1 detection.

        Use as ``with``/``async with``, or as a decorator of a sync or async
        function (each call is one unit). Units opened inside an active unit
        join it. Safe across threads and asyncio tasks (contextvars).

        Args:
            name: shown in reports, e.g. ``"GET /orders"``.

        Raises:
            ConfigError: an empty or non-string ``name``.
        """
        return UnitOfWork(self._unit_var, self._close_unit, check_name("name", name))

    def allow_nplusone(self) -> _Suppress:
        """A ``with`` block whose repeated SELECTs are intended: never reported."""
        return _Suppress(self._suppress_var)

    def pending_nplusone(self) -> int:
        """How many N+1 patterns the current unit of work holds so far (0 outside one).

        Integrations use it to refresh index information while a connection
        is at hand, before the unit ends.
        """
        unit = self._unit_var.get()
        if unit is None:
            return 0
        threshold = self.nplusone_threshold
        with unit.lock:
            return sum(1 for n in unit.counts.values() if n >= threshold)

    def nplusone_reports(self) -> list[NPlusOneReport]:
        """The N+1 patterns found so far (one per shape and call site), newest last."""
        with self._lock:
            return list(self._reports.values())

    def _close_unit(self, unit: _Unit) -> None:
        threshold = self.nplusone_threshold
        with unit.lock:
            found = [(k, n) for k, n in unit.counts.items() if n >= threshold]
            records = dict(unit.records)
        for (sid, filename, line), count in found:
            rec = records[sid]
            site = self._sites.display(filename, line)
            if self._allow and self._allow.allows(sid, rec.fingerprint, site):
                continue
            try:
                self._report(rec, unit.name, site, count)
            except Exception:  # a report must never break the request
                self._errors += 1
                _log.exception("N+1 report for shape %s failed", sid)

    def _report(self, rec: _ShapeRecord, unit: str, site: str, count: int) -> None:
        table, column = self._describe(rec)
        indexed, index_name = self._indexed(table, column)
        at = self._clock.time()
        key = (rec.shape_id, site)
        with self._lock:
            previous = self._reports.pop(key, None)
            report = NPlusOneReport(
                shape_id=rec.shape_id,
                fingerprint=rec.fingerprint,
                count=max(count, previous.count) if previous else count,
                call_site=site,
                unit=unit,
                table=table,
                column=column,
                indexed=indexed,
                fix=fix_text(
                    count=count,
                    unit=unit,
                    site=site,
                    table=table,
                    column=column,
                    indexed=indexed,
                    index_name=index_name,
                ),
                occurrences=previous.occurrences + 1 if previous else 1,
                at=at,
            )
            if self._max_reports:
                self._reports[key] = report
                while len(self._reports) > self._max_reports:
                    del self._reports[next(iter(self._reports))]
            self._report_count += 1
        if self.log_events and previous is None:
            # Once per pattern (shape and call site): later occurrences are counted
            # in the report and emitted as events, not logged again.
            _log.warning("N+1 query %s: %s", rec.shape_id, report.fix)
        if self.listeners:
            self.listeners.emit(NPlusOneDetected(self._source, at, report))

    def _describe(self, rec: _ShapeRecord) -> tuple[str | None, str | None]:
        """(table, the single filtered column) of a shape: analyzed once, lazily."""
        known = self._described.get(rec.shape_id)
        if known is not None:
            return known
        from ._analyze import analyze

        table: str | None = None
        column: str | None = None
        try:
            analysis = analyze(rec.fingerprint)
            if analysis.parsed and analysis.tables:
                table = analysis.tables[0]
                cols = [c for c in analysis.equality_columns if c.table in (None, table)]
                if len(cols) == 1:
                    column = cols[0].column
        except Exception:  # analysis is best effort
            table = column = None
        result = (table, column)
        self._described[rec.shape_id] = result
        return result

    # --------------------------------------------------------- existing indexes

    def set_existing_indexes(self, source: object) -> None:
        """Tell the optimizer which indexes exist (for N+1 reports and advice).

        Args:
            source: an iterable of :class:`~sentia_core.sql.ExistingIndex`; a
                sqlite3 or psycopg 3 connection (read now); or a zero-argument
                callable returning either, called whenever a report needs the
                indexes (so it sees indexes created later). When the callable
                returns None or raises, the last indexes it gave are used.
                ``None`` forgets everything.

        Raises:
            ConfigError: an unsupported connection or iterable content.
            BackendError: reading the catalog of a connection failed.
        """
        from ._dialect import read_existing_indexes

        if source is None:
            self._existing, self._existing_source = None, None
        elif callable(source) and not hasattr(source, "cursor"):
            self._existing_source = source
        else:
            self._existing = read_existing_indexes(source)
            self._existing_source = None

    @property
    def clock(self) -> Clock:
        """The clock this optimizer reads (integrations time statements with it)."""
        return self._clock

    def existing_indexes(self) -> list[ExistingIndex] | None:
        """The indexes known to exist, or None when nothing is known."""
        source = self._existing_source
        if source is not None:
            from ._dialect import read_existing_indexes

            try:
                got = source()
                if got is not None:
                    self._existing = read_existing_indexes(got)
            except Exception:  # keep what we knew
                _log.debug("reading existing indexes failed", exc_info=True)
        return self._existing

    def _indexed(self, table: str | None, column: str | None) -> tuple[Indexed, str | None]:
        if table is None or column is None:
            return "unknown", None
        indexes = self.existing_indexes()
        if indexes is None:
            return "unknown", None
        t = table.lower().rsplit(".", 1)[-1]
        c = column.lower()
        for ix in indexes:
            if ix.table.lower() == t:
                prefix = ix.plain_prefix
                if prefix and prefix[0] == c:
                    return "yes", ix.name
        return "no", None

    # ------------------------------------------------------------ statistics

    def _wall_offset(self) -> float:
        return self._clock.time() - self._monotonic()

    def stats(self) -> OptimizerStats:
        """A frozen snapshot of everything: shapes by total time, counters."""
        offset = self._wall_offset()
        with self._lock:
            records = list(self._shapes.values())
            evicted, e_calls, e_time = self._evicted, self._evicted_calls, self._evicted_time
            cached = len(self._by_sql)
        shapes = sorted(
            (r.snapshot(offset, self.max_call_sites, self._sites.display) for r in records),
            key=lambda s: (-s.total_time, -s.calls, s.shape_id),
        )
        return OptimizerStats(
            shapes=tuple(shapes),
            calls=sum(s.calls for s in shapes) + e_calls,
            total_time=math.fsum(s.total_time for s in shapes) + e_time,
            distinct_shapes=len(shapes),
            evicted_shapes=evicted,
            malformed_statements=self._malformed,
            slow_queries=self._slow_count,
            nplusone_reports=self._report_count,
            cached_statements=cached,
            errors=self._errors,
        )

    def top(self, n: int = 10, by: str = "total_time") -> list[ShapeStats]:
        """The ``n`` heaviest shapes by ``by``.

        Args:
            n: how many (at least 1).
            by: ``"total_time"`` (default), ``"calls"``, ``"mean_time"``,
                ``"max_time"``, ``"p50"``, ``"p95"``, ``"p99"``, ``"rows"`` or
                ``"slow_calls"``.

        Raises:
            ConfigError: an invalid ``n`` or ``by``.
        """
        check_int("n", n, minimum=1)
        check_choice("by", by, _TOP_KEYS)
        shapes = self.stats().shapes
        return sorted(shapes, key=lambda s: (-getattr(s, by), s.shape_id))[:n]

    def shape(self, shape_or_sql: str) -> ShapeStats | None:
        """The statistics of one shape, by shape id or by any statement of it."""
        offset = self._wall_offset()
        with self._lock:
            rec = self._shapes.get(shape_or_sql)
            if rec is None:
                rec = self._shapes.get(shape_id(fingerprint(shape_or_sql)))
        if rec is None:
            return None
        return rec.snapshot(offset, self.max_call_sites, self._sites.display)

    def slow_queries(self) -> list[SlowQuery]:
        """The most recent slow executions (at most ``max_slow_queries``), oldest first."""
        return list(self._slow)

    def reset(self) -> None:
        """Forget every shape, cached text, slow query, report and counter."""
        with self._lock:
            for rec in self._shapes.values():
                rec.evicted = True
            self._shapes = {}
            self._by_fp = {}
            self._by_sql = {}
            self._slow.clear()
            self._reports = {}
            self._described = {}
            self._evicted = self._evicted_calls = 0
            self._evicted_time = 0.0
            self._malformed = self._errors = self._slow_count = self._report_count = 0
            self._started = self._monotonic()

    def export(self) -> dict[str, Any]:
        """Everything as plain JSON-serializable data (no literal anywhere)."""
        s = self.stats()
        return {
            "optimizer": self.name,
            "generated_at": self._clock.time(),
            "calls": s.calls,
            "total_time": s.total_time,
            "distinct_shapes": s.distinct_shapes,
            "evicted_shapes": s.evicted_shapes,
            "malformed_statements": s.malformed_statements,
            "errors": s.errors,
            "slow_query_threshold": self.slow_query_threshold,
            "shapes": [asdict(x) for x in s.shapes],
            "slow_queries": [asdict(q) for q in self.slow_queries()],
            "nplusone": [asdict(r) for r in self.nplusone_reports()],
        }

    def add_listener(self, listener: Callable[[Event], object]) -> Callable[[], None]:
        """Subscribe to slow-query and N+1 events; returns an unsubscribe function."""
        return self.listeners.add(listener)

    # ------------------------------------------------------- analysis, advice

    def analyze(self, sql: str) -> Analysis:
        """What one statement reads and filters on (tables, columns, joins...).

        The statement is fingerprinted first, so the analysis never sees a
        literal. See :func:`sentia_core.sql.analyze`.
        """
        from ._analyze import analyze

        return analyze(fingerprint(sql) if isinstance(sql, str) else sql)

    def workload(self, *, min_calls: int = 1, min_total_time: float = 0.0) -> list[ShapeWorkload]:
        """The recorded shapes as the index advisor's input.

        Args:
            min_calls: leave out shapes called fewer times.
            min_total_time: leave out shapes with less total time (seconds).
        """
        from ._advisor import ShapeWorkload

        check_int("min_calls", min_calls, minimum=0)
        check_non_negative("min_total_time", min_total_time, duration=False)
        return [
            ShapeWorkload(s.fingerprint, s.calls, s.total_time, s.sample)
            for s in self.stats().shapes
            if s.calls >= min_calls and s.total_time >= min_total_time and s.kind
        ]

    def suggest_indexes(
        self,
        existing: Iterable[ExistingIndex] | None = None,
        max_per_table: int = 10,
        min_calls: int = 1,
        min_total_time: float = 0.0,
        connection: object = None,
        **options: Any,
    ) -> list[IndexSuggestion]:
        """Suggest indexes for the recorded workload.

        Existing indexes come from ``existing``, else ``connection`` (read
        now, with its schema), else :meth:`set_existing_indexes`. Further
        keyword options go to :func:`sentia_core.sql.suggest_indexes`.

        Returns:
            Suggestions ranked by the total time of the shapes they serve.
        """
        from ._advisor import suggest_indexes

        source: object = existing
        if source is None:
            source = connection if connection is not None else self.existing_indexes()
        return suggest_indexes(
            self.workload(),
            source,
            max_per_table=max_per_table,
            min_calls=min_calls,
            min_total_time=min_total_time,
            **options,
        )

    def verify(
        self, suggestions: Iterable[IndexSuggestion], connection: object, **options: Any
    ) -> list[VerifiedSuggestion]:
        """Check suggestions against the real planner with this workload.

        See :func:`sentia_core.sql.verify` for ``options`` and guarantees
        (nothing persists; data-changing statements are never explained).
        """
        from ._verify import verify

        return verify(suggestions, connection, self.workload(min_calls=0), **options)

    def apply(
        self, verified: Iterable[VerifiedSuggestion], connection: object, **options: Any
    ) -> list[AppliedIndex]:
        """Create verified indexes past the usage threshold (dry run by default).

        The usage window defaults to the time since this optimizer started
        (or was reset). See :func:`sentia_core.sql.apply`.
        """
        from ._apply import apply

        options.setdefault("window", max(1.0, self._monotonic() - self._started))
        return apply(verified, connection, **options)

    def maintenance(self, connection: object, **options: Any) -> MaintenanceReport:
        """ANALYZE where statistics are stale; list unused indexes.

        See :func:`sentia_core.sql.maintenance`.
        """
        from ._apply import maintenance

        return maintenance(connection, **options)

    def __repr__(self) -> str:
        return (
            f"QueryOptimizer(name={self.name!r}, shapes={len(self._shapes)}, "
            f"slow_query_threshold={self.slow_query_threshold!r})"
        )
