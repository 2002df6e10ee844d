"""Redis-compatible glob patterns for ``invalidate_pattern``.

Theory of operation: the L1 must select exactly the keys Redis's ``SCAN MATCH``
selects for the same pattern, or the two layers of one cache would disagree
after an invalidation (the Redis L2 is sent the same pattern). So the pattern
is parsed the way Redis's ``stringmatchlen()`` parses it, byte by byte over the
UTF-8 encoding of the key, and compiled once into an anchored ``bytes`` regex:

* ``*`` any run of bytes (also empty), ``?`` exactly one byte;
* ``[abc]``, ``[^abc]``, ``[a-z]`` (reversed ranges are swapped), ``\\x``
  inside a class is a literal ``x``;
* ``\\x`` outside a class is a literal ``x``; a trailing lone ``\\`` is a
  literal backslash (as in Redis).

An unterminated ``[`` is rejected with :class:`InvalidPatternError`: Redis
silently ends the class at the end of the pattern, which is almost always a
typo that would invalidate the wrong keys. Use :func:`escape_glob` to match a
literal ``*``, ``?``, ``[``, ``]`` or ``\\``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sentia_core.errors import CacheError

__all__ = ["InvalidPatternError", "compile_glob", "escape_glob"]

_SPECIAL = frozenset("*?[]\\")


class InvalidPatternError(CacheError, ValueError):
    """A glob pattern that cannot be parsed (an unterminated ``[`` class)."""

    def __init__(self, pattern: str, reason: str) -> None:
        self.pattern = pattern
        super().__init__(f"invalid glob pattern {pattern!r}: {reason}")


def escape_glob(text: str) -> str:
    """``text`` with every glob metacharacter escaped, so that it matches itself.

    ``invalidate_pattern(escape_glob(user_id) + ":*")`` is safe whatever
    ``user_id`` contains.
    """
    if not any(c in _SPECIAL for c in text):
        return text
    return "".join("\\" + c if c in _SPECIAL else c for c in text)


def _byte(b: int) -> bytes:
    return re.escape(bytes((b,)))


def compile_glob(pattern: str) -> Callable[[str], bool]:
    """A predicate ``key -> bool`` that matches like Redis ``SCAN MATCH pattern``.

    Raises:
        InvalidPatternError: the pattern has an unterminated ``[`` class.
        TypeError: the pattern is not a ``str``.
    """
    if not isinstance(pattern, str):
        raise TypeError(f"a glob pattern is a str, not {type(pattern).__name__}")
    p = pattern.encode("utf-8", "surrogatepass")
    n = len(p)
    out: list[bytes] = []
    literal_only = True
    i = 0
    while i < n:
        c = p[i]
        if c == 0x2A:  # '*'
            while i + 1 < n and p[i + 1] == 0x2A:
                i += 1
            out.append(b".*")
            literal_only = False
        elif c == 0x3F:  # '?'
            out.append(b".")
            literal_only = False
        elif c == 0x5B:  # '['
            i += 1
            negate = i < n and p[i] == 0x5E  # '^'
            if negate:
                i += 1
            items: list[bytes] = []
            while True:
                if i >= n:
                    raise InvalidPatternError(
                        pattern,
                        "unterminated '[' class (Redis reads 'x-]' as a range ending in ']'; "
                        "write '\\-' for a literal '-')",
                    )
                if p[i] == 0x5C and i + 1 < n:  # '\' escapes inside a class
                    i += 1
                    items.append(_byte(p[i]))
                elif p[i] == 0x5D:  # ']'
                    break
                elif i + 2 < n and p[i + 1] == 0x2D:  # 'a-z' (Redis needs 3 bytes left)
                    lo, hi = sorted((p[i], p[i + 2]))
                    items.append(_byte(lo) + b"-" + _byte(hi))
                    i += 2
                else:
                    items.append(_byte(p[i]))
                i += 1
            body = b"".join(items)
            if negate:
                out.append(b"[^" + body + b"]" if body else b"(?s:.)")
            else:
                out.append(b"[" + body + b"]" if body else b"(?!)")
            literal_only = False
        elif c == 0x5C:  # '\': next byte literal; a trailing one is itself
            if i + 1 < n:
                i += 1
            out.append(_byte(p[i]))
        else:
            out.append(_byte(c))
        i += 1
    if literal_only:
        target = pattern if "\\" not in pattern else _unescape(pattern)
        return target.__eq__
    regex = re.compile(b"".join(out), re.DOTALL)
    fullmatch = regex.fullmatch

    def match(key: str) -> bool:
        return fullmatch(key.encode("utf-8", "surrogatepass")) is not None

    return match


def _unescape(pattern: str) -> str:
    chars: list[str] = []
    it = iter(range(len(pattern)))
    for i in it:
        if pattern[i] == "\\" and i + 1 < len(pattern):
            chars.append(pattern[i + 1])
            next(it, None)
        else:
            chars.append(pattern[i])
    return "".join(chars)
