"""Workload readers: SQL scripts, PostgreSQL logs, pg_stat_statements CSV."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentia_core.sql._sources import (
    Aggregate,
    Execution,
    WorkloadFormatError,
    detect_format,
    read_workload,
)


def read(data: str | bytes, fmt: str, **kw: object) -> list[Execution | Aggregate]:
    raw = data.encode() if isinstance(data, str) else data
    return list(read_workload(io.BytesIO(raw), fmt, **kw))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- #
# SQL scripts
# --------------------------------------------------------------------------- #


def test_a_script_yields_one_execution_per_statement() -> None:
    got = read("SELECT 1;\n-- note; not a statement\nSELECT 'a;b';\n\nUPDATE t SET x = 1", "sql")
    assert got == [
        Execution("SELECT 1"),
        Execution("-- note; not a statement\nSELECT 'a;b'"),
        Execution("UPDATE t SET x = 1"),
    ]


def test_progress_follows_the_statements() -> None:
    seen: list[int] = []
    data = "SELECT 1;\n" * 1000
    read(data, "sql", progress=seen.append)
    assert len(seen) == 1000
    assert sum(seen) == len(data)


def test_a_multibyte_character_split_across_chunks_is_decoded() -> None:
    data = ("SELECT 'é';" * 200_000).encode()
    assert len(read(data, "sql")) == 200_000


# --------------------------------------------------------------------------- #
# PostgreSQL logs
# --------------------------------------------------------------------------- #

_P = "2026-11-28 11:10:24.446 UTC [11587] "
_Q = "SELECT * FROM t WHERE id = $1"
PGLOG = "\n".join(
    [
        "2026-11-28 11:10:24.371 UTC [11580] LOG:  starting PostgreSQL 15.20",
        _P + "LOG:  duration: 0.097 ms  statement: SET x = 0",
        _P + f"LOG:  duration: 0.111 ms  parse <unnamed>: {_Q}",
        _P + f"LOG:  duration: 0.200 ms  bind <unnamed>: {_Q}",
        _P + "DETAIL:  parameters: $1 = 'zqsecretparam'",
        _P + f"LOG:  duration: 0.016 ms  execute <unnamed>: {_Q}",
        _P + "DETAIL:  parameters: $1 = 'zqsecretparam'",
        _P + "LOG:  duration: 1500.110 ms  statement: SELECT v",
        "\t  FROM t",
        "\t WHERE v = 'zqsecretvalue'",
        '2026-11-28 11:10:24.447 UTC [11590] ERROR:  relation "nope" does not exist',
        "2026-11-28 11:10:24.447 UTC [11590] STATEMENT:  SELECT * FROM nope",
        _P + "LOG:  duration: 13.424 ms  statement: SELECT pg_sleep(0.01)",
        "",
    ]
)


def test_a_postgres_log_yields_statements_with_durations() -> None:
    got = read(PGLOG, "pglog")
    assert got == [
        Execution("SET x = 0", pytest.approx(0.000097)),
        # parse and bind belong to the execute that follows them
        Execution("SELECT * FROM t WHERE id = $1", pytest.approx(0.000327)),
        Execution("SELECT v\n  FROM t\n WHERE v = 'zqsecretvalue'", pytest.approx(1.50011)),
        Execution("SELECT pg_sleep(0.01)", pytest.approx(0.013424)),
    ]
    assert "zqsecretparam" not in repr(got)  # parameter lines are never read


def test_log_statement_and_log_duration_lines_pair_up_by_session() -> None:
    log = """\
2026-01-01 00:00:00 UTC [1] LOG:  statement: SELECT a FROM t
2026-01-01 00:00:00 UTC [2] LOG:  statement: SELECT b FROM t
2026-01-01 00:00:01 UTC [1] LOG:  duration: 5.000 ms
2026-01-01 00:00:01 UTC [2] LOG:  duration: 7.000 ms
2026-01-01 00:00:02 UTC [1] LOG:  statement: SELECT c FROM t
"""
    got = read(log, "pglog")
    assert got == [
        Execution("SELECT a FROM t", 0.005),
        Execution("SELECT b FROM t", 0.007),
        Execution("SELECT c FROM t", None),
    ]


def test_a_log_with_another_prefix_is_read() -> None:
    log = "db=app,user=web LOG:  duration: 2.5 ms  statement: SELECT 1\n"
    assert read(log, "pglog") == [Execution("SELECT 1", 0.0025)]


def test_undecodable_log_lines_name_the_line() -> None:
    with pytest.raises(WorkloadFormatError, match="line 2: not valid utf-8"):
        read(b"x LOG:  duration: 1 ms  statement: SELECT 1\n\xff\xfe\n", "pglog")
    got = read(b"x LOG:  duration: 1 ms  statement: SELECT '\xe9'\n", "pglog", encoding="latin-1")
    assert got == [Execution("SELECT 'é'", 0.001)]


def test_binary_input_is_refused() -> None:
    with pytest.raises(WorkloadFormatError, match="NUL byte"):
        read(b"\x00\x01\x02SELECT", "sql")


@given(st.text(max_size=400))
def test_the_log_reader_never_crashes_on_text(text: str) -> None:
    got = read(text.replace("\x00", ""), "pglog")
    assert all(isinstance(e, Execution) for e in got)


# --------------------------------------------------------------------------- #
# pg_stat_statements CSV
# --------------------------------------------------------------------------- #

PGSS = (
    "userid,dbid,toplevel,queryid,query,plans,calls,total_exec_time,min_exec_time,"
    "max_exec_time,mean_exec_time,stddev_exec_time,rows\n"
    '10,5,t,-123,"SELECT * FROM orders WHERE customer_id = $1",'
    "0,1200,3600.5,0.5,1500,3.0,1.0,3600\n"
    '10,5,t,-124,"UPDATE stock\n   SET qty = qty - $1\n WHERE id = $2",0,10,20,1,4,2,0.1,10\n'
)


def test_a_pg_stat_statements_export_yields_aggregates() -> None:
    got = read(PGSS, "pgss-csv")
    assert got == [
        Aggregate("SELECT * FROM orders WHERE customer_id = $1", 1200, 3.6005, 1.5, 3600),
        Aggregate("UPDATE stock\n   SET qty = qty - $1\n WHERE id = $2", 10, 0.02, 0.004, 10),
    ]


def test_older_pg_stat_statements_column_names_work() -> None:
    csv = 'query,calls,total_time,max_time,rows\n"SELECT 1",3,30,20,3\n'
    assert read(csv, "pgss-csv") == [Aggregate("SELECT 1", 3, 0.03, 0.02, 3)]


def test_a_csv_without_the_columns_is_refused() -> None:
    with pytest.raises(WorkloadFormatError, match="expected pg_stat_statements columns"):
        read("a,b\n1,2\n", "pgss-csv")


def test_bad_numbers_name_the_line() -> None:
    with pytest.raises(WorkloadFormatError, match="line 3: calls"):
        read('query,calls,total_exec_time\n"SELECT 1",1,1\n"SELECT 2",many,1\n', "pgss-csv")
    with pytest.raises(WorkloadFormatError, match="negative"):
        read('query,calls,total_exec_time\n"SELECT 1",-1,1\n', "pgss-csv")


# --------------------------------------------------------------------------- #
# Format detection
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("name", "head", "fmt"),
    [
        ("x.csv", b"", "pgss-csv"),
        ("x.log", b"", "pglog"),
        ("x.sql", b"", "sql"),
        ("dump", PGSS.encode(), "pgss-csv"),
        ("postgresql-Mon.txt", PGLOG.encode(), "pglog"),
        ("queries.txt", b"SELECT 1; SELECT 2;", "sql"),
        ("-", b"", "sql"),
    ],
)
def test_format_detection(name: str, head: bytes, fmt: str) -> None:
    assert detect_format(name, head) == fmt


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(WorkloadFormatError, match="unknown format"):
        read("", "xml")
