"""``sentia sql analyze FILE``: top shapes, slow queries and index suggestions from a file.

The command feeds a :class:`QueryOptimizer` from a SQL script, a PostgreSQL
log (``log_min_duration_statement`` lines) or a ``pg_stat_statements`` CSV
export, then prints what the optimizer found. With ``--dsn`` it reads the
schema and existing indexes from that database and verifies each suggested
index against its planner (nothing is created; see ``docs/sql_indexes.md``).

Output never contains a literal from the input: shapes are fingerprints.
Errors are one line on stderr; exit codes: 0 done, 1 the database failed,
2 bad arguments or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO, TextIO

from sentia_core.errors import SentiaError

from ._fingerprint import fingerprint
from ._optimizer import QueryOptimizer
from ._sources import FORMATS, Aggregate, WorkloadFormatError, detect_format, read_workload

__all__ = ["add_sql_parser", "run_sql"]

_PROG = "sentia sql analyze"
_PROGRESS_MIN_BYTES = 1 << 20
_DSN_SCHEMES = ("postgresql", "postgres", "sqlite")
#: Words a SQL statement (PostgreSQL, SQLite, MySQL) can start with; a
#: "statement" starting with anything else (prose, a stray log line) is not
#: SQL and is reported as such instead of becoming a query shape.
_STATEMENT_WORDS = frozenset(
    """
    ABORT ALTER ANALYZE ATTACH BEGIN CALL CHECKPOINT CLOSE CLUSTER COMMENT COMMIT COPY
    CREATE DEALLOCATE DECLARE DELETE DESCRIBE DETACH DISCARD DO DROP END EXECUTE EXPLAIN
    FETCH GRANT IMPORT INSERT LISTEN LOAD LOCK MERGE MOVE NOTIFY PRAGMA PREPARE REASSIGN
    REFRESH REINDEX RELEASE REPLACE RESET REVOKE ROLLBACK SAVEPOINT SECURITY SELECT SET
    SHOW START TABLE TRUNCATE UNLISTEN UPDATE UPSERT USE VACUUM VALUES WITH
    """.split()  # noqa: SIM905 - a word list reads best as words
)


def _is_sql(text: str) -> bool:
    """Whether ``text`` starts like a SQL statement (after comments and "(")."""
    head = fingerprint(text[:4096]).lstrip("( ")
    word = head.split(" ", 1)[0].split("(", 1)[0].upper()
    return word in _STATEMENT_WORDS


def add_sql_parser(sub: Any) -> None:
    """Add the ``sql`` command (with its ``analyze`` subcommand) to ``sentia``'s parser."""
    sql = sub.add_parser("sql", help="analyze SQL workloads: top shapes, slow queries, indexes")
    sql_sub = sql.add_subparsers(dest="sql_command", metavar="SUBCOMMAND")
    p = sql_sub.add_parser(
        "analyze",
        help="read a SQL file, a PostgreSQL log or a pg_stat_statements CSV",
        description=(
            "Fingerprint every statement of FILE (literals never printed), then show the "
            "heaviest shapes, the slow queries and the indexes worth creating."
        ),
    )
    p.add_argument("file", metavar="FILE", help="the workload file ('-' for stdin)")
    p.add_argument(
        "--format",
        choices=("auto", *FORMATS),
        default="auto",
        help="sql script, PostgreSQL log (pglog) or pg_stat_statements CSV (default: guess)",
    )
    p.add_argument(
        "--dsn",
        default=None,
        help="database to read indexes from and verify suggestions on: "
        "postgresql://... or a SQLite file (sqlite:///path.db or path.db)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--top", type=int, default=10, help="shapes to show (default 10)")
    p.add_argument(
        "--slow-threshold",
        type=float,
        default=1.0,
        help="seconds at or above which a statement is slow (default 1.0)",
    )
    p.add_argument(
        "--min-calls", type=int, default=1, help="ignore shapes run fewer times for indexes"
    )
    p.add_argument("--encoding", default="utf-8", help="text encoding of FILE (default utf-8)")
    p.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bar on stderr (auto: for files over 1 MiB on a terminal)",
    )


def run_sql(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``sentia sql ...``; returns the exit code."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    if getattr(args, "sql_command", None) != "analyze":
        err.write("usage: sentia sql analyze FILE [--format ...] [--dsn DSN] [--json]\n")
        return 2
    try:
        return _analyze(args, out, err)
    except _Fail as fail:
        err.write(f"{_PROG}: error: {fail.message}\n")
        return fail.code


class _Fail(Exception):
    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class _Bar:
    """A progress bar on stderr, redrawn at most ten times a second."""

    def __init__(self, err: TextIO, total: int, enabled: bool) -> None:
        self._err = err
        self._total = max(total, 1)
        self._done = 0
        self._enabled = enabled
        self._last = 0.0

    def __call__(self, n: int) -> None:
        self._done += n
        if not self._enabled:
            return
        now = time.monotonic()
        if now - self._last >= 0.1:
            self._last = now
            self._draw()

    def _draw(self) -> None:
        frac = min(1.0, self._done / self._total)
        filled = int(frac * 30)
        self._err.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {frac * 100:5.1f}% "
            f"{self._done / 1e6:.1f}/{self._total / 1e6:.1f} MB"
        )
        self._err.flush()

    def close(self) -> None:
        if self._enabled:
            self._done = self._total
            self._draw()
            self._err.write("\n")
            self._err.flush()


def _open(path: str) -> tuple[BinaryIO, int]:
    if path == "-":
        return sys.stdin.buffer, 0
    if os.path.isdir(path):
        raise _Fail(f"cannot read {path}: is a directory")
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise _Fail(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        size = os.fstat(fh.fileno()).st_size
    except OSError:
        size = 0
    return fh, size


def _check_dsn(dsn: str) -> None:
    scheme, sep, _ = dsn.partition("://")
    if sep and scheme.lower() not in _DSN_SCHEMES:
        raise _Fail(
            f"--dsn: unsupported scheme {scheme!r}: use postgresql://..., "
            "sqlite:///path.db or a SQLite file path"
        )


def _connect(dsn: str) -> Any:
    if dsn.startswith(("postgresql://", "postgres://")) or "host=" in dsn or "dbname=" in dsn:
        try:
            import psycopg
        except ImportError:
            raise _Fail("--dsn postgresql:// needs psycopg 3 (pip install psycopg)") from None
        try:
            return psycopg.connect(dsn, connect_timeout=10)
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise _Fail(f"cannot connect to the database: {first}", 1) from None
    path = dsn[len("sqlite:///") :] if dsn.startswith("sqlite:///") else dsn
    if not os.path.isfile(path):
        raise _Fail(f"--dsn: no SQLite database at {path}")
    try:
        return sqlite3.connect(f"file:{path}?mode=rw", uri=True)
    except sqlite3.Error as exc:
        raise _Fail(f"cannot open the database: {exc}", 1) from None


def _analyze(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.top < 1:
        raise _Fail("--top must be at least 1")
    if not args.slow_threshold > 0:
        raise _Fail("--slow-threshold must be greater than 0")
    if args.min_calls < 0:
        raise _Fail("--min-calls must not be negative")
    try:
        "".encode(args.encoding)
    except LookupError:
        raise _Fail(f"unknown encoding {args.encoding!r}") from None
    if args.dsn is not None:
        _check_dsn(args.dsn)

    fh, size = _open(args.file)
    try:
        fmt = args.format
        if fmt == "auto":
            head = fh.peek(4096)[:4096] if hasattr(fh, "peek") else b""
            fmt = detect_format(args.file, head)
        show = args.progress == "always" or (
            args.progress == "auto" and size >= _PROGRESS_MIN_BYTES and err.isatty()
        )
        bar = _Bar(err, size, show and size > 0)
        opt = QueryOptimizer(
            name="cli",
            slow_query_threshold=args.slow_threshold,
            sample_rate=0.0,
            max_shapes=100_000,
            max_cached_statements=0,
            log_events=False,
        )
        statements = 0
        not_sql = 0
        try:
            for item in read_workload(fh, fmt, encoding=args.encoding, progress=bar):
                if not _is_sql(item.sql):
                    not_sql += 1
                elif isinstance(item, Aggregate):
                    opt.record_aggregate(
                        item.sql,
                        item.calls,
                        item.total_time,
                        max_time=item.max_time,
                        rows=item.rows,
                    )
                    statements += item.calls
                else:
                    opt.record(item.sql, item.duration or 0.0)
                    statements += 1
        except WorkloadFormatError as exc:
            raise _Fail(f"{args.file}: {exc}") from None
        except OSError as exc:
            raise _Fail(f"cannot read {args.file}: {exc.strerror or exc}") from None
        finally:
            bar.close()
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()

    if not_sql and not statements:
        raise _Fail(
            f"no SQL in {args.file}: {_plural(not_sql, 'statement')} "
            f"({fmt}) {'does' if not_sql == 1 else 'do'} not parse as SQL"
        )
    suggestions, verified, db_error = _advise(opt, args)
    result = _Result(opt, args, fmt, statements, not_sql, suggestions, verified, db_error)
    if args.json:
        _print_json(out, result)
    else:
        _print_text(out, result)
    if db_error is not None:
        err.write(f"{_PROG}: error: {db_error}\n")
        return 1
    return 0


@dataclass(frozen=True, slots=True)
class _Result:
    opt: QueryOptimizer
    args: argparse.Namespace
    fmt: str
    statements: int
    not_sql: int
    suggestions: list[Any]
    verified: list[Any] | None
    db_error: str | None


def _advise(
    opt: QueryOptimizer, args: argparse.Namespace
) -> tuple[list[Any], list[Any] | None, str | None]:
    if args.dsn is None:
        try:
            return opt.suggest_indexes(min_calls=args.min_calls), None, None
        except SentiaError as exc:
            return [], None, f"index advice failed: {exc}"
    conn = _connect(args.dsn)
    try:
        suggestions = opt.suggest_indexes(connection=conn, min_calls=args.min_calls)
        verified = opt.verify(suggestions, conn) if suggestions else []
        return suggestions, verified, None
    except SentiaError as exc:
        return [], None, f"{type(exc).__name__}: {exc}"
    finally:
        try:
            conn.rollback()
        finally:
            conn.close()


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def _print_text(out: TextIO, r: _Result) -> None:
    opt, args, suggestions, verified = r.opt, r.args, r.suggestions, r.verified
    stats = opt.stats()
    w = out.write
    w(
        f"{args.file} ({r.fmt}): {_plural(r.statements, 'statement')}, "
        f"{_plural(stats.distinct_shapes, 'shape')}, "
        f"{stats.total_time:.3f} s in total"
        + (f", {stats.malformed_statements} malformed" if stats.malformed_statements else "")
        + "\n"
    )
    if r.not_sql:
        w(
            f"{_plural(r.not_sql, 'statement')} skipped: "
            f"{'it does' if r.not_sql == 1 else 'they do'} not parse as SQL\n"
        )
    if not stats.shapes:
        w("no statements found\n")
        return
    by = _rank_by(opt)
    w(f"\nTop {min(args.top, stats.distinct_shapes)} shapes by {by.replace('_', ' ')}:\n")
    w(f"  {'calls':>8} {'total s':>10} {'mean ms':>10} {'p95 ms':>10} {'max ms':>10}  shape\n")
    for s in opt.top(args.top, by=by):
        w(
            f"  {s.calls:>8} {s.total_time:>10.3f} {_ms(s.mean_time):>10} {_ms(s.p95):>10} "
            f"{_ms(s.max_time):>10}  {s.shape_id}  {_clip(s.fingerprint)}\n"
        )
    slow = [s for s in stats.shapes if s.slow_calls]
    w(f"\nSlow queries (>= {args.slow_threshold:g} s): ")
    if not slow:
        w("none\n")
    else:
        n = sum(s.slow_calls for s in slow)
        w(f"{_plural(n, 'execution')} of {_plural(len(slow), 'shape')}\n")
        for s in sorted(slow, key=lambda s: -s.max_time)[: args.top]:
            w(
                f"  {s.slow_calls:>8} x  max {s.max_time:.3f} s  {s.shape_id}  "
                f"{_clip(s.fingerprint)}\n"
            )
    w("\nSuggested indexes")
    if verified is not None:
        w(f" (verified on {_safe_dsn(args.dsn)})")
    w(":\n")
    if not suggestions:
        w("  none\n")
    elif verified is None:
        for s in suggestions:
            w(f"  {s.ddl};\n      {s.why}\n")
    else:
        for v in verified:
            mark = "keep" if v.accepted else "drop"
            w(f"  [{mark}] {v.ddl};\n      {v.verdict}\n")
    if r.db_error is not None:
        w(f"\n(database: {r.db_error})\n")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _rank_by(opt: QueryOptimizer) -> str:
    """Total time when the source had timings (logs, pg_stat_statements), else calls."""
    return "total_time" if opt.stats().total_time > 0 else "calls"


def _clip(text: str, width: int = 120) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _safe_dsn(dsn: str) -> str:
    """The DSN without a password."""
    import re

    return re.sub(r"(//[^:/@]+):[^@]*@", r"\1:***@", re.sub(r"password=\S+", "password=***", dsn))


def _print_json(out: TextIO, r: _Result) -> None:
    opt, args, verified = r.opt, r.args, r.verified
    data = {
        "file": args.file,
        "format": r.fmt,
        "statements": r.statements,
        "not_sql": r.not_sql,
        "slow_threshold": args.slow_threshold,
        "ranked_by": _rank_by(opt),
        "top": [asdict(s) for s in opt.top(args.top, by=_rank_by(opt))],
        **opt.export(),
        "suggestions": [asdict(s) for s in r.suggestions],
        "verified": None if verified is None else [_verified_dict(v) for v in verified],
        "database": None if args.dsn is None else _safe_dsn(args.dsn),
        "error": r.db_error,
    }
    json.dump(data, out, indent=2, default=str)
    out.write("\n")


def _verified_dict(v: Any) -> dict[str, Any]:
    d = asdict(v)
    d["ddl"] = v.ddl
    d["benefit"] = v.benefit
    d["cost_reduction"] = v.cost_reduction
    return d
