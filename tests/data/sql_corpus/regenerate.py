"""Regenerate the real-world SQL corpus and its literal-changed variants.

Run: ``python tests/data/sql_corpus/regenerate.py`` (needs network access to
PyPI through pip, pglast and SQLAlchemy). It writes ``corpus.jsonl.gz`` and
``variants.jsonl.gz`` next to itself; the output is deterministic for given
source versions (printed, and stored in the first line of each file).

Sources (see LICENSES.md for their terms):

* ``regress``: the PostgreSQL regression suite SQL vendored in libpg_query,
  from the pglast source distribution (``pip download --no-binary :all:
  --no-deps pglast``); psql meta-commands and ``COPY ... FROM stdin`` data
  are dropped.
* ``sqlglot``: sqlglot's test fixtures (``identity.sql``, ``pretty.sql`` and
  the optimizer fixtures, except the TPC-H and TPC-DS ones, whose TPC terms
  are not the MIT licence of the rest).
* ``pgbench``: the statements of pgbench's built-in TPC-B-like, simple-update
  and select-only scripts, with values drawn as pgbench draws them.
* ``sqlalchemy``: statements SQLAlchemy 2 compiles for a small shop schema,
  on the PostgreSQL dialect, with literal values rendered inline.

A statement is kept when libpg_query (pglast) parses and fingerprints it on
its own. Each record holds ``src``, ``sql`` and ``pg`` (pglast's fingerprint).

Variants are literal-only changes of a corpus statement, each kept when
pglast parses it: ``values`` (every constant changed, same form), ``forms``
(numbers and strings written in another form of the same kind: hex, octal,
binary, underscores, exponents, ``E''``, ``$$``, ``U&''``, continuations),
``longer`` / ``shorter`` (an ``IN``, ``ARRAY`` or ``VALUES`` list with one
element or row more or less). Each record holds ``of`` (the corpus index),
``kind``, ``sql`` and ``pg``.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pglast
from pglast import parser

HERE = Path(__file__).resolve().parent
MAX_LENGTH = 20_000  # longer statements are left out (a few regression-suite blobs)
CONSTANTS = {"ICONST", "FCONST", "SCONST", "BCONST", "XCONST", "USCONST"}


def download(name: str, dest: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"]
        + ["--quiet", name, "-d", str(dest)],
        check=True,
    )
    (archive,) = dest.glob(f"{name}-*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    (root,) = (p for p in dest.iterdir() if p.is_dir() and p.name.startswith(name + "-"))
    return root


def pg_fingerprint(sql: str) -> str | None:
    try:
        parser.parse_sql(sql)
        return str(pglast.fingerprint(sql))
    except Exception:  # noqa: BLE001 - anything pglast refuses is left out
        return None


_COPY_STDIN = re.compile(r"\bfrom\s+stdin\b", re.IGNORECASE)


def psql_script_statements(text: str) -> Iterator[str]:
    """Statements of a psql script: meta-commands and COPY data dropped."""
    lines: list[str] = []
    in_copy = False
    for line in text.splitlines():
        if in_copy:
            if line.startswith("\\."):
                in_copy = False
            continue
        if line.lstrip().startswith("\\"):
            continue
        lines.append(line)
        if _COPY_STDIN.search(line) and line.rstrip().endswith(";"):
            in_copy = True
    script = "\n".join(lines)
    try:
        pieces = pglast.split(script, with_parser=False)
    except Exception:  # noqa: BLE001 - a script the scanner cannot split
        return
    for piece in pieces:
        if piece.strip():
            yield piece.strip()


def regress(root: Path) -> Iterator[tuple[str, str]]:
    folder = root / "libpg_query" / "test" / "sql" / "postgres_regress"
    for path in sorted(folder.glob("*.sql")):
        for sql in psql_script_statements(path.read_text("utf-8", "replace")):
            yield "regress", sql


def sqlglot_fixtures(root: Path) -> Iterator[tuple[str, str]]:
    fixtures = root / "tests" / "fixtures"
    paths = [fixtures / "identity.sql", fixtures / "pretty.sql"]
    paths += sorted((fixtures / "optimizer").glob("*.sql"))
    for path in paths:
        text = path.read_text("utf-8")
        if path.name == "identity.sql":
            for line in text.splitlines():
                if line.strip():
                    yield "sqlglot", line.strip()
            continue
        text = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
        for sql in psql_script_statements(text):
            yield "sqlglot", sql


def pgbench(rng: random.Random) -> Iterator[tuple[str, str]]:
    for _ in range(300):
        aid = rng.randint(1, 100_000 * 10)
        bid = rng.randint(1, 10)
        tid = rng.randint(1, 10 * 10)
        delta = rng.randint(-5000, 5000)
        yield (
            "pgbench",
            f"UPDATE pgbench_accounts SET abalance = abalance + {delta} WHERE aid = {aid}",
        )
        yield "pgbench", f"SELECT abalance FROM pgbench_accounts WHERE aid = {aid}"
        yield (
            "pgbench",
            f"UPDATE pgbench_tellers SET tbalance = tbalance + {delta} WHERE tid = {tid}",
        )
        yield (
            "pgbench",
            f"UPDATE pgbench_branches SET bbalance = bbalance + {delta} WHERE bid = {bid}",
        )
        yield (
            "pgbench",
            "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
            f"VALUES ({tid}, {bid}, {aid}, {delta}, CURRENT_TIMESTAMP)",
        )


def sqlalchemy_statements(rng: random.Random) -> Iterator[tuple[str, str]]:
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql

    md = sa.MetaData()
    customers = sa.Table(
        "customers",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(200)),
        sa.Column("country", sa.String(2)),
        sa.Column("created_at", sa.DateTime),
    )
    orders = sa.Table(
        "orders",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.ForeignKey("customers.id")),
        sa.Column("status", sa.String(20)),
        sa.Column("total", sa.Numeric(10, 2)),
        sa.Column("created_at", sa.DateTime),
    )
    lines = sa.Table(
        "order_lines",
        md,
        sa.Column("order_id", sa.ForeignKey("orders.id")),
        sa.Column("sku", sa.String(40)),
        sa.Column("qty", sa.Integer),
        sa.Column("price", sa.Numeric(10, 2)),
    )
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]

    def render(stmt: sa.ClauseElement) -> str:
        return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))

    statuses = ["new", "paid", "shipped", "cancelled", "it's complicated"]
    for _ in range(150):
        n = rng.randint(1, 10_000)
        k = rng.randint(1, 6)
        status = rng.choice(statuses)
        yield "sqlalchemy", render(sa.select(orders).where(orders.c.id == n))
        yield (
            "sqlalchemy",
            render(
                sa.select(orders.c.id, orders.c.total, customers.c.email)
                .join(customers, customers.c.id == orders.c.customer_id)
                .where(orders.c.status == status, orders.c.total >= n / 7)
                .order_by(orders.c.created_at.desc())
                .limit(k * 10)
                .offset(n % 100)
            ),
        )
        yield (
            "sqlalchemy",
            render(
                sa.select(customers).where(
                    customers.c.country.in_(rng.sample(["DE", "FR", "IT", "ES", "NL", "PL"], k))
                )
            ),
        )
        yield (
            "sqlalchemy",
            render(
                sa.select(orders.c.customer_id, sa.func.count(), sa.func.sum(orders.c.total))
                .where(orders.c.created_at.between("2024-01-01", f"2024-{k:02d}-28"))
                .group_by(orders.c.customer_id)
                .having(sa.func.count() > k)
            ),
        )
        yield (
            "sqlalchemy",
            render(
                sa.insert(lines).values(
                    [
                        {"order_id": n, "sku": f"sku-{n}-{i}", "qty": i, "price": i * 1.5}
                        for i in range(k)
                    ]
                )
            ),
        )
        yield (
            "sqlalchemy",
            render(sa.update(orders).where(orders.c.id == n).values(status=status, total=n / 3)),
        )
        yield (
            "sqlalchemy",
            render(sa.delete(lines).where(lines.c.order_id == n, lines.c.sku.like(f"sku-{k}%"))),
        )
        sub = sa.select(orders.c.customer_id).where(orders.c.total > n).scalar_subquery()
        yield "sqlalchemy", render(sa.select(customers.c.email).where(customers.c.id.in_(sub)))
        cte = (
            sa.select(orders.c.customer_id, sa.func.max(orders.c.total).label("m"))
            .group_by(orders.c.customer_id)
            .cte("best")
        )
        yield "sqlalchemy", render(sa.select(cte).where(cte.c.m > n).limit(k))


# -- variants --------------------------------------------------------------------


def constant_tokens(sql: str) -> list[tuple[int, int, str]]:
    return [(t.start, t.end + 1, t.name) for t in parser.scan(sql) if t.name in CONSTANTS]


def new_number(text: str, rng: random.Random, other_form: bool) -> str:
    low = text.lower()
    if low.startswith(("0x", "0o", "0b")) or "_" in text:
        base = {"x": 16, "o": 8, "b": 2}.get(low[1:2], 10)
        digits = "0123456789abcdef"[:base]
        body = (
            "".join(c if c in "_xob" else rng.choice(digits[1:]) for c in low[2:] if c)
            if base != 10
            else None
        )
        if body is not None:
            return text[:2] + body + rng.choice(digits)
        return "".join(rng.choice("123456789") if c.isdigit() else c for c in text)
    is_int = text.isdigit()
    if not other_form:
        if is_int:
            return str(rng.randint(2, 10 ** rng.randint(1, 12)))
        return f"{rng.randint(0, 99999)}.{rng.randint(0, 9999)}"
    if is_int:
        value = rng.randint(1, 10**6)
        return rng.choice([hex(value), oct(value), bin(value)[:12], f"{value:_}", f"1_{value}"])
    return rng.choice(
        [
            f"{rng.randint(1, 9)}.{rng.randint(0, 99)}e{rng.randint(1, 9)}",
            f"1_000.{rng.randint(1, 9)}_5",
            ".5",
            "1.",
        ]
    )


def new_string(text: str, rng: random.Random, other_form: bool) -> str | None:
    """Another string constant of the same kind, or None to keep it."""
    if text.startswith("$"):
        tag = text[: text.index("$", 1) + 1]
        return f"{tag}v{rng.randint(0, 10**6)}{tag}"
    if text[:1] in "bBxX" and text[1:2] == "'":
        return None  # bit strings: their length is part of the value's type
    if text[:1] in "eE" and text[1:2] == "'":
        return f"E'it\\'s v{rng.randint(0, 10**6)}'"
    if text[:2] in ("U&", "u&"):
        return f"U&'d\\0061t{rng.randint(0, 10**6)}'"
    if text[:1] in "nN":
        return f"N'v{rng.randint(0, 10**6)}'"
    if not text.startswith("'"):
        return None
    if not other_form:
        return "'" + "".join(rng.choice("abcdefghij kl") for _ in range(rng.randint(0, 12))) + "'"
    n = rng.randint(0, 10**6)
    return rng.choice(
        [f"$$v{n}$$", f"$q$v{n}$q$", f"E'v{n}\\n'", f"'o''{n}'", f"'first{n}'\n' - next'"]
    )


def rewrite_constants(sql: str, rng: random.Random, other_form: bool) -> str:
    out: list[str] = []
    pos = 0
    for start, end, name in constant_tokens(sql):
        text = sql[start:end]
        if name in ("ICONST", "FCONST"):
            new: str | None = new_number(text, rng, other_form)
        elif name == "SCONST" or name == "USCONST":
            new = new_string(text, rng, other_form)
        else:
            new = None
        if new is None:
            continue
        if start and (sql[start - 1].isalnum() or sql[start - 1] == "_") and new[:1] != text[:1]:
            continue  # jsonb'..' -> jsonbE'..' would change the type name
        out.append(sql[pos:start])
        out.append(new)
        pos = end
    out.append(sql[pos:])
    return "".join(out)


def list_variants(sql: str, rng: random.Random) -> Iterator[tuple[str, str]]:
    """Variants with one list element (IN, ARRAY) or VALUES row more and less."""
    toks = parser.scan(sql)
    names = [t.name for t in toks]
    for i, t in enumerate(toks):
        if t.name in ("IN_P", "ARRAY") or (t.name == "VALUES" and i + 1 < len(toks)):
            opener, closer = (
                ("ASCII_91", "ASCII_93") if t.name == "ARRAY" else ("ASCII_40", "ASCII_41")
            )
            if i + 1 >= len(toks) or names[i + 1] != opener:
                continue
            # the elements: constants separated by commas (VALUES: whole rows)
            depth = 0
            j = i + 1
            commas: list[int] = []
            while j < len(toks):
                if names[j] in ("ASCII_40", "ASCII_91"):
                    depth += 1
                elif names[j] in ("ASCII_41", "ASCII_93"):
                    depth -= 1
                    if depth == 0:
                        break
                elif names[j] == "ASCII_44" and depth == 1:
                    commas.append(j)
                j += 1
            if j >= len(toks):
                continue
            if t.name == "VALUES":
                # rows: ( ... ) , ( ... ) at the VALUES level
                first_end = j
                start = toks[i + 1].start
                row = sql[start : toks[first_end].end + 1]
                yield (
                    "longer",
                    sql[: toks[first_end].end + 1]
                    + ", "
                    + rewrite_constants(row, rng, False)
                    + sql[toks[first_end].end + 1 :],
                )
                if (
                    first_end + 2 < len(toks)
                    and names[first_end + 1] == "ASCII_44"
                    and names[first_end + 2] == "ASCII_40"
                ):
                    k, depth = first_end + 2, 0
                    while k < len(toks):
                        if names[k] == "ASCII_40":
                            depth += 1
                        elif names[k] == "ASCII_41":
                            depth -= 1
                            if depth == 0:
                                break
                        k += 1
                    if k < len(toks):
                        yield "shorter", sql[: toks[first_end].end + 1] + sql[toks[k].end + 1 :]
                continue
            items = names[i + 2 : j]
            if not items or any(
                n not in CONSTANTS and n not in ("ASCII_44", "ASCII_45") for n in items
            ):
                continue
            last = toks[commas[-1] + 1].start if commas else toks[i + 2].start
            elem = sql[last : toks[j - 1].end + 1]
            yield (
                "longer",
                sql[: toks[j].start]
                + ", "
                + rewrite_constants(elem, rng, False)
                + sql[toks[j].start :],
            )
            if commas:
                yield "shorter", sql[: toks[commas[-1]].start] + sql[toks[j].start :]


def variants(sql: str, rng: random.Random) -> Iterator[tuple[str, str]]:
    if not constant_tokens(sql):
        return
    yield "values", rewrite_constants(sql, rng, False)
    yield "forms", rewrite_constants(sql, rng, True)
    yield from list_variants(sql, rng)


def write(path: Path, header: dict[str, object], records: list[dict[str, object]]) -> None:
    with gzip.GzipFile(path, "wb", mtime=0) as raw:
        raw.write((json.dumps(header) + "\n").encode())
        for rec in records:
            raw.write((json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass"))


def main() -> None:
    rng = random.Random(13)
    with tempfile.TemporaryDirectory() as tmp:
        pg_root = download("pglast", Path(tmp) / "pglast")
        sg_root = download("sqlglot", Path(tmp) / "sqlglot")
        import sqlalchemy

        header = {
            "pglast": pg_root.name,
            "sqlglot": sg_root.name,
            "sqlalchemy": sqlalchemy.__version__,
        }
        seen: set[str] = set()
        corpus: list[dict[str, object]] = []
        sources = [
            regress(pg_root),
            sqlglot_fixtures(sg_root),
            pgbench(rng),
            sqlalchemy_statements(rng),
        ]
        for source in sources:
            for src, sql in source:
                if sql in seen or len(sql) > MAX_LENGTH:
                    continue
                seen.add(sql)
                fp = pg_fingerprint(sql)
                if fp is not None:
                    corpus.append({"src": src, "sql": sql, "pg": fp})
    out: list[dict[str, object]] = []
    for index, rec in enumerate(corpus):
        sql = str(rec["sql"])
        done: set[str] = {sql}
        for kind, variant in variants(sql, rng):
            if variant in done or len(variant) > MAX_LENGTH:
                continue
            done.add(variant)
            fp = pg_fingerprint(variant)
            if fp is not None:
                out.append({"of": index, "kind": kind, "sql": variant, "pg": fp})
    write(HERE / "corpus.jsonl.gz", header, corpus)
    write(HERE / "variants.jsonl.gz", header, out)
    counts: dict[str, int] = {}
    for rec in corpus:
        counts[str(rec["src"])] = counts.get(str(rec["src"]), 0) + 1
    print(header, counts, "statements:", len(corpus), "variants:", len(out))


if __name__ == "__main__":
    main()
