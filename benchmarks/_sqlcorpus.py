"""The real-world SQL corpus and the checks run over it (tests and benchmarks/sql.py).

The corpus (``tests/data/sql_corpus``, built by its ``regenerate.py``) holds
public statements with pglast's fingerprint of each, and literal-only variants
of them. This module loads it and measures three things against libpg_query
(through pglast, a test/benchmark dependency only):

* leaks: a constant that pglast's parse tree finds in a statement (an
  ``A_Const`` node, located through the scanner's token at its position) whose
  letters or digits appear in the fingerprint or the redaction, as a whole
  alphanumeric run that the statement does not also hold outside its
  constants;
* splits: a variant that pglast groups with its statement but sentia does not;
* merges: statements sentia groups together that pglast keeps apart.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORPUS_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "sql_corpus"
CONSTANTS = frozenset({"ICONST", "FCONST", "SCONST", "BCONST", "XCONST", "USCONST"})
_RUN = re.compile(r"[A-Za-z]+|[0-9]+")


@dataclass(frozen=True, slots=True)
class Statement:
    index: int
    src: str
    sql: str
    pg: str


@dataclass(frozen=True, slots=True)
class Variant:
    of: int
    kind: str
    sql: str
    pg: str


def available() -> bool:
    return (CORPUS_DIR / "corpus.jsonl.gz").exists()


def _records(name: str) -> Iterator[dict[str, Any]]:
    with gzip.open(CORPUS_DIR / name, "rt", encoding="utf-8", errors="surrogatepass") as f:
        next(f)  # the header: source versions
        for line in f:
            yield json.loads(line)


def load_statements() -> list[Statement]:
    return [
        Statement(i, r["src"], r["sql"], r["pg"]) for i, r in enumerate(_records("corpus.jsonl.gz"))
    ]


def load_variants() -> list[Variant]:
    return [Variant(r["of"], r["kind"], r["sql"], r["pg"]) for r in _records("variants.jsonl.gz")]


def sample(items: list[Any], n: int) -> list[Any]:
    """Every k-th item, so that about ``n`` remain (deterministic)."""
    if n <= 0 or n >= len(items):
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


_JSON_STR = r'"(?:[^"\\]|\\.)*"'
_A_CONST = re.compile(
    rf'"A_Const":\{{((?:{_JSON_STR}|[^{{}}"]|\{{(?:{_JSON_STR}|[^{{}}"])*\}})*)\}}'
)
_LOCATION = re.compile(r'"location":(-?\d+)\Z')


def _const_locations(tree: str) -> set[int]:
    """Byte offsets of the non-NULL ``A_Const`` nodes in pglast's JSON tree."""
    found: set[int] = set()
    for body in _A_CONST.findall(tree):
        m = _LOCATION.search(body)
        if m is not None and '"isnull":true' not in body:
            found.add(int(m.group(1)))
    return found


def constants(sql: str) -> list[tuple[int, int]]:
    """Spans (start, end) of the constants pglast's parse tree finds in ``sql``.

    A string continued on the next line (``'a'\\n'b'``) is one constant: every
    string token that follows a constant's string token belongs to it. A
    character offset is derived from pglast's byte offsets.
    """
    from pglast import parser

    raw = sql.encode("utf-8", "surrogatepass")
    locations = _const_locations(parser.parse_sql_json(sql))
    if not locations:
        return []
    spans: list[tuple[int, int]] = []
    previous_const = False
    for tok in parser.scan(sql):
        if tok.name in CONSTANTS and (tok.start in locations or previous_const):
            start = len(raw[: tok.start].decode("utf-8", "surrogatepass"))
            end = start + len(raw[tok.start : tok.end + 1].decode("utf-8", "surrogatepass"))
            spans.append((start, end))
            previous_const = tok.name == "SCONST"
        elif tok.name in ("ASCII_45", "ASCII_43") and tok.start in locations:
            previous_const = False  # a sign: the number follows
        else:
            previous_const = False
    return spans


def _body(text: str) -> str:
    """A constant's text without its prefix and quotes."""
    if text.startswith("$"):
        tag_end = text.index("$", 1) + 1
        return text[tag_end:-tag_end]
    if text[:2] in ("U&", "u&"):
        return text[3:-1]
    if text[:1] in "EeBbXxNn" and text[1:2] == "'":
        return text[2:-1]
    return text.strip("'")


def leaked(
    sql: str, outputs: Iterable[str], spans: list[tuple[int, int]] | None = None
) -> set[str]:
    """The pieces of ``sql``'s constants that appear in any of ``outputs``."""
    if spans is None:
        spans = constants(sql)
    if not spans:
        return set()
    pieces: set[str] = set()
    outside: list[str] = []
    pos = 0
    for start, end in spans:
        outside.append(sql[pos:start])
        pieces.update(p.lower() for p in _RUN.findall(_body(sql[start:end])))
        pos = end
    outside.append(sql[pos:])
    pieces -= {p.lower() for p in _RUN.findall(" ".join(outside))}
    if not pieces:
        return set()
    shown = {p.lower() for out in outputs for p in _RUN.findall(out)}
    return pieces & shown


@dataclass(slots=True)
class Grouping:
    """Splits and merges of one fingerprint function against pglast."""

    variants: int = 0
    grouped_by_pg: int = 0
    splits: list[tuple[Variant, str, str]] = field(default_factory=list)
    excused: int = 0
    split_kinds: dict[str, int] = field(default_factory=dict)
    statements: int = 0
    merged_statements: int = 0
    merged_groups: int = 0
    merge_examples: list[list[str]] = field(default_factory=list)


def grouping(
    fp: Callable[[str], str],
    statements: list[Statement],
    variants: list[Variant],
    excused: Callable[[Variant, str, str], bool] = lambda v, a, b: False,
) -> Grouping:
    result = Grouping()
    by_index = {s.index: s for s in statements}
    cache: dict[int, str] = {}
    for v in variants:
        base = by_index.get(v.of)
        if base is None:
            continue
        result.variants += 1
        if v.pg != base.pg:
            continue
        result.grouped_by_pg += 1
        mine = cache.get(v.of)
        if mine is None:
            mine = cache[v.of] = fp(base.sql)
        theirs = fp(v.sql)
        if theirs == mine:
            continue
        if excused(v, mine, theirs):
            result.excused += 1
        else:
            result.splits.append((v, mine, theirs))
            result.split_kinds[v.kind] = result.split_kinds.get(v.kind, 0) + 1
    groups: dict[str, dict[str, list[str]]] = {}
    for s in statements:
        mine = cache.get(s.index)
        if mine is None:
            mine = fp(s.sql)
        groups.setdefault(mine, {}).setdefault(s.pg, []).append(s.sql)
    result.statements = len(statements)
    for by_pg in groups.values():
        if len(by_pg) > 1:
            result.merged_groups += 1
            # every statement outside the group's largest pglast class is merged
            sizes = sorted((len(v) for v in by_pg.values()), reverse=True)
            result.merged_statements += sum(sizes[1:])
            if len(result.merge_examples) < 20:
                result.merge_examples.append([v[0] for v in by_pg.values()][:3])
    return result


_KEPT_ROWS = re.compile(r"\bVALUES \(.*\), \(")


def documented_difference(v: Variant, mine: str, theirs: str) -> bool:
    """Whether a split is one docs/sql.md lists as deliberate.

    VALUES rows of different shapes are all kept (``(1, DEFAULT), (2, 3)``
    keeps both rows; libpg_query drops every row but the structure of the
    first), so adding or removing such a row changes the fingerprint.
    """
    return v.kind in ("longer", "shorter") and (
        _KEPT_ROWS.search(mine) is not None or _KEPT_ROWS.search(theirs) is not None
    )


@dataclass(slots=True)
class Leaks:
    checked: int = 0
    unparsed: int = 0
    leaky: list[tuple[str, set[str]]] = field(default_factory=list)


def leaks(
    texts: Iterable[str], fingerprint: Callable[[str], str], redact: Callable[[str], str]
) -> Leaks:
    result = Leaks()
    for sql in texts:
        try:
            spans = constants(sql)
        except Exception:
            result.unparsed += 1
            continue
        result.checked += 1
        found = leaked(sql, (fingerprint(sql), redact(sql)), spans)
        if found:
            result.leaky.append((sql, found))
    return result


# -- the figures in docs/sql.md ------------------------------------------------------

DOCS_BEGIN = "<!-- sql-figures:begin (python benchmarks/_sqlcorpus.py --render-docs) -->"
DOCS_END = "<!-- sql-figures:end -->"


def render_figures(data: dict[str, Any]) -> str:
    """The "Measured" figures of docs/sql.md, from benchmarks/sql.py's JSON."""
    quick = " (a `--quick` run: indicative only)" if data.get("quick") else ""
    notes = data.get("notes", {})
    lines = [
        f"`python benchmarks/sql.py --json benchmarks/results/sql.json`{quick}, "
        f"CPython {data.get('python')}, {data.get('machine')}.",
        "",
        "**The corpus** (`tests/data/sql_corpus`): "
        f"{notes.get('corpus: statements timed', '?')} statements timed, each "
        "fingerprinted by both libraries alternately; a figure is the median over "
        "statements of the per-statement time, the ratio the median of the "
        "per-statement ratios (sentia/pglast: below 1 is faster).",
        "",
        "| statements | count | sentia `fingerprint` | `pglast.fingerprint` "
        "| median ratio | total-time ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    others = []
    for sec in data.get("sections", []):
        title = sec["title"]
        if not title.startswith("corpus, "):
            others.append(sec)
            continue
        label, _, rest = title[len("corpus, ") :].partition(" (")
        count = rest.split(" ", 1)[0]
        med = sec["medians"]
        ratios = {r["label"]: r["value"] for r in sec["ratios"]}
        lines.append(
            f"| {label} | {count} | {med['sentia fingerprint'] / 1000:.1f} µs "
            f"| {med['pglast.fingerprint'] / 1000:.1f} µs "
            f"| {ratios['median per-statement fingerprint / pglast']:.2f} "
            f"| {ratios['total time fingerprint / pglast']:.2f} |"
        )
    share = notes.get("corpus: fast-path share")
    lines += [
        "",
        "| check against libpg_query | result |",
        "| --- | ---: |",
        f"| fast-path share of statements | {share * 100:.1f} % |"
        if isinstance(share, (int, float))
        else "| fast-path share of statements | ? |",
        f"| texts checked for leaks (statements and new-form variants) "
        f"| {notes.get('corpus: texts checked for leaks', '?')} |",
        f"| leaks | {notes.get('corpus: leaks', '?')} |",
        f"| variants pglast groups with their statement "
        f"| {notes.get('corpus: variants pglast groups with their statement', '?')} |",
        f"| splits outside documented differences "
        f"| {notes.get('corpus: splits outside documented differences', '?')} |",
        f"| splits from the documented VALUES difference "
        f"| {notes.get('corpus: splits from the documented VALUES difference', '?')} |",
        f"| statements merged that pglast keeps apart "
        f"| {notes.get('corpus: statements merged that pglast keeps apart', '?')} |",
        "",
        "**Hand-written cases** (median ns per operation over rounds in which the "
        "cases alternate):",
        "",
        "| case | ratio | target |",
        "| --- | ---: | ---: |",
    ]
    for sec in others:
        for r in sec["ratios"]:
            target = f"<= {r['target']}" if r["target"] else ""
            lines.append(f"| {sec['title']}: {r['label']} | {r['value']:.2f} | {target} |")
    return "\n".join(lines) + "\n"


def render_docs(results: Path, docs: Path) -> str:
    """``docs`` with its figures block replaced by the rendering of ``results``."""
    text = docs.read_text()
    start = text.index(DOCS_BEGIN) + len(DOCS_BEGIN)
    end = text.index(DOCS_END)
    return text[:start] + "\n" + render_figures(json.loads(results.read_text())) + text[end:]


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--render-docs"]:
        raise SystemExit("usage: python benchmarks/_sqlcorpus.py --render-docs")
    root = Path(__file__).resolve().parent.parent
    doc = root / "docs" / "sql.md"
    doc.write_text(render_docs(root / "benchmarks" / "results" / "sql.json", doc))
