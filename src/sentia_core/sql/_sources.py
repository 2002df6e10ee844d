"""Readers for workload files: SQL scripts, PostgreSQL logs, pg_stat_statements CSV.

Each reader takes a binary file and yields :class:`Execution` (one statement
run once, with its duration when known) or :class:`Aggregate` (totals for a
statement, as ``pg_stat_statements`` keeps them). Readers report progress in
bytes through a callback and raise :class:`WorkloadFormatError` with a line
number for input they cannot read. They never interpret parameter values:
``DETAIL: parameters:`` lines of a PostgreSQL log are skipped unread.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from sentia_core.errors import SqlError

from ._fingerprint import split_statements

__all__ = [
    "FORMATS",
    "Aggregate",
    "Execution",
    "WorkloadFormatError",
    "detect_format",
    "read_workload",
]

FORMATS = ("sql", "pglog", "pgss-csv")
Progress = Callable[[int], None]


class WorkloadFormatError(SqlError, ValueError):
    """A workload file that cannot be read as its format says."""


@dataclass(frozen=True, slots=True)
class Execution:
    """One statement run once; ``duration`` in seconds, or None when the source has none."""

    sql: str
    duration: float | None = None


@dataclass(frozen=True, slots=True)
class Aggregate:
    """A statement's totals: ``calls``, ``total_time`` and ``max_time`` in seconds."""

    sql: str
    calls: int
    total_time: float
    max_time: float | None
    rows: int | None


def detect_format(name: str, head: bytes) -> str:
    """Guess the format from the file name, then from its first bytes."""
    lower = name.lower()
    if lower.endswith(".csv"):
        return "pgss-csv"
    if lower.endswith(".log"):
        return "pglog"
    if lower.endswith(".sql"):
        return "sql"
    text = head.decode("utf-8", "replace")
    first = text.splitlines()[0] if text else ""
    if "query" in first and "calls" in first and "," in first:
        return "pgss-csv"
    if re.search(r"\b(LOG|ERROR|STATEMENT):\s+(duration|statement|execute)\b", text):
        return "pglog"
    return "sql"


def read_workload(
    fh: BinaryIO,
    fmt: str,
    *,
    encoding: str = "utf-8",
    progress: Progress | None = None,
) -> Iterator[Execution | Aggregate]:
    """Yield what the file holds.

    Raises:
        WorkloadFormatError: undecodable text, or a CSV without the columns
            pg_stat_statements exports.
    """
    if fmt == "sql":
        return _read_sql(fh, encoding, progress)
    if fmt == "pglog":
        return _read_pglog(fh, encoding, progress)
    if fmt == "pgss-csv":
        return _read_pgss(fh, encoding, progress)
    raise WorkloadFormatError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def _decode(raw: bytes, encoding: str, line: int) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise WorkloadFormatError(
            f"line {line}: not valid {encoding} (byte {exc.start}); try --encoding latin-1"
        ) from None


def _check_text(raw: bytes, line: int) -> None:
    if b"\x00" in raw:
        raise WorkloadFormatError(f"line {line}: NUL byte; this does not look like a text file")


# --------------------------------------------------------------------------- #
# SQL scripts
# --------------------------------------------------------------------------- #


def _read_sql(fh: BinaryIO, encoding: str, progress: Progress | None) -> Iterator[Execution]:
    chunks: list[str] = []
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    while True:
        raw = fh.read(1 << 20)
        if not raw:
            break
        _check_text(raw, line)
        try:
            chunks.append(decoder.decode(raw))
        except UnicodeDecodeError as exc:
            raise WorkloadFormatError(
                f"line {line}: not valid {encoding} (byte {exc.start}); try --encoding latin-1"
            ) from None
        line += raw.count(b"\n")
    try:
        chunks.append(decoder.decode(b"", final=True))
    except UnicodeDecodeError:
        raise WorkloadFormatError(f"the file ends inside a {encoding} character") from None
    # Reading is quick; fingerprinting is what takes time: progress follows
    # the statements (their length approximates their bytes).
    for statement in split_statements("".join(chunks)):
        if progress is not None:
            progress(len(statement) + 2)
        yield Execution(statement)


# --------------------------------------------------------------------------- #
# PostgreSQL logs (stderr format, any log_line_prefix)
# --------------------------------------------------------------------------- #

_ENTRY = re.compile(
    r"^(?P<prefix>.*?)\b(?P<level>LOG|ERROR|FATAL|PANIC|WARNING|NOTICE|INFO|DEBUG[1-5]?|"
    r"DETAIL|HINT|CONTEXT|STATEMENT|QUERY|LOCATION):  (?P<message>.*)$"
)
_DURATION = re.compile(
    r"^duration: (?P<ms>\d+(?:\.\d+)?) ms(?:  (?P<what>statement|execute [^:]*|parse [^:]*|"
    r"bind [^:]*|fastpath function call[^:]*): ?(?P<sql>.*))?$",
    re.DOTALL,
)
_STATEMENT = re.compile(r"^(?P<what>statement|execute [^:]*): ?(?P<sql>.*)$", re.DOTALL)
_PID = re.compile(r"\[(\d+)\]")


def _read_pglog(fh: BinaryIO, encoding: str, progress: Progress | None) -> Iterator[Execution]:
    pending: dict[str, str] = {}  # session -> statement logged without its duration
    phases: dict[str, float] = {}  # session -> parse + bind seconds of the next execute
    entry: tuple[str, str, list[str]] | None = None  # (session, message, continuation)

    def finish(e: tuple[str, str, list[str]]) -> Iterator[Execution]:
        session, message, more = e
        text = message if not more else message + "\n" + "\n".join(more)
        m = _DURATION.match(text)
        if m is not None:
            what = m.group("what")
            seconds = float(m.group("ms")) / 1000.0
            if what is None:  # log_duration: pairs with the statement logged before
                sql = pending.pop(session, None)
                if sql is not None:
                    yield Execution(sql, seconds)
            elif what == "statement" or what.startswith("execute"):
                pending.pop(session, None)
                seconds += phases.pop(session, 0.0)
                yield Execution(m.group("sql").strip(), seconds)
            elif what.startswith(("parse", "bind")):  # extended protocol: part of the execute
                phases[session] = phases.get(session, 0.0) + seconds
            return
        m = _STATEMENT.match(text)
        if m is not None:
            previous = pending.pop(session, None)
            if previous is not None:
                yield Execution(previous)
            pending[session] = m.group("sql").strip()

    for number, raw in enumerate(fh, 1):
        if progress is not None:
            progress(len(raw))
        _check_text(raw, number)
        line = _decode(raw, encoding, number).rstrip("\r\n")
        if line.startswith("\t") and entry is not None:  # a statement's next line
            entry[2].append(line[1:])
            continue
        m = _ENTRY.match(line)
        if m is None:
            if entry is not None:
                entry[2].append(line[1:] if line.startswith("\t") else line)
            continue
        if entry is not None:
            yield from finish(entry)
            entry = None
        if m.group("level") == "LOG":
            pid = _PID.search(m.group("prefix"))
            entry = (pid.group(1) if pid else "", m.group("message"), [])
    if entry is not None:
        yield from finish(entry)
    for sql in pending.values():
        yield Execution(sql)


# --------------------------------------------------------------------------- #
# pg_stat_statements CSV (\copy (SELECT * FROM pg_stat_statements) TO ... CSV HEADER)
# --------------------------------------------------------------------------- #


class _Counting(io.RawIOBase):
    """Counts bytes read for the progress bar."""

    def __init__(self, fh: BinaryIO, progress: Progress | None) -> None:
        self._fh = fh
        self._progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._fh.read(len(b))
        n = len(data)
        b[:n] = data
        if self._progress is not None and n:
            self._progress(n)
        return n


def _read_pgss(fh: BinaryIO, encoding: str, progress: Progress | None) -> Iterator[Aggregate]:
    text = io.TextIOWrapper(
        io.BufferedReader(_Counting(fh, progress)), encoding=encoding, newline=""
    )
    csv.field_size_limit(1 << 30)
    reader = csv.DictReader(text)
    try:
        header = reader.fieldnames or []
    except UnicodeDecodeError as exc:
        raise WorkloadFormatError(f"line 1: not valid {encoding} (byte {exc.start})") from None
    columns = {h.strip().lower(): h for h in header}
    total_col = columns.get("total_exec_time") or columns.get("total_time")
    if "query" not in columns or "calls" not in columns or total_col is None:
        raise WorkloadFormatError(
            "line 1: expected pg_stat_statements columns query, calls and total_exec_time "
            "(or total_time); export with "
            "\\copy (SELECT * FROM pg_stat_statements) TO 'file.csv' CSV HEADER"
        )
    query_col, calls_col = columns["query"], columns["calls"]
    max_col = columns.get("max_exec_time") or columns.get("max_time")
    rows_col = columns.get("rows")
    number = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except UnicodeDecodeError as exc:
            raise WorkloadFormatError(
                f"line {number + 1}: not valid {encoding} (byte {exc.start})"
            ) from None
        except csv.Error as exc:
            raise WorkloadFormatError(f"line {reader.line_num}: {exc}") from None
        number = reader.line_num
        sql = row.get(query_col)
        if not sql:
            continue
        try:
            calls = int(row[calls_col])
            total_ms = float(row[total_col])
            max_ms = float(row[max_col]) if max_col and row.get(max_col) else None
            rows = int(row[rows_col]) if rows_col and row.get(rows_col) else None
        except (TypeError, ValueError):
            raise WorkloadFormatError(
                f"line {number}: calls/total_exec_time/max_exec_time/rows must be numbers"
            ) from None
        if calls < 0 or total_ms < 0 or (max_ms is not None and max_ms < 0):
            raise WorkloadFormatError(f"line {number}: negative calls or times")
        yield Aggregate(
            sql,
            calls,
            total_ms / 1000.0,
            None if max_ms is None else max_ms / 1000.0,
            rows,
        )
