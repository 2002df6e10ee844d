"""SQL tokens for the analyzer: sqlparse's lexer output, normalised.

``tokens`` turns the lexer's stream into :class:`_Tok` records (see
:mod:`._analyze` for the theory of operation): one word per keyword, identifiers
folded as the database folds them, string prefixes and numbered placeholders
merged. Kinds are :class:`TokenKind` members; the short module names
(``_W``, ``_Q``, ...) are the same members, for the inner loops.
"""

from __future__ import annotations

import re
from enum import IntEnum

from sqlparse import lexer as _sqlparse_lexer
from sqlparse import tokens as _T

from sentia_core.errors import UnsafeStatementError

__all__ = ["TokenKind"]


# --------------------------------------------------------------------------- #
# Tokens
# --------------------------------------------------------------------------- #


class TokenKind(IntEnum):
    """What a token is; ``WORD``, ``QUOTED`` and the slot kinds carry text."""

    WORD = 1  # word: keyword or unquoted identifier
    QUOTED = 2  # quoted identifier
    STRING = 3  # string literal (slot)
    NUMBER = 4  # number literal (slot)
    PLACEHOLDER = 5  # placeholder (slot)
    LPAREN = 6
    RPAREN = 7
    LBRACKET = 8
    RBRACKET = 9
    COMMA = 10
    DOT = 11
    SEMI = 12
    CAST = 13  # ::
    OP = 14  # an operator symbol
    STAR = 15
    ERROR = 16  # something the lexer could not classify


# Short names for the lexer's and parser's inner loops: a module global is one
# lookup where ``TokenKind.WORD`` is two, and the grammar reads better with them.
_W = TokenKind.WORD
_Q = TokenKind.QUOTED
_S = TokenKind.STRING
_N = TokenKind.NUMBER
_P = TokenKind.PLACEHOLDER
_LP = TokenKind.LPAREN
_RP = TokenKind.RPAREN
_LB = TokenKind.LBRACKET
_RB = TokenKind.RBRACKET
_COMMA = TokenKind.COMMA
_DOT = TokenKind.DOT
_SEMI = TokenKind.SEMI
_CAST = TokenKind.CAST
_OP = TokenKind.OP
_STAR = TokenKind.STAR
_ERR = TokenKind.ERROR

_SLOT_KINDS = frozenset({_S, _N, _P})
_MAX_DEPTH = 48
_MAX_CHARS = 200_000
_CACHE_CHARS = 16_384

_CMP_SYMBOLS = frozenset({"=", "==", "<", ">", "<=", ">=", "<>", "!=", "<=>"})
_REGEX_SYMBOLS = frozenset({"~", "~*", "!~", "!~*"})
_PATTERN_WORDS = frozenset({"LIKE", "ILIKE", "GLOB", "REGEXP", "MATCH", "SIMILAR", "RLIKE"})
_TYPED_WORDS = frozenset({"INTERVAL", "DATE", "TIME", "TIMESTAMP", "TIMESTAMPTZ"})
_STRING_PREFIXES = frozenset({"E", "X", "B", "N"})
_PSEUDO_COLUMNS = frozenset({"rowid", "oid", "_rowid_", "ctid"})
_TYPE_TAILS = frozenset({"PRECISION", "VARYING", "CHARACTER", "WITH", "WITHOUT", "TIME", "ZONE"})

#: Words that structure a statement and are never identifiers here.
_RESERVED = frozenset(
    {
        "ALL",
        "AND",
        "ANY",
        "AS",
        "ASC",
        "BETWEEN",
        "BY",
        "CASE",
        "CAST",
        "CROSS",
        "DEFAULT",
        "DESC",
        "DISTINCT",
        "ELSE",
        "END",
        "ESCAPE",
        "EXCEPT",
        "EXISTS",
        "FALSE",
        "FETCH",
        "FOR",
        "FROM",
        "FULL",
        "GLOB",
        "GROUP",
        "HAVING",
        "ILIKE",
        "IN",
        "INDEXED",
        "INNER",
        "INTERSECT",
        "INTO",
        "IS",
        "ISNULL",
        "JOIN",
        "LATERAL",
        "LEFT",
        "LIKE",
        "LIMIT",
        "MINUS",
        "NATURAL",
        "NOT",
        "NOTNULL",
        "NULL",
        "NULLS",
        "OFFSET",
        "ON",
        "OR",
        "ORDER",
        "OUTER",
        "REGEXP",
        "RETURNING",
        "RIGHT",
        "SELECT",
        "SET",
        "SIMILAR",
        "SOME",
        "STRAIGHT_JOIN",
        "TABLESAMPLE",
        "THEN",
        "TRUE",
        "UNION",
        "USING",
        "VALUES",
        "WHEN",
        "WHERE",
        "WINDOW",
        "WITH",
        "INSERT",
        "UPDATE",
        "DELETE",
        "MERGE",
        "RLIKE",
    }
)
_QUERY_CONTINUES = frozenset(
    {"UNION", "INTERSECT", "EXCEPT", "MINUS", "ORDER", "LIMIT", "OFFSET", "FETCH"}
)
_JOIN_WORDS = frozenset({"JOIN", "INNER", "LEFT", "RIGHT", "FULL", "CROSS", "NATURAL", "OUTER"})
_CORE_END = frozenset(
    {"UNION", "INTERSECT", "EXCEPT", "MINUS", "ORDER", "LIMIT", "OFFSET", "FETCH", "FOR", "ON"}
    | {"RETURNING", "WINDOW"}
)
#: Words that must never appear in a statement sent to EXPLAIN.
_WRITE_WORDS = frozenset(
    {
        "INSERT",
        "UPDATE",
        "DELETE",
        "MERGE",
        "UPSERT",
        "TRUNCATE",
        "DROP",
        "ALTER",
        "CREATE",
        "GRANT",
        "REVOKE",
        "COPY",
        "VACUUM",
        "ANALYZE",
        "ANALYSE",
        "EXPLAIN",
        "CALL",
        "ATTACH",
        "DETACH",
        "PRAGMA",
        "REINDEX",
        "INTO",
        "PREPARE",
        "EXECUTE",
        "DEALLOCATE",
        "LOCK",
        "LISTEN",
        "NOTIFY",
        "UNLISTEN",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT",
        "RELEASE",
        "LOAD",
        "REFRESH",
        "CLUSTER",
        "DISCARD",
        "RESET",
    }
)
_WORD_RE = re.compile(r"\S+")
_SAFE_OP_RE = re.compile(r"[-+*/%<>=!~^&|#@?]+\Z")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")


class _Tok:
    __slots__ = ("adj", "ident", "kind", "slot", "text", "up")

    def __init__(self, kind: int, text: str, adj: bool) -> None:
        self.kind = kind
        self.text = text
        self.adj = adj  # no whitespace/comment before this token
        self.up = text.upper() if kind == _W else text
        if kind == _W:
            self.ident = text.lower()
        elif kind == _Q:
            self.ident = _unquote(text)
        else:
            self.ident = text
        self.slot = -1

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"_Tok({self.kind}, {self.text!r})"


def _unquote(text: str) -> str:
    if len(text) >= 2:
        if text[0] == '"' and text[-1] == '"':
            return text[1:-1].replace('""', '"')
        if text[0] == "`" and text[-1] == "`":
            return text[1:-1].replace("``", "`")
        if text[0] == "[" and text[-1] == "]":
            return text[1:-1]
    return text


# token-type families, resolved once per sqlparse token type (they are singletons)
_F_SKIP = 0
_F_PLACEHOLDER = 1
_F_SYMBOL = 2
_F_STRING = 3
_F_NUMBER = 4
_F_PUNCT = 5
_F_STAR = 6
_F_ERROR = 7
_F_OPERATOR = 8
_F_WORD = 9
_FAMILY: dict[object, int] = {}
_PUNCT = {"(": _LP, ")": _RP, "[": _LB, "]": _RB, ",": _COMMA, ".": _DOT, ";": _SEMI}
_PUNCT["::"] = _CAST


def _family(ttype: object) -> int:
    fam = _FAMILY.get(ttype)
    if fam is not None:
        return fam
    if ttype in _T.Text.Whitespace or ttype in _T.Newline or ttype in _T.Comment:
        fam = _F_SKIP
    elif ttype in _T.Name.Placeholder:
        fam = _F_PLACEHOLDER
    elif ttype in _T.Literal.String.Symbol:
        fam = _F_SYMBOL
    elif ttype in _T.Literal.Number:
        fam = _F_NUMBER
    elif ttype in _T.Literal.String or ttype is _T.Literal:
        fam = _F_STRING
    elif ttype in _T.Punctuation:
        fam = _F_PUNCT
    elif ttype in _T.Wildcard:
        fam = _F_STAR
    elif ttype in _T.Operator:
        fam = _F_OPERATOR
    elif ttype in _T.Name or ttype in _T.Keyword:
        fam = _F_WORD
    else:
        fam = _F_ERROR
    _FAMILY[ttype] = fam
    return fam


def _classify(fam: int, value: str) -> int:
    if fam == _F_WORD:
        first = value[:1]
        if first in "`[":
            return _Q
        return _N if first.isdigit() else _W  # 1_000 is a number
    if fam == _F_PUNCT:
        return _PUNCT.get(value, _OP)
    if fam == _F_OPERATOR:
        return _W if value[:1].isalpha() else _OP
    return (_ERR, _P, _Q, _S, _N, _ERR, _STAR, _ERR)[fam]


def _tokens(sql: str) -> list[_Tok]:
    """Lex ``sql`` with sqlparse and normalise the tokens (see module doc)."""
    out: list[_Tok] = []
    adj = True
    for ttype, value in _sqlparse_lexer.tokenize(sql):  # type: ignore[no-untyped-call]
        fam = _family(ttype)
        if fam == _F_SKIP:
            adj = False
            continue
        kind = _classify(fam, value)
        if kind == _W and any(ch.isspace() for ch in value):  # ORDER BY, NOT LIKE
            for i, m in enumerate(_WORD_RE.finditer(value)):
                out.append(_Tok(_W, m.group(), adj and i == 0))
            adj = True
            continue
        prev = out[-1] if out else None
        if prev is not None and adj:
            # E'..', X'..', B'..', N'..' literals
            if kind == _S and prev.kind == _W and prev.up in _STRING_PREFIXES:
                out[-1] = _Tok(_S, prev.text + value, prev.adj)
                adj = True
                continue
            # U&'..'
            if (
                kind == _S
                and prev.kind == _OP
                and prev.text == "&"
                and len(out) >= 2
                and out[-2].kind == _W
                and out[-2].up == "U"
                and prev.adj
            ):
                out[-2:] = [_Tok(_S, "U&" + value, out[-2].adj)]
                adj = True
                continue
            # ?1 numbered placeholders, @name placeholders
            if kind == _N and prev.kind == _P and prev.text == "?" and value.isdigit():
                out[-1] = _Tok(_P, "?" + value, prev.adj)
                adj = True
                continue
            if kind == _W and prev.kind == _OP and prev.text == "@":
                out[-1] = _Tok(_P, "@" + value, prev.adj)
                adj = True
                continue
        out.append(_Tok(kind, value, adj))
        adj = True
    return out


def _check_tokens(toks: list[_Tok], start: int, end: int) -> None:
    prev = ""
    for tok in toks[start:end]:
        if tok.kind in (_ERR, _SEMI):
            raise UnsafeStatementError(f"unexpected token {tok.text[:20]!r} in statement")
        if tok.kind == _W:
            if tok.up in _WRITE_WORDS and not (tok.up == "UPDATE" and prev in ("FOR", "KEY", "NO")):
                raise UnsafeStatementError(f"statement contains {tok.up}; refusing to EXPLAIN it")
            if not _IDENT_RE.match(tok.text):
                raise UnsafeStatementError(f"unusual word {tok.text[:20]!r} in statement")
            prev = tok.up
        elif tok.kind == _OP and not _SAFE_OP_RE.match(tok.text):
            raise UnsafeStatementError(f"unusual operator {tok.text[:20]!r} in statement")
        elif tok.kind == _Q and (
            tok.text[:1] not in '"`[' or tok.text[-1:] not in '"`]' or len(tok.text) < 2
        ):
            raise UnsafeStatementError("malformed quoted identifier in statement")


def _tokens_ok(toks: list[_Tok]) -> bool:
    try:
        _check_tokens(toks, 0, len(toks))
    except UnsafeStatementError:
        return False
    return True
