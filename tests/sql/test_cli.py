"""``sentia sql analyze``, run as a user runs it: in a subprocess."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from sentia_core.cli import main

from .test_sources import PGLOG, PGSS

WORKLOAD = """\
-- the orders page
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INT, status TEXT, total REAL);
SELECT * FROM orders WHERE customer_id = 1;
SELECT * FROM orders WHERE customer_id = 2;
select * from orders where customer_id=3;
SELECT * FROM orders WHERE status = 'zqsecretstatus' ORDER BY total DESC;
"""


def sentia(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m sentia_core sql ARGS`` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "sentia_core", "sql", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        check=False,
    )


def sentia_here(*args: str) -> subprocess.CompletedProcess[str]:
    """The same command through ``sentia_core.cli.main`` in this process (faster)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["sql", *args])
        except SystemExit as exc:  # argparse errors
            code = int(exc.code or 0)
    return subprocess.CompletedProcess(
        ["sentia", "sql", *args], code, out.getvalue(), err.getvalue()
    )


@pytest.fixture
def workload(tmp_path: Path) -> Path:
    path = tmp_path / "workload.sql"
    path.write_text(WORKLOAD)
    return path


def test_a_sql_file_gives_shapes_and_index_suggestions(workload: Path) -> None:
    proc = sentia("analyze", str(workload))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "5 statements, 3 shapes" in out
    assert "SELECT * FROM orders WHERE customer_id = ?" in out
    assert "CREATE INDEX ix_orders_customer_id ON orders (customer_id)" in out
    assert "zqsecretstatus" not in out + proc.stderr
    assert proc.stderr == ""


def test_json_output(workload: Path) -> None:
    proc = sentia_here("analyze", str(workload), "--json", "--top", "2")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["format"] == "sql"
    assert data["statements"] == 5
    assert data["distinct_shapes"] == 3
    assert len(data["top"]) == 2
    assert data["top"][0]["calls"] == 3
    assert {s["table"] for s in data["suggestions"]} == {"orders"}
    assert data["verified"] is None
    assert "zqsecretstatus" not in proc.stdout


def test_stdin_is_read_with_a_dash(workload: Path) -> None:
    proc = sentia("analyze", "-", stdin=workload.read_text())
    assert proc.returncode == 0, proc.stderr
    assert "- (sql): 5 statements" in proc.stdout


def test_a_postgres_log(tmp_path: Path) -> None:
    path = tmp_path / "postgresql.log"
    path.write_text(PGLOG)
    proc = sentia_here("analyze", str(path), "--slow-threshold", "1")
    assert proc.returncode == 0, proc.stderr
    assert "(pglog): 4 statements" in proc.stdout
    assert "Slow queries (>= 1 s): 1 execution of 1 shape" in proc.stdout
    assert "SELECT v FROM t WHERE v = ?" in proc.stdout
    assert "zqsecret" not in proc.stdout


def test_a_pg_stat_statements_export(tmp_path: Path) -> None:
    path = tmp_path / "pgss.csv"
    path.write_text(PGSS)
    proc = sentia_here("analyze", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["format"] == "pgss-csv"
    assert data["statements"] == 1210
    top = data["top"][0]
    assert (top["fingerprint"], top["calls"], top["max_time"]) == (
        "SELECT * FROM orders WHERE customer_id = ?",
        1200,
        1.5,
    )
    assert top["slow_calls"] == 1
    assert any(s["columns"] == ["customer_id"] for s in data["suggestions"])


def test_the_format_can_be_forced(tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    path.write_text(PGSS)
    assert "(pgss-csv)" in sentia_here("analyze", str(path)).stdout  # detected from content
    proc = sentia_here("analyze", str(path), "--format", "sql")
    # read as a SQL script, a CSV export holds no statement that parses as SQL
    _one_line_error(proc, 2, "(sql)", "not parse as SQL")


def test_a_progress_bar_for_large_files(tmp_path: Path) -> None:
    path = tmp_path / "big.sql"
    path.write_text("SELECT * FROM t WHERE id = 12345;\n" * 3000)
    proc = sentia("analyze", str(path), "--progress", "always")
    assert proc.returncode == 0, proc.stderr
    assert "100.0%" in proc.stderr and "[######" in proc.stderr
    quiet = sentia("analyze", str(path))  # auto: stderr is not a terminal here
    assert quiet.stderr == ""


# --------------------------------------------------------------------------- #
# Verification against a database
# --------------------------------------------------------------------------- #


def _sqlite_db(tmp_path: Path, *, index: bool) -> Path:
    db = tmp_path / "shop.db"
    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INT, status TEXT, total REAL)"
    )
    conn.executemany(
        "INSERT INTO orders (customer_id, status, total) VALUES (?, ?, ?)",
        [(i % 500, ("new", "paid", "sent")[i % 3], float(i)) for i in range(5000)],
    )
    if index:
        conn.execute("CREATE INDEX ix_orders_customer ON orders (customer_id)")
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    return db


def test_suggestions_are_verified_on_a_sqlite_database(workload: Path, tmp_path: Path) -> None:
    db = _sqlite_db(tmp_path, index=False)
    proc = sentia_here("analyze", str(workload), "--dsn", f"sqlite:///{db}", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["verified"], data
    by_columns = {tuple(v["suggestion"]["columns"]): v for v in data["verified"]}
    assert by_columns[("customer_id",)]["accepted"] is True
    # nothing was created
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'index'").fetchone() == (
        0,
    )
    conn.close()


def test_an_existing_index_is_not_suggested_again(workload: Path, tmp_path: Path) -> None:
    db = _sqlite_db(tmp_path, index=True)
    proc = sentia_here("analyze", str(workload), "--dsn", str(db))
    assert proc.returncode == 0, proc.stderr
    assert "(customer_id)" not in proc.stdout.split("Suggested indexes")[1]


@pytest.mark.postgres
def test_suggestions_are_verified_on_postgresql(postgres_server: Any, tmp_path: Path) -> None:
    psycopg = pytest.importorskip("psycopg")
    name = "cli_" + uuid.uuid4().hex[:10]
    with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = postgres_server.dsn.rsplit("/", 1)[0] + "/" + name
    try:
        with psycopg.connect(dsn) as conn:
            conn.execute(
                "CREATE TABLE orders (id serial PRIMARY KEY, customer_id int, status text, "
                "total numeric)"
            )
            conn.execute(
                "INSERT INTO orders (customer_id, status, total) "
                "SELECT g % 2000, 'new', g FROM generate_series(1, 50000) g"
            )
            conn.execute("ANALYZE orders")
        log = tmp_path / "postgresql.log"
        log.write_text(
            "".join(
                f"2026-01-01 00:00:00 UTC [7] LOG:  duration: 40.0 ms  statement: "
                f"SELECT * FROM orders WHERE customer_id = {i}\n"
                for i in range(50)
            )
        )
        proc = sentia("analyze", str(log), "--dsn", dsn)
        assert proc.returncode == 0, proc.stderr
        assert f"verified on postgresql://postgres@127.0.0.1:{postgres_server.port}/" in (
            proc.stdout
        )
        assert "[keep] CREATE INDEX ix_orders_customer_id ON orders (customer_id)" in proc.stdout
        with psycopg.connect(dsn) as conn:  # nothing persisted
            assert conn.execute(
                "SELECT count(*) FROM pg_indexes WHERE tablename = 'orders'"
            ).fetchone() == (1,)
    finally:
        with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_a_real_postgres_log_is_read(postgres_server: Any, tmp_path: Path) -> None:
    psycopg = pytest.importorskip("psycopg")
    table = "logged_" + uuid.uuid4().hex[:10]
    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        conn.execute("SET log_min_duration_statement = 0")
        conn.execute(f"CREATE TABLE {table} (id int, v text)")
        for i in range(7):
            conn.execute(f"SELECT * FROM {table} WHERE id = %s", (i,)).fetchall()
        conn.execute(f"SELECT v\n  FROM {table}\n WHERE v = 'zqlogsecret'").fetchall()
        conn.execute(f"DROP TABLE {table}")
    log = Path(postgres_server.dir) / "log"
    deadline = time.monotonic() + 10
    while f"DROP TABLE {table}" not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, "the server did not log the statements"
        time.sleep(0.05)
    proc = sentia("analyze", str(log), "--format", "pglog", "--json", "--top", "1000")
    assert proc.returncode == 0, proc.stderr
    shapes = {s["fingerprint"]: s for s in json.loads(proc.stdout)["shapes"]}
    assert shapes[f"SELECT * FROM {table} WHERE id = ?"]["calls"] == 7
    assert shapes[f"SELECT v FROM {table} WHERE v = ?"]["total_time"] > 0
    assert "zqlogsecret" not in proc.stdout


# --------------------------------------------------------------------------- #
# Errors: one line, non-zero exit
# --------------------------------------------------------------------------- #


def _one_line_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("sentia sql analyze: error: ")
    for needle in needles:
        assert needle in lines[0]
    assert "Traceback" not in proc.stderr


def test_a_missing_file(tmp_path: Path) -> None:
    _one_line_error(sentia("analyze", str(tmp_path / "nope.sql")), 2, "No such file")


def test_a_directory(tmp_path: Path) -> None:
    _one_line_error(sentia_here("analyze", str(tmp_path)), 2, "is a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "locked.sql"
    path.write_text("SELECT 1")
    path.chmod(0)
    _one_line_error(sentia("analyze", str(path)), 2, "Permission denied")


def test_a_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "image.sql"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    _one_line_error(sentia_here("analyze", str(path)), 2, "NUL byte")


def test_undecodable_text_suggests_an_encoding(tmp_path: Path) -> None:
    path = tmp_path / "latin.log"
    path.write_bytes(b"x LOG:  duration: 1 ms  statement: SELECT '\xe9'\n")
    _one_line_error(sentia_here("analyze", str(path)), 2, "line 1", "--encoding")
    assert sentia_here("analyze", str(path), "--encoding", "latin-1").returncode == 0


def test_a_csv_that_is_not_a_pg_stat_statements_export(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("name,age\nbob,3\n")
    _one_line_error(sentia_here("analyze", str(path)), 2, "pg_stat_statements")


def test_a_missing_sqlite_database(workload: Path, tmp_path: Path) -> None:
    proc = sentia_here("analyze", str(workload), "--dsn", str(tmp_path / "none.db"))
    _one_line_error(proc, 2, "no SQLite database")


def test_an_unreachable_postgresql(workload: Path) -> None:
    proc = sentia_here("analyze", str(workload), "--dsn", "postgresql://nobody:pw@127.0.0.1:1/x")
    _one_line_error(proc, 1, "cannot connect")
    assert "pw" not in proc.stderr.replace("cannot connect", "")


def test_bad_options(workload: Path) -> None:
    _one_line_error(sentia_here("analyze", str(workload), "--top", "0"), 2, "--top")
    _one_line_error(sentia_here("analyze", str(workload), "--encoding", "klingon"), 2, "encoding")
    proc = sentia_here("analyze", str(workload), "--format", "xml")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_sql_without_a_subcommand_prints_usage() -> None:
    proc = sentia_here()
    assert proc.returncode == 2
    assert "usage: sentia sql analyze" in proc.stderr


def test_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.sql"
    path.write_text("-- nothing here\n")
    proc = sentia_here("analyze", str(path))
    assert proc.returncode == 0
    assert "no statements found" in proc.stdout


# --------------------------------------------------------------------------- #
# Input that is not SQL, and DSNs of other databases (issue 15, item 13)
# --------------------------------------------------------------------------- #

LETTER = """Dear Ms Smith,

thank you for your letter of 3 May; I'm sorry it took so long to answer.
We will send the invoice (number 20417) next week.

Kind regards,
Bob
"""


def test_prose_is_not_reported_as_a_query_shape(tmp_path: Path) -> None:
    path = tmp_path / "letter.txt"
    path.write_text(LETTER)
    proc = sentia("analyze", str(path))
    _one_line_error(proc, 2, "no SQL in", "do not parse as SQL")
    assert proc.stdout == ""
    assert "20417" not in proc.stderr and "Smith" not in proc.stderr


def test_prose_between_statements_is_flagged_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "mixed.sql"
    path.write_text(
        "SELECT * FROM orders WHERE id = 1;\nplease run this after lunch thanks;\n"
        "SELECT * FROM orders WHERE id = 2;\n"
    )
    proc = sentia("analyze", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "2 statements, 1 shape" in proc.stdout
    assert "1 statement skipped: it does not parse as SQL" in proc.stdout
    assert "lunch" not in proc.stdout
    proc = sentia("analyze", str(path), "--json")
    data = json.loads(proc.stdout)
    assert data["not_sql"] == 1 and data["statements"] == 2


@pytest.mark.parametrize("dsn", ["mysql://root:pw@127.0.0.1/shop", "mssql+pyodbc://x/y"])
def test_an_unsupported_dsn_scheme_is_named(workload: Path, dsn: str) -> None:
    proc = sentia("analyze", str(workload), "--dsn", dsn)
    scheme = dsn.split("://", maxsplit=1)[0]
    _one_line_error(proc, 2, f"unsupported scheme '{scheme}'", "postgresql://", "sqlite:///")
    assert "pw" not in proc.stderr.replace("sqlite", "")
    assert "no SQLite database" not in proc.stderr


def test_a_sqlite_bracket_identifier_leaks_nothing_and_swallows_nothing(tmp_path: Path) -> None:
    # issue 13: "[it's]" used to open a string that ran into the next statement
    path = tmp_path / "sqlite.sql"
    path.write_text(
        "SELECT [it's] FROM t WHERE token = 'tok_zqSECRET';\nSELECT [a] FROM u WHERE b = 0o777;\n"
    )
    text = sentia("analyze", str(path))
    assert text.returncode == 0, text.stderr
    assert "2 statements, 2 shapes" in text.stdout
    data = json.loads(sentia("analyze", str(path), "--json").stdout)
    for out in (text.stdout, json.dumps(data)):
        assert "zqSECRET" not in out and "777" not in out
    assert {s["fingerprint"] for s in data["top"]} == {
        'SELECT "it\'s" FROM t WHERE token = ?',
        'SELECT "a" FROM u WHERE b = ?',
    }
