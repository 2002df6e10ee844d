"""Fingerprinting and redaction of SQL text, without a parser.

Theory of operation
-------------------
A fingerprint is the statement's *shape*: comments removed, keywords
upper-cased, identifiers as written (quoted ones stay quoted), every literal
and driver placeholder replaced by ``?``, spacing canonical, ``IN`` lists of
literals cut to their first element, extra ``VALUES`` rows dropped and
``ARRAY[...]`` of literals folded to ``?``.

There are two implementations of the one definition:

* :func:`_tokenize_fingerprint`, the *general path*, is the definition. One
  compiled regular expression, :data:`_TOKEN`, is matched repeatedly from a
  position; each match skips whitespace and comments and captures one token
  in exactly one group, so ``m.lastindex`` tells the token's kind. A loop
  rewrites the stream, keeping a small stack per open bracket (where the
  group began in the output, whether it holds only literals, where its first
  comma went) so closing an ``IN (...)`` group can cut the output back.
  It handles everything: nested comments, dollar quotes, ``E''`` escapes,
  unterminated literals, odd characters.

* :func:`_fast_fingerprint`, the *fast path*. In CPython every regex match
  driven from Python costs about as much as a dozen C-level string scans, so
  a per-token loop cannot keep up with ``pglast.fingerprint`` (C). The fast
  path does the same job with whole-string C operations: ``str.split`` on
  quotes replaces string literals, ``str.replace`` spaces out punctuation,
  ``str.split`` yields the tokens, and one comprehension maps each token
  through a cache (keywords upper-cased, numbers and placeholders to ``?``;
  a token never seen before is cut up by the general tokenizer itself, so
  both paths agree on what a token is). Context rules (signs, ``IS NULL``,
  ``IN`` lists, ``VALUES`` rows) run only when their trigger token is there.
  Whenever the text holds anything the fast path is not sure about (comments
  next to quotes, backslashes, dollar quotes, brackets, unusual quoted
  identifiers, unbalanced brackets...) it gives up and the general path runs.
  A differential property test holds the two paths to the same output.

Keywords carry a ``\\x01`` sentinel inside the fast path, so that later
whole-string passes can tell ``IN (`` (keyword) from ``fn(`` (identifier)
without re-tokenizing; the sentinel is removed before returning.

Malformed input never raises. An unterminated string, quoted identifier or
dollar quote swallows the rest of the text as one literal (so a truncated
statement cannot leak the tail of a secret); an unterminated comment is
dropped. These, and unequal numbers of opening and closing brackets, set the
``malformed`` flag returned next to the fingerprint.

The patterns avoid nested unbounded quantifiers that could backtrack
exponentially, and the token alternatives always match something (a final
``\\Z`` alternative catches the end), so the whitespace skipper is never
backtracked into.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence

__all__ = [
    "KEYWORDS",
    "fingerprint",
    "fingerprint_ex",
    "redact",
    "shape_id",
    "split_statements",
    "statement_kind",
]

# Token groups, numbered as they appear in _TOKEN.
_STR = 1
_QID = 2
_WORD = 3
_NUM = 4
_DOL = 5  # group 6 is the dollar tag, nested inside 5
_PH = 7
_BRK = 8
_PUNCT = 9
_NEST = 10
_OP = 11
_UNTERM = 12
_END = 13
_OTHER = 14

#: A number as PostgreSQL 16+ reads it (decimal, hex, octal, binary, ``_``
#: separators, a fraction, an exponent), plus any letters, digits or ``_``
#: glued to it: PostgreSQL rejects such "trailing junk", and taking it into
#: the literal means no digit of a form the lexer does not know can survive.
_NUMBER_RE = r"(?:[0-9][0-9_]*(?:\.(?!\.)[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9][0-9_]*)?\w*"
#: Operators: those starting with ``?`` (``?|``, ``?&``, ``?#``, ``?-|``,
#: ``?||``) and ``@?`` first, then the longest run of operator characters,
#: stopping where a comment starts (PostgreSQL's rule); :func:`_op_end`
#: applies the rest of that rule (a trailing ``+``/``-`` goes back).
_OPERATOR_RE = (
    r"\?(?:\|\||[|&#]|-\|)|@\?|:="
    r"|(?:[+*<>=~!#^&|]|@(?![A-Za-z_])|%(?!\(|[sbt](?!\w))|-(?!-)|/(?!\*))+|[:@%]"
)
_PLACEHOLDER_RE = (
    r"\?(?![|&#]|-\|)[0-9]*|%[sbt](?!\w)|\$[0-9]+|[:@][A-Za-z_]\w*|\$[A-Za-z_]\w*(?![\w$])"
)
_QUOTED_RE = r'(?:[Uu]&)?"[^"]*(?:""[^"]*)*"|`[^`]*(?:``[^`]*)*`'

_TOKEN = re.compile(
    # Skip whitespace, line comments and non-nested block comments. A nested
    # block comment stops the skipper and is handled by _NEST.
    r"(?:\s+|--[^\n]*|/\*(?:[^*/]|\*(?!/)|/(?!\*))*\*/)*"
    r"(?:"
    # 1 string literals: E'..' with backslash escapes, then plain/B/X/N/U& ones.
    r"([Ee]'(?:[^'\\]|\\[\s\S]|'')*'|(?:[BbXxNn]|[Uu]&)?'[^']*(?:''[^']*)*')"
    # 2 quoted identifiers: "..", U&"..", `..` (before words, for U&"..").
    rf"|({_QUOTED_RE})"
    # 3 words: keywords and unquoted identifiers.
    r"|([A-Za-z_\u0080-\U0010ffff][\w$]*)"
    # 4 numbers.
    rf"|({_NUMBER_RE})"
    # 5 dollar-quoted strings (6 is the tag).
    r"|(\$((?:[A-Za-z_\u0080-\U0010ffff]\w*)?)\$[\s\S]*?\$\6\$)"
    # 7 driver placeholders: ?, ?1, %s, %(name)s, $1, :name, @name, $name.
    rf"|(%\([^()]*\)[sbt]|{_PLACEHOLDER_RE})"
    # 8 a SQLite bracket identifier [..], or a subscript: the context decides.
    r"|(\[[^\]]*\])"
    # 9 punctuation.
    r"|(::|[(),;\[\].])"
    # 10 a block comment with a nested /* inside (PostgreSQL nests comments).
    r"|(/\*)"
    # 11 operators.
    rf"|({_OPERATOR_RE})"
    # 12 unterminated string, identifier or dollar quote: the rest of the text.
    r"|((?:[EeBbXxNn]|[Uu]&)?'[\s\S]*|(?:[Uu]&)?\"[\s\S]*|`[\s\S]*"
    r"|\$(?:[A-Za-z_\u0080-\U0010ffff]\w*)?\$[\s\S]*)"
    # 13 end of text.
    r"|(\Z)"
    # 14 any other single character.
    r"|([\s\S])"
    r")"
)
_OP_SPECIAL = frozenset("~!@#%^&|`?")


def _op_end(tok: str) -> int:
    """How much of an operator run is the operator (PostgreSQL's rule).

    A run of two or more characters ending in ``+`` or ``-`` gives those back
    (``=-1`` is ``=`` then ``-1``) unless it holds one of ``~!@#%^&|`?``.
    """
    n = len(tok)
    if n > 1 and tok[-1] in "+-" and _OP_SPECIAL.isdisjoint(tok):
        while n > 1 and tok[n - 1] in "+-":
            n -= 1
    return n


def _bracket_name(tok: str) -> str:
    """A SQLite ``[name]`` written as the equivalent ``"name"``."""
    return '"' + tok[1:-1].replace('"', '""') + '"'


# Output classes (what the previous emitted token was). Classes below _SPACE
# take no space after them.
_START = 0
_OPEN = 1
_DOT = 2
_SPACE = 3
_IDENT = 3
_KW = 4
_FUNC = 5  # keyword whose "(" hugs it like a function's: ANY(, SOME(, CAST(
_VAL = 6
_CLOSE = 7
_COMMA = 8
_OPER = 9
_SEMI = 10
#: Classes after which "[" starts a SQLite bracket identifier, not a subscript.
_NAME_STARTS = frozenset({_START, _OPEN, _DOT, _KW, _COMMA, _OPER, _SEMI})
#: Classes after which "(literal)" is a parenthesized literal, not a call.
_PAREN_VALUE_AFTER = frozenset({_START, _OPEN, _KW, _COMMA, _OPER, _SEMI})

# Keywords that need more than upper-casing.
_SP_NONE = 0
_SP_IN = 1
_SP_VALUES = 2
_SP_ARRAY = 3
_SP_CONST = 4  # NULL, TRUE, FALSE: literals unless right after IS or NOT
_SP_IS = 5  # IS, NOT

#: Words upper-cased as keywords (everything else is an identifier, kept as
#: written). Mostly reserved words, so that a column called ``name`` or
#: ``value`` stays as the application wrote it.
KEYWORDS = frozenset(
    """
    ALL ALTER ANALYZE AND ANY ARRAY AS ASC ASYMMETRIC BEGIN BETWEEN BOTH BY
    CASCADE CASE CAST CHECK COLLATE COLUMN COMMIT CONCURRENTLY CONFLICT CONSTRAINT
    CREATE CROSS CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER DEALLOCATE
    DEFAULT DEFERRABLE DELETE DESC DISTINCT DO DROP ELSE END ESCAPE EXCEPT EXECUTE
    EXISTS EXPLAIN FALSE FETCH FILTER FOR FOREIGN FROM FULL GRANT GROUP HAVING
    ILIKE IN INDEX INNER INSERT INTERSECT INTO IS ISNULL JOIN LATERAL LEADING LEFT
    LIKE LIMIT LOCALTIME LOCALTIMESTAMP LOCKED MATERIALIZED MERGE NATURAL NOT
    NOTHING NOTNULL NOWAIT NULL NULLS OFFSET ON ONLY OR ORDER OUTER OVER OVERLAPS
    PARTITION PLACING PRAGMA PRIMARY RECURSIVE REFERENCES RELEASE RETURNING REVOKE
    RIGHT ROLLBACK SAVEPOINT SELECT SESSION_USER SET SIMILAR SOME
    SYMMETRIC TABLE TABLESAMPLE THEN TRAILING TRUE TRUNCATE UNION UNIQUE
    UPDATE USING VACUUM VALUES VARIADIC VIEW WHEN WHERE WINDOW WITH WITHIN
    """.split()  # noqa: SIM905 - a word list reads best as words
)
_FUNC_KEYWORDS = frozenset({"ANY", "SOME", "CAST"})
_SPECIAL = {
    "IN": _SP_IN,
    "VALUES": _SP_VALUES,
    "ARRAY": _SP_ARRAY,
    "NULL": _SP_CONST,
    "TRUE": _SP_CONST,
    "FALSE": _SP_CONST,
    "IS": _SP_IS,
    "NOT": _SP_IS,
}
#: Statement verbs :func:`statement_kind` recognises.
_VERBS = frozenset(
    """
    SELECT INSERT UPDATE DELETE MERGE VALUES TABLE CREATE DROP ALTER TRUNCATE BEGIN
    COMMIT ROLLBACK SAVEPOINT RELEASE EXPLAIN ANALYZE VACUUM SET PRAGMA GRANT REVOKE
    EXECUTE DEALLOCATE
    """.split()  # noqa: SIM905
)

_WORD_CACHE: dict[str, tuple[str, int, int]] = {}
_CACHE_MAX = 20_000


def _classify(word: str) -> tuple[str, int, int]:
    upper = word.upper()
    if upper in KEYWORDS:
        cls = _FUNC if upper in _FUNC_KEYWORDS else _KW
        info = (upper, cls, _SPECIAL.get(upper, _SP_NONE))
    else:
        info = (word, _IDENT, _SP_NONE)
    if len(_WORD_CACHE) < _CACHE_MAX:
        _WORD_CACHE[word] = info
    return info


def _skip_nested_comment(sql: str, pos: int) -> tuple[int, bool]:
    """From the ``/*`` at ``pos``, the end of the (nested) comment; False if unterminated."""
    depth = 0
    n = len(sql)
    i = pos
    while i < n:
        opener = sql.find("/*", i)
        closer = sql.find("*/", i)
        if closer < 0:
            return n, False
        if 0 <= opener < closer:
            depth += 1
            i = opener + 2
        else:
            depth -= 1
            i = closer + 2
            if depth == 0:
                return i, True
    return n, False


# ---------------------------------------------------------------------------
# General path: the definition.


def _tokenize_fingerprint(sql: str) -> tuple[str, bool]:
    match = _TOKEN.match
    wcache = _WORD_CACHE
    out: list[str] = []
    append = out.append
    # one entry per open bracket: [kind, out index of the opener, value_only,
    # first comma index, prev before, has_child, is "[", is a VALUES row]
    stack: list[list[int]] = []
    # one entry per VALUES list being read: [stack depth, state, comma index]
    # and the rows kept so far; state 1 expects the first row, 2 follows a
    # row, 3 follows a comma after a row
    vals: list[list[int]] = []
    rows: list[set[str]] = []
    prev = _START
    malformed = False
    balance = 0  # opening minus closing brackets
    pending_sign = ""  # a "+" or "-" that may be a literal's sign
    after_is = False  # the previous token was IS or NOT
    after_dot = False  # the previous token was "."
    after_cast = False  # the previous token was "::"
    after_str = False  # the previous token was a string literal
    opener = _SP_NONE  # the previous token was IN or ARRAY
    array_at = 0  # where the last ARRAY keyword went in the output
    array_prev = _START  # and what preceded it
    pos = 0
    n = len(sql)
    while True:
        m = match(sql, pos)
        if m is None:  # pragma: no cover - the pattern always matches
            break
        pos = m.end()
        kind = m.lastindex or _OTHER
        if kind == _END:
            break
        if kind == _NEST:
            pos, ok = _skip_nested_comment(sql, m.start(_NEST))
            if not ok:
                malformed = True
            continue
        tok = m.group(kind)
        if kind == _BRK or (kind == _PUNCT and tok == "["):
            if opener != _SP_ARRAY and (
                prev in _NAME_STARTS and not (stack and stack[-1][6] and prev in (_OPEN, _COMMA))
            ):
                if kind == _PUNCT:
                    kind = _UNTERM  # a [name without its "]"
                else:
                    kind = _QID
                    tok = _bracket_name(tok)
            elif kind == _BRK:
                kind = _PUNCT  # a subscript or an array: "[" alone
                tok = "["
                pos = m.start(_BRK) + 1
        elif kind == _OP and len(tok) > 1 and tok[-1] in "+-":
            end = _op_end(tok)
            pos -= len(tok) - end
            tok = tok[:end]
        if kind == _UNTERM:
            # A literal cut short becomes "?"; so does a quoted identifier cut
            # short, since the rest of the text may be anything.
            malformed = True
            pos = n
            kind = _STR
            tok = ""
        if after_str:
            after_str = False
            if kind == _STR:
                after_str = True
                continue  # 'a' 'b': one string continued

        if vals and vals[-1][0] == len(stack):
            ctx = vals[-1]
            if ctx[1] == 2 and tok == ",":
                ctx[1] = 3
                ctx[2] = len(out)
            elif tok != "(" or ctx[1] == 2:
                vals.pop()
                rows.pop()

        if pending_sign:
            if kind in (_NUM, _STR, _PH, _DOL):
                pending_sign = ""  # a signed literal is one literal
                if stack and prev not in (_OPEN, _COMMA):
                    stack[-1][2] = 0
                if prev >= _SPACE:
                    append(" ")
                append("?")
                prev = _VAL
                after_is = after_dot = after_cast = False
                after_str = kind == _STR
                opener = _SP_NONE
                continue
            if stack:
                stack[-1][2] = 0  # a lone sign is an operator
            if prev >= _SPACE:
                append(" ")
            append(pending_sign)
            prev = _OPER
            pending_sign = ""

        if kind == _WORD:
            if after_dot:  # a column after "table.": always an identifier
                text, cls, special = tok, _IDENT, _SP_NONE
            else:
                info = wcache.get(tok)
                if info is None:
                    info = _classify(tok)
                text, cls, special = info
            if special == _SP_CONST and not after_is:
                text = "?"
                cls = _VAL
            if stack and (
                (cls != _VAL and not (after_cast and cls == _IDENT))
                or (cls == _VAL and prev not in (_OPEN, _COMMA))
            ):
                stack[-1][2] = 0
            after_is = special == _SP_IS
            after_dot = after_cast = False
            opener = special if special in (_SP_IN, _SP_ARRAY) else _SP_NONE
            if special == _SP_VALUES:
                vals.append([len(stack), 1, -1])
                rows.append(set())
            elif special == _SP_ARRAY:
                array_at = len(out)  # so that a literal array can fold to "?"
                array_prev = prev
            if prev >= _SPACE:
                append(" ")
            append(text)
            prev = cls
            continue

        if kind == _PUNCT:
            if tok in {"(", "["}:
                balance += 1
                if stack and prev not in (_OPEN, _COMMA):
                    stack[-1][2] = 0  # a tuple must follow "(" or ","
                row = 0
                if tok == "(":
                    space = prev >= _SPACE and prev not in (_IDENT, _FUNC)
                    if vals and vals[-1][0] == len(stack):
                        row = 1  # a row of the VALUES list
                    kind = _SP_IN if opener == _SP_IN else _SP_NONE  # ARRAY( is a subquery
                    stack.append([kind, len(out), 1, -1, prev, 0, 0, row])
                else:
                    space = prev >= _SPACE and not (
                        prev in (_IDENT, _VAL, _CLOSE) or opener == _SP_ARRAY
                    )
                    if opener == _SP_ARRAY:
                        stack.append([_SP_ARRAY, array_at, 1, -1, array_prev, 0, 1, 0])
                    else:
                        stack.append([_SP_NONE, len(out), 1, -1, prev, 0, 1, 0])
                if space:
                    append(" ")
                append(tok)
                prev = _OPEN
            elif tok in {")", "]"}:
                balance -= 1
                if stack:
                    group = stack.pop()
                    if prev == _COMMA:
                        group[2] = 0  # a trailing comma
                    while vals and vals[-1][0] > len(stack):
                        vals.pop()  # the VALUES list ended inside the group
                        rows.pop()
                    start = group[1]
                    if (
                        group[2]
                        and not group[0]
                        and not group[5]
                        and not group[6]
                        and not group[7]
                        and group[3] < 0
                        and group[4] in _PAREN_VALUE_AFTER
                        and prev != _OPEN
                    ):
                        # (1): redundant parentheses around one literal go
                        del out[start + 1 if out[start] == " " else start]
                        if stack and group[4] not in (_OPEN, _COMMA):
                            stack[-1][2] = 0
                        prev = _VAL
                        after_is = after_dot = after_cast = False
                        opener = _SP_NONE
                        continue
                    if stack:
                        parent = stack[-1]
                        parent[5] = 1
                        # an array holds literals or arrays; a tuple may hold tuples
                        if not group[2] or (not group[6] and (parent[6] or group[5])):
                            parent[2] = 0
                    if group[2]:
                        if group[0] == _SP_ARRAY:
                            del out[start:]
                            prev = group[4]
                            if prev >= _SPACE:
                                append(" ")
                            append("?")
                            prev = _VAL
                            after_is = after_dot = after_cast = False
                            opener = _SP_NONE
                            continue
                        if group[0] == _SP_IN and group[3] >= 0:
                            del out[group[3] :]
                    append(tok)
                    if group[7] and vals:
                        # a row of a VALUES list: kept once per shape
                        ctx = vals[-1]
                        text = "".join(out[start:])
                        if text in rows[-1]:
                            del out[ctx[2] :]
                        else:
                            rows[-1].add(text)
                        ctx[1] = 2
                else:
                    append(tok)
                prev = _CLOSE
            elif tok == ",":
                if stack:
                    top = stack[-1]
                    if top[3] < 0:
                        top[3] = len(out)
                    if prev in (_COMMA, _OPEN):
                        top[2] = 0  # an empty element
                append(",")
                prev = _COMMA
            elif tok == ";":
                append(";")
                prev = _SEMI
                if stack:
                    stack[-1][2] = 0
            else:  # "." or "::"
                if stack and (tok == "." or prev in (_OPEN, _COMMA)):
                    stack[-1][2] = 0  # a name, or a cast of nothing
                append(tok)
                prev = _DOT
                after_dot = tok == "."
                after_cast = not after_dot
                after_is = False
                opener = _SP_NONE
                continue
            after_is = after_dot = after_cast = False
            opener = _SP_NONE
            continue

        if kind in (_STR, _NUM, _PH, _DOL):
            if stack and prev not in (_OPEN, _COMMA):
                stack[-1][2] = 0  # an element must follow "(" or ","
            if prev >= _SPACE:
                append(" ")
            append("?")
            prev = _VAL
            after_is = after_dot = after_cast = False
            after_str = kind == _STR
            opener = _SP_NONE
            continue

        if kind == _QID:
            if stack and not after_cast:
                stack[-1][2] = 0
            if prev >= _SPACE:
                append(" ")
            append(tok)
            prev = _IDENT
            after_is = after_dot = after_cast = False
            opener = _SP_NONE
            continue

        # operators and any other character
        after_is = after_dot = after_cast = False
        opener = _SP_NONE
        if kind == _OP and (tok in {"-", "+"}) and prev not in (_VAL, _IDENT, _CLOSE):
            pending_sign = tok
            continue
        if stack:
            stack[-1][2] = 0
        if prev >= _SPACE:
            append(" ")
        append(tok)
        prev = _OPER

    if pending_sign:
        if prev >= _SPACE:
            append(" ")
        append(pending_sign)
    if balance != 0:
        malformed = True
    if vals and vals[-1][1] == 3 and vals[-1][0] == len(stack):
        malformed = True  # a VALUES list cut short after its comma
        del out[vals[-1][2] :]
    while out and (out[-1] == ";" or out[-1] == " "):
        out.pop()
    return "".join(out), malformed


# ---------------------------------------------------------------------------
# Fast path.


class _Bail(Exception):
    """The fast path met something it is not sure about."""


_KW_MARK = "\x01"
_CANON: dict[str, str] = {}
_NUMBER = re.compile(_NUMBER_RE)
_DOLLAR_NOT_PARAM = re.compile(r"\$(?![0-9])")
_SIMPLE_QUOTED = re.compile(r"[A-Za-z_\u0080-\U0010ffff][\w$]*")
_BLOCK_COMMENT = re.compile(r"/\*(?:[^*/]|\*(?!/)|/(?!\*))*\*/")
_LINE_COMMENT = re.compile(r"--[^\n]*")
_HUG = re.compile(r" \((?<=[\w\"$`] \()")
_GLUED_END = re.compile(r"[\w$&]")  # a string glued to a word, a prefix or U&
_PYFORMAT = re.compile(r"%\([^()']*\)[sbt]")
_IN_ITEM = r"\?(?: ?::(?:[A-Za-z_\u0080-\U0010ffff][\w$]*|\"[^\"]*\"))*"
_IN_ELEM = rf"(?:{_IN_ITEM}|\((?:{_IN_ITEM}(?:, {_IN_ITEM})*)?\))"
_IN_LIST = re.compile(rf"IN\x01 \((?<![\w$]IN\x01 \()({_IN_ELEM})(?:, {_IN_ELEM})+\)")
_ROW = r"\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)"
_ROWS = re.compile(rf"({_ROW})((?:, {_ROW})*)")
_ROW_RE = re.compile(_ROW)
_STRING_PREFIXES = frozenset("EeBbXxNn")
_CONSTS = {"NULL\x01": "NULL", "TRUE\x01": "TRUE", "FALSE\x01": "FALSE"}
_SIGNS = ("-", "+")
# What follows "?" in a fast-path token that is a literal ("?", "?::int", a
# number glued to ".col"); an operator starting with "?" ("?|", "?&"...) has
# something else there.
_LITERAL_NEXT = ("", ":", ".")
_OP_CHARS = frozenset("-+*/<>=~!@#%^&|?:")
_NO_SIGN_BEFORE = frozenset({"(", ",", ";"})
_PUNCTUATION = {"(": "(", ")": ")", ",": ",", ";": ";"}
# Single-character operators the fast path spaces out with str.replace, and
# the number forms whose presence forbids it; a character is never spaced
# out where it touches another operator character (_OP_RUN).
_SPACE_OPS = (
    ("=", " = ", ()),
    (">", " > ", ()),
    ("<", " < ", ()),
    ("-", " - ", ("e-", "E-")),
    ("+", " + ", ("e+", "E+")),
)
# A byte table marking the characters _SPACE_OPS spaces out "s", the other
# operator characters "o" and ":" itself: whether a spaced character touches
# another operator character is then a substring test.
_OP_MARKS = bytes(
    ord("s")
    if chr(i) in "=<>-+"
    else ord("o")
    if chr(i) in "*/~!@#%^&|?"
    else ord(":")
    if i == ord(":")
    else ord(" ")
    for i in range(256)
)
_OP_RUN = re.compile(r"[-+*/<>=~!@#%^&|?:]{2,}")
# "(literal)" where the parentheses are redundant: the general path decides.
_PAREN_LITERAL = re.compile(r"\( \?(?: ?::\S+)* \)")
_PAREN_VALUE_AFTER_TOKEN = frozenset("(,-+*/<>=~!@#%^&|;")
_ROW_CHARS = str.maketrans("", "", "0123456789.?,()")
_CANON.update(_PUNCTUATION)


# The pieces a whitespace-free token of the fast path can hold, in the order
# _TOKEN tries them (strings, comments and brackets are gone by then).
_PIECE = re.compile(
    rf"({_QUOTED_RE})"
    r"|([A-Za-z_\u0080-\U0010ffff][\w$]*)"
    rf"|({_NUMBER_RE})"
    rf"|({_PLACEHOLDER_RE})"
    r"|(::|\.)"
    rf"|({_OPERATOR_RE})"
    r"|([\s\S])"
)


def _canon(tok: str) -> str:
    """The fast path's rendering of one whitespace-separated token (cached)."""
    if tok.isdigit() or (tok[0] in "0123456789." and _NUMBER.fullmatch(tok)):
        return "?"  # a literal: never cached
    parts: list[str] = []
    literal = False
    glue = False  # the next part joins the previous one ("." or "::")
    for qid, word, num, ph, dot, op, other in _PIECE.findall(tok):
        if word:
            if glue and parts and parts[-1].endswith("."):
                text = word  # a column after "table.": always an identifier
            else:
                text, cls, special = _WORD_CACHE.get(word) or _classify(word)
                if special == _SP_CONST and len(tok) != len(word):
                    raise _Bail  # NULL glued to something: context decides
                if cls == _KW:
                    text += _KW_MARK
        elif num or ph:
            text = "?"
            literal = literal or bool(num)
        elif qid:
            text = qid
        elif dot:
            if parts:
                parts[-1] += dot
            else:
                parts.append(dot)
            glue = True
            continue
        elif op and not glue:
            end = _op_end(op)
            text = op
            if end != len(op):  # "=-": the operator gives its signs back
                parts.append(op[:end])
                parts.extend(op[end:-1])
                text = op[-1]
        elif other in _PUNCTUATION:
            text = other
        else:  # an operator right after "." or "::", or an odd character: not sure
            raise _Bail
        if glue and parts:
            parts[-1] += text
        else:
            parts.append(text)
        glue = False
    result = " ".join(parts)
    if not literal and len(_CANON) < _CACHE_MAX:
        _CANON[tok] = result
    return result


def _positions(items: Sequence[str | None], value: str | None) -> list[int]:
    """Every index of ``value`` in ``items`` (``count`` and ``index`` scan in C)."""
    found: list[int] = []
    i = -1
    for _ in range(items.count(value)):
        i = items.index(value, i + 1)
        found.append(i)
    return found


def _is_value_end(t: str) -> bool:
    """Whether a fast-path token leaves the tokenizer in class VAL, IDENT or CLOSE."""
    last = t[-1]
    if last in {".", ":"}:  # ends with "." or "::": class DOT
        return False
    if t[0] == "?":
        return t[1:2] in _LITERAL_NEXT  # "?", "?::int"; not "?|"
    if (last == "?" and t[0] not in _OP_CHARS) or t == ")":
        return True
    if last == _KW_MARK or t in _FUNC_KEYWORDS or t in _NO_SIGN_BEFORE:
        return False
    return last in {"_", "$", '"', "`"} or last.isalnum()


def _strip_strings(sql: str) -> str:
    parts = sql.split("'")
    if not len(parts) & 1:
        raise _Bail  # an odd number of quotes: unterminated
    if "''" not in sql:
        # The common case, decided in C: no escaped quote, and no string
        # glued to a word or a prefix (E'', X'', U&''...): one "?" per string.
        kept = parts[0::2]
        if _GLUED_END.search("".join([p[-1:] for p in kept[:-1]])) is None:
            for between in kept[1:-1]:
                if between.isspace():
                    raise _Bail  # 'a' 'b': a string continued
            return " ? ".join(kept)
    out = [parts[0]]
    last = len(parts) - 1
    i = 2
    while i <= last:
        outside = parts[i]
        if outside == "" and i < last:
            i += 2  # '' inside a string: the same string goes on
            continue
        if outside.isspace() and i < last:
            raise _Bail  # 'a' 'b': a string continued
        before = out[-1]
        if before:
            # Strip a prefix (E, B, X, N, U&) that starts a token; a string
            # glued to any other word is left to the general path.
            c = before[-1]
            if c in _STRING_PREFIXES and (len(before) == 1 or not _wordish(before[-2])):
                out[-1] = before[:-1]
            elif c == "&" and before[-2:-1] in ("U", "u"):
                if len(before) > 2 and _wordish(before[-3]):
                    raise _Bail
                out[-1] = before[:-2]
            elif _wordish(c):
                raise _Bail
        if len(out) > 1 and not out[-1].strip():
            raise _Bail  # 'a' E'b': a string continued
        out.append(" ? ")
        out.append(outside)
        i += 2
    return "".join(out)


def _wordish(c: str) -> bool:
    return c in {"_", "$"} or c.isalnum()


def _collapse_in(m: re.Match[str]) -> str:
    return f"IN\x01 ({m.group(1)})"


_RAW_ROW = r"\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)"
_RAW_ROWS = re.compile(rf"\s*({_RAW_ROW})(?:\s*,\s*{_RAW_ROW})+")


def _drop_extra_rows(s: str) -> str:
    """Drop the rows after the first of each VALUES list before tokenizing.

    Only an optimization (a 1000-row INSERT is then tokenized as one row),
    taken only when every row holds nothing but literals and all have as many
    (so all have one shape); :func:`_collapse_values` decides the rest on the
    canonical text.
    """
    upper = s.upper()
    pieces: list[str] = []
    pos = 0
    i = upper.find("VALUES")
    while i >= 0:
        end = i + 6
        if (i == 0 or not _wordish(s[i - 1])) and (end == len(s) or not _wordish(s[end])):
            m = _RAW_ROWS.match(s, end)
            if m is not None and _same_literal_rows(s[m.start(1) : m.end()]):
                pieces.append(s[pos : m.end(1)])
                pos = m.end()
                end = pos
        i = upper.find("VALUES", end)
    if not pieces:
        return s
    pieces.append(s[pos:])
    return "".join(pieces)


def _same_literal_rows(rows: str) -> bool:
    """Whether ``(..), (..)...`` are rows of literals only, all as long.

    Literals here are ``?`` (the strings are gone) and plain numbers, each
    with an optional sign; decided with whole-string operations.
    """
    t = "".join(rows.split())
    if "-" in t or "+" in t:
        t = t.replace("(-", "(").replace(",-", ",").replace("(+", "(").replace(",+", ",")
        if "-" in t or "+" in t:
            return False  # a sign that is arithmetic
    if t.translate(_ROW_CHARS) or ",," in t or "(," in t or ",)" in t:
        return False  # anything but numbers, "?" and punctuation, or an empty item
    found = t[1:-1].split("),(")
    commas = found[0].count(",")
    if "(" in t[1:-1].replace("),(", ""):
        return False  # a nested parenthesis
    return all(row.count(",") == commas for row in found)


def _check_paren_literals(text: str) -> None:
    """Bail on ``(literal)`` after anything but a name, ``IN`` or ``VALUES``.

    Such parentheses are redundant; the general path drops them.
    """
    i = text.find("( ?")
    while i >= 0:
        c = text[i - 2] if i >= 2 else ""
        if (
            not c
            or c in _PAREN_VALUE_AFTER_TOKEN
            or (c == "?" and text[: i - 1].rsplit(" ", 1)[-1][:1] in _OP_CHARS - {"?"})
            or (c == _KW_MARK and text[: i - 1].rsplit(" ", 1)[-1] not in ("IN\x01", "VALUES\x01"))
        ) and _PAREN_LITERAL.match(text, i):
            raise _Bail
        i = text.find("( ?", i + 3)


def _collapse_values(text: str) -> str:
    pieces: list[str] = []
    pos = 0
    while True:
        i = text.find("VALUES\x01 (", pos)
        if i < 0:
            break
        start = i + 8
        m = _ROWS.match(text, start)
        if m is None:
            raise _Bail  # rows nested deeper than the pattern follows
        rest = text[m.end() : m.end() + 4]
        if rest.startswith(", (") or (rest[:1] == "," and not text[m.end() + 1 :].strip()):
            raise _Bail  # a deeper row, or a list cut short after its comma
        if "VALUES\x01" in text[start : m.end()]:
            raise _Bail  # a VALUES list inside a row
        pieces.append(text[pos : m.end(1)])
        if m.group(2):
            # later rows: each kept once per shape, the first row's included
            kept = {m.group(1)}
            for row in _ROW_RE.findall(m.group(2)):
                if row not in kept:
                    kept.add(row)
                    pieces.append(", " + row)
        pos = m.end()
    if not pieces:
        return text
    pieces.append(text[pos:])
    return "".join(pieces)


def _strip_leading_comments(s: str) -> str:
    """``s`` without the comments before its first token (a common header)."""
    s = s.lstrip()
    while True:
        if s.startswith("--"):
            nl = s.find("\n")
            s = "" if nl < 0 else s[nl + 1 :].lstrip()
        elif s.startswith("/*"):
            end = s.find("*/", 2)
            if end < 0 or "/*" in s[2:end]:
                raise _Bail  # unterminated or nested: the general path decides
            s = s[end + 2 :].lstrip()
        else:
            return s


def _fast_fingerprint(sql: str) -> str:
    if "\\" in sql or "[" in sql or "]" in sql or _KW_MARK in sql or "``" in sql:
        raise _Bail
    if "$" in sql and _DOLLAR_NOT_PARAM.search(sql):
        raise _Bail
    if '"' in sql:
        quoted = sql.split('"')
        if not len(quoted) & 1:
            raise _Bail
        for name in quoted[1::2]:
            if not _SIMPLE_QUOTED.fullmatch(name):
                raise _Bail
    s = sql
    if "--" in s or "/*" in s:
        s = _strip_leading_comments(s)
    if "--" in s or "/*" in s:
        if "'" in s:
            raise _Bail
        s = _LINE_COMMENT.sub(" ", _BLOCK_COMMENT.sub(" ", s))
        if "/*" in s or "*/" in s:
            raise _Bail
    if "%(" in s:
        # before the strings go: a name may not hold a quote, a parenthesis or
        # a string boundary, and anything else is left to the general path
        s = _PYFORMAT.sub("?", s)
        if "%(" in s:
            raise _Bail
    if "'" in s:
        s = _strip_strings(s)
    if "(" in s or ")" in s:
        if s.count("(") != s.count(")"):
            raise _Bail
        if "ALUES" in s or "alues" in s:  # (an optimization: other casings skip it)
            s = _drop_extra_rows(s)
        s = s.replace("(", " ( ").replace(")", " ) ")
    marks = s.encode("utf-8", "surrogatepass").translate(_OP_MARKS)
    glued: set[str] | tuple[()] = ()
    if b"s" in marks and (
        b"ss" in marks or b"so" in marks or b"os" in marks or b"s:" in marks or b":s" in marks
    ):
        glued = set("".join(_OP_RUN.findall(s)))
    for op, spaced, unless in _SPACE_OPS:
        # "id=5" -> "id = 5" in C, when the character never touches another
        # operator character and no number form holds it
        if op in s and op not in glued:
            for u in unless:
                if u in s:
                    break
            else:
                s = s.replace(op, spaced)
    toks = s.replace(",", " , ").replace(";", " ; ").split()
    if not toks:
        return ""
    get = _CANON.get
    out = [get(t) or ("?" if t.isdigit() else _canon(t)) for t in toks]
    text = " ".join(out)
    if text.count(" ") != len(out) - 1:
        out = text.split()  # some tokens were cut up: flatten
    changed = False
    consts: set[int] = set()
    if "NULL\x01" in text or "TRUE\x01" in text or "FALSE\x01" in text:
        # NULL, TRUE and FALSE are literals unless right after IS or NOT.
        for name in _CONSTS:
            for i in _positions(out, name):
                if i == 0 or (out[i - 1] != "IS\x01" and out[i - 1] != "NOT\x01"):
                    out[i] = "?"
                    consts.add(i)
                    changed = True
    if "-" in text or "+" in text:
        # A sign right before a literal folds into it unless it follows a
        # value, an identifier or ")" (then it is arithmetic). A folded sign is
        # always followed by its literal, so signs can be judged one by one.
        last = len(out) - 1
        drop = [
            i
            for sign in _SIGNS
            for i in _positions(out, sign)
            if i < last
            and out[i + 1][0] == "?"
            and out[i + 1][1:2] in _LITERAL_NEXT
            and i + 1 not in consts
            and not (i > 0 and _is_value_end(out[i - 1]))
        ]
        if drop:
            for i in sorted(drop, reverse=True):
                del out[i]
            changed = True
    if changed:
        text = " ".join(out)
    text = text.replace(" ,", ",").replace(" ;", ";")
    if "(" in text:
        if "( ?" in text:
            _check_paren_literals(text)
        text = _HUG.sub("(", text.replace("( ", "(").replace(" )", ")"))
        if "IN\x01 (" in text:
            text = _IN_LIST.sub(_collapse_in, text)
        if "VALUES\x01 (" in text:
            text = _collapse_values(text)
    if " ." in text or ". " in text or text[-1] == ".":
        raise _Bail  # "t . col": the tokenizer decides what follows the dot
    text = text.replace(_KW_MARK, "")
    if " ::" in text or ":: " in text:
        text = text.replace(" ::", "::").replace(":: ", "::")
    return text.rstrip("; ")


# ---------------------------------------------------------------------------
# Public functions.


def fingerprint_ex(sql: str) -> tuple[str, bool]:
    """The fingerprint of ``sql`` and whether the text was malformed.

    Malformed means: an unterminated string, quoted identifier, dollar quote
    or comment, or unequal numbers of opening and closing brackets.

    Never raises for any ``str``.
    """
    try:
        return _fast_fingerprint(sql), False
    except _Bail:
        return _tokenize_fingerprint(sql)


def fingerprint(sql: str) -> str:
    """Normalize ``sql`` to its shape, with every literal replaced by ``?``.

    Comments are removed, whitespace is canonical, keywords are upper-cased
    and identifiers are kept as written (quoted ones stay quoted). Literals
    (strings of every form, numbers, ``TRUE``/``FALSE``, ``NULL`` outside
    ``IS [NOT] NULL``) and driver placeholders (``?``, ``%s``, ``%(name)s``,
    ``$1``, ``:name``) become ``?``; ``IN`` lists of literals become
    ``IN (?)``; a multi-row ``VALUES`` keeps its first row; ``ARRAY[..]`` of
    literals becomes ``?``. Statements that differ only in those respects
    share a fingerprint.

    Args:
        sql: the statement text. Malformed text is fingerprinted as well as
            possible (see :func:`fingerprint_ex` for the flag).

    Returns:
        SQL-looking text that contains no literal of ``sql``.
    """
    return fingerprint_ex(sql)[0]


def shape_id(fingerprint: str) -> str:
    """A stable 16-hex-digit identifier of a fingerprint (BLAKE2b, 64 bits).

    The same fingerprint gives the same id in every process, machine and
    Python version, so ids can be stored and compared.
    """
    return hashlib.blake2b(fingerprint.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def _lex(sql: str) -> Iterator[tuple[int, str, int, int]]:
    """The tokens of ``sql`` as ``(kind, text, start, end)``, comments skipped.

    The lexing :func:`redact` and :func:`split_statements` share with the
    general path: ``[`` is a SQLite bracket identifier where a name can start
    and a subscript elsewhere, an operator run gives a trailing sign back, an
    unterminated literal is one ``_UNTERM`` token to the end.
    """
    match = _TOKEN.match
    pos = 0
    n = len(sql)
    prev = _START
    brackets: list[bool] = []  # per open bracket: whether it is "["
    after_array = False
    while True:
        m = match(sql, pos)
        if m is None:  # pragma: no cover - the pattern always matches
            return
        kind = m.lastindex or _OTHER
        if kind == _END:
            return
        start = m.start(kind)
        pos = m.end()
        if kind == _NEST:
            pos, _ = _skip_nested_comment(sql, start)
            continue
        tok = m.group(kind)
        if kind == _BRK or (kind == _PUNCT and tok == "["):
            if not after_array and (
                prev in _NAME_STARTS and not (brackets and brackets[-1] and prev in (_OPEN, _COMMA))
            ):
                kind = _UNTERM if kind == _PUNCT else _QID
            elif kind == _BRK:
                kind = _PUNCT
                tok = "["
                pos = start + 1
        elif kind == _OP and len(tok) > 1 and tok[-1] in "+-":
            end = _op_end(tok)
            pos -= len(tok) - end
            tok = tok[:end]
        if kind == _UNTERM:
            pos = n
            tok = sql[start:]
        after_array = False
        if kind == _WORD:
            upper = tok.upper()
            if prev == _DOT or upper not in KEYWORDS:
                prev = _IDENT
            elif _SPECIAL.get(upper) == _SP_CONST:
                prev = _VAL
            else:
                prev = _FUNC if upper in _FUNC_KEYWORDS else _KW
                after_array = upper == "ARRAY"
        elif kind == _PUNCT:
            if tok in {"(", "["}:
                brackets.append(tok == "[")
                prev = _OPEN
            elif tok in {")", "]"}:
                if brackets:
                    brackets.pop()
                prev = _CLOSE
            else:
                prev = {",": _COMMA, ";": _SEMI}.get(tok, _DOT)
        elif kind == _QID:
            prev = _IDENT
        elif kind in (_STR, _NUM, _PH, _DOL, _UNTERM):
            prev = _VAL
        else:
            prev = _OPER
        yield kind, tok, start, pos


def redact(sql: str) -> str:
    """``sql`` as written, minus its secrets: literals and placeholders become ``?``.

    Unlike :func:`fingerprint`, the case of keywords, ``IN`` lists and extra
    ``VALUES`` rows are kept, so the result shows one concrete execution.
    Comments are removed (they may hold anything) and whitespace collapses to
    one space. Never raises for any ``str``.
    """
    out: list[str] = []
    end = 0
    after_str = False
    for kind, tok, start, stop in _lex(sql):
        if after_str and kind in (_STR, _UNTERM):
            end = stop
            continue  # 'a' 'b': one string continued
        after_str = kind == _STR
        if start > end and out:
            out.append(" ")
        end = stop
        literal = kind in (_STR, _NUM, _PH, _DOL, _UNTERM)
        if literal or (kind == _WORD and tok.upper() in ("TRUE", "FALSE")):
            out.append("?")
        else:
            out.append(tok)
    return "".join(out).rstrip()


def split_statements(text: str) -> list[str]:
    """Split a script on top-level ``;`` (not inside strings, quotes or comments).

    Returns:
        The statements that contain code, stripped, without their ``;``.
    """
    parts: list[str] = []
    start = 0
    for kind, tok, at, stop in _lex(text):
        if kind == _PUNCT and tok == ";":
            _add_statement(parts, text[start:at])
            start = stop
    _add_statement(parts, text[start:])
    return parts


def _add_statement(parts: list[str], part: str) -> None:
    m = _TOKEN.match(part)
    if m is not None and m.lastindex != _END:
        parts.append(part.strip())


_KIND_TOKEN = re.compile(r'"(?:[^"]|"")*"|`[^`]*`|[()]|[A-Za-z_]+')


def statement_kind(fingerprint: str) -> str:
    """The main verb of a fingerprinted statement: ``SELECT``, ``INSERT``...

    Looks past a leading ``WITH`` list (the verb after the CTEs decides) and
    leading parentheses. Returns ``""`` when there is no recognisable verb.
    """
    depth = 0
    base = -1
    tok: str
    for tok in _KIND_TOKEN.findall(fingerprint):
        if tok == "(":
            depth += 1
        elif tok == ")":
            depth -= 1
        else:
            if base < 0:
                base = depth
            if depth <= base and tok in _VERBS:
                return tok
    return ""
