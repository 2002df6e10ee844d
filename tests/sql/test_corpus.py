"""Redaction and grouping on ~45,000 public statements, libpg_query as the oracle.

The corpus (tests/data/sql_corpus, see its README.md) holds the PostgreSQL
regression suite, sqlglot's fixtures, pgbench's and SQLAlchemy-generated
statements, each with pglast's fingerprint, and literal-only variants of them.
The quick tests take a deterministic sample; the ``slow`` ones (CI runs them)
take everything.

* No constant pglast's parse tree finds appears in a fingerprint or redaction.
* A variant pglast groups with its statement, sentia groups too, except for
  the differences docs/sql.md lists (VALUES rows of different shapes).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import _sqlcorpus as corpus  # noqa: E402

from sentia_core.sql import fingerprint, redact  # noqa: E402
from sentia_core.sql._fingerprint import (  # noqa: E402
    _Bail,
    _fast_fingerprint,
    _tokenize_fingerprint,
)

pytest.importorskip("pglast")

SAMPLE = 2_500


@pytest.fixture(scope="module")
def statements() -> list[corpus.Statement]:
    return corpus.load_statements()


@pytest.fixture(scope="module")
def variants() -> list[corpus.Variant]:
    return corpus.load_variants()


def test_the_corpus_is_broad(
    statements: list[corpus.Statement], variants: list[corpus.Variant]
) -> None:
    sources = {s.src for s in statements}
    assert sources == {"regress", "sqlglot", "pgbench", "sqlalchemy"}
    assert len(statements) >= 10_000
    kinds = {v.kind for v in variants}
    assert kinds == {"values", "forms", "longer", "shorter"}


def _assert_no_leaks(texts: list[str]) -> None:
    result = corpus.leaks(texts, fingerprint, redact)
    assert result.checked >= 0.99 * len(texts)
    assert not result.leaky, result.leaky[:5]


def _assert_grouped(
    statements: list[corpus.Statement], variants: list[corpus.Variant]
) -> corpus.Grouping:
    g = corpus.grouping(fingerprint, statements, variants, corpus.documented_difference)
    assert g.grouped_by_pg > 0.9 * len(variants)
    assert not g.splits, [(v.sql[:200], a, b) for v, a, b in g.splits[:5]]
    return g


def test_no_constant_leaks_from_a_sample(
    statements: list[corpus.Statement], variants: list[corpus.Variant]
) -> None:
    _assert_no_leaks([s.sql for s in corpus.sample(statements, SAMPLE)])
    _assert_no_leaks([v.sql for v in corpus.sample(variants, SAMPLE)])


def test_literal_only_variants_of_a_sample_group_as_libpg_query_groups_them(
    statements: list[corpus.Statement], variants: list[corpus.Variant]
) -> None:
    _assert_grouped(statements, corpus.sample(variants, SAMPLE))


@pytest.mark.slow
def test_no_constant_leaks_from_the_whole_corpus(
    statements: list[corpus.Statement], variants: list[corpus.Variant]
) -> None:
    # every statement, and every variant that writes its literals in new
    # forms (the other variants change values only)
    _assert_no_leaks([s.sql for s in statements] + [v.sql for v in variants if v.kind == "forms"])


@pytest.mark.slow
def test_literal_only_variants_of_the_whole_corpus_group(
    statements: list[corpus.Statement], variants: list[corpus.Variant]
) -> None:
    g = _assert_grouped(statements, variants)
    # the documented VALUES difference stays rare
    assert g.excused <= 0.001 * g.grouped_by_pg


def _assert_paths_agree(texts: list[str], min_share: float) -> None:
    answered = 0
    for text in texts:
        try:
            fast = _fast_fingerprint(text)
        except _Bail:
            continue
        answered += 1
        assert (fast, False) == _tokenize_fingerprint(text), text
    assert answered > min_share * len(texts)  # the fast path takes most real statements


def test_the_fast_path_agrees_with_the_general_path_on_a_sample(
    statements: list[corpus.Statement], variants: list[corpus.Variant]
) -> None:
    _assert_paths_agree([s.sql for s in corpus.sample(statements, SAMPLE)], 0.8)
    # the "forms" variants write literals the fast path leaves to the general one
    _assert_paths_agree([v.sql for v in corpus.sample(variants, SAMPLE)], 0.5)


@pytest.mark.slow
def test_the_fast_path_agrees_with_the_general_path_on_the_whole_corpus(
    statements: list[corpus.Statement], variants: list[corpus.Variant]
) -> None:
    _assert_paths_agree([s.sql for s in statements] + [v.sql for v in variants], 0.6)


def test_the_leak_oracle_sees_a_leak() -> None:
    # Guard against a vacuous oracle: a fingerprint that keeps digits is caught.
    sql = "SELECT 0o7654321, 'tok_zqsecret' FROM t"
    assert corpus.leaked(sql, ["SELECT ? o7654321, ? FROM t"]) == {"o", "7654321"}
    assert corpus.leaked(sql, ["SELECT ?, tok_zqsecret FROM t"]) == {"tok", "zqsecret"}
    assert corpus.leaked(sql, [fingerprint(sql), redact(sql)]) == set()


def test_the_docs_figures_are_rendered_from_the_committed_results() -> None:
    root = Path(__file__).resolve().parents[2]
    docs = root / "docs" / "sql.md"
    rendered = corpus.render_docs(root / "benchmarks" / "results" / "sql.json", docs)
    assert docs.read_text() == rendered, (
        "docs/sql.md figures are stale: python benchmarks/_sqlcorpus.py --render-docs"
    )
