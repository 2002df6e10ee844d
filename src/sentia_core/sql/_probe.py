"""EXPLAIN probes: a statement rebuilt from allow-listed tokens, literals as slots.

Only :mod:`._verify` uses this: see :func:`probe`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sentia_core.errors import UnsafeStatementError

from ._analysis import ParameterSlot
from ._analyze import _number_slots, _split_first, analyze
from ._expr import _TooDeep
from ._parser import _Parser
from ._tokens import _MAX_CHARS, _N, _SLOT_KINDS, _TYPED_WORDS, _check_tokens, _Tok, _tokens

__all__ = ["Probe", "probe"]

# --------------------------------------------------------------------------- #
# EXPLAIN probes (used by _verify)
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class Probe:
    """A statement ready for EXPLAIN: text pieces with slots between them.

    ``parts`` alternates verbatim SQL (``str``) and :class:`ParameterSlot`
    markers where a driver placeholder goes. ``rewritten`` is True when the
    statement was an UPDATE/DELETE/INSERT ... SELECT and ``parts`` is the
    read-only SELECT over the same tables and WHERE clause.
    """

    parts: tuple[str | ParameterSlot, ...]
    rewritten: bool = False


def _render_tokens(
    toks: list[_Tok], start: int, end: int, slots: dict[int, ParameterSlot], keep: set[int]
) -> list[str | ParameterSlot]:
    out: list[str | ParameterSlot] = []
    i = start
    while i < end:
        tok = toks[i]
        if tok.kind in _SLOT_KINDS and i not in keep:
            slot = slots.get(tok.slot, ParameterSlot(tok.slot))
            if out and isinstance(out[-1], str) and out[-1].upper() in _TYPED_WORDS:
                typed = str(out.pop())
                out.extend(["CAST(", slot, f"AS {typed.upper()})"])
            else:
                out.append(slot)
        elif tok.kind in _SLOT_KINDS:
            out.append(tok.text if tok.kind == _N and tok.text.isdigit() else "NULL")
        else:
            out.append(tok.text)
        i += 1
    return out


def probe(sql: str, *, rewrite_writes: bool = True) -> Probe:
    """Turn a statement into a :class:`Probe` that is safe to EXPLAIN.

    A SELECT (or VALUES) is kept as it is. With ``rewrite_writes``, an
    UPDATE or DELETE becomes ``SELECT 1 FROM <target>[, <FROM/USING list>]
    WHERE <its WHERE>`` and an INSERT ... SELECT becomes its SELECT: the
    data-changing statement itself is never explained. Every literal and
    placeholder becomes a slot. The text is rebuilt only from tokens checked
    against an allow-list (no ``;``, no data-changing or session word, no
    unclassified character), so what reaches the database is what was checked.

    Raises:
        UnsafeStatementError: a data-changing statement that cannot be
            rewritten (or ``rewrite_writes=False``), several statements, DDL,
            ``SELECT ... INTO``, a data-modifying CTE, or unusual tokens.
    """
    if not isinstance(sql, str) or len(sql) > _MAX_CHARS:
        raise UnsafeStatementError("not a statement that can be explained")
    toks = _tokens(sql)
    first, more = _split_first(toks)
    if more:
        raise UnsafeStatementError("several statements; refusing to EXPLAIN")
    _number_slots(first)
    analysis = analyze(sql)
    slots = {p.index: p for p in analysis.parameters}
    parser = _Parser(first)
    try:
        stmt = parser.statement()
    except (_TooDeep, RecursionError) as exc:
        raise UnsafeStatementError("statement nested too deeply to check") from exc
    keep = set(parser.keep)
    if stmt.kind in ("select", "values"):
        if stmt.writes_in_ctes or any(c.into for c in stmt.cores):
            raise UnsafeStatementError("statement writes data (data-modifying CTE or INTO)")
        _check_tokens(first, 0, len(first))
        return Probe(tuple(_render_tokens(first, 0, len(first), slots, keep)))
    if not rewrite_writes or stmt.kind not in ("update", "delete", "insert"):
        raise UnsafeStatementError(
            f"{stmt.kind.upper()} statements are never explained (they change data)"
        )
    if stmt.ctes:
        raise UnsafeStatementError("a data-changing statement with CTEs cannot be rewritten")
    if stmt.kind == "insert":
        s0, s1 = stmt.source_span
        if stmt.source is None or s0 == s1 or stmt.source.kind != "select":
            raise UnsafeStatementError("INSERT without a SELECT has nothing to explain")
        _check_tokens(first, s0, s1)
        return Probe(tuple(_render_tokens(first, s0, s1, slots, keep)), rewritten=True)
    w0, w1 = stmt.where_span
    t0, t1 = stmt.target_span
    if w0 == w1 or t0 == t1:
        raise UnsafeStatementError(f"{stmt.kind.upper()} without WHERE has nothing to explain")
    parts: list[str | ParameterSlot] = ["SELECT 1 FROM"]
    _check_tokens(first, t0, t1)
    parts += _render_tokens(first, t0, t1, slots, keep)
    f0, f1 = stmt.from_span
    if f0 != f1:
        _check_tokens(first, f0, f1)
        parts.append(",")
        parts += _render_tokens(first, f0, f1, slots, keep)
    _check_tokens(first, w0, w1)
    parts.append("WHERE")
    parts += _render_tokens(first, w0, w1, slots, keep)
    return Probe(tuple(parts), rewritten=True)
