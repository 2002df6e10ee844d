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

__all__ = ["MAX_PATTERN_BYTES", "InvalidPatternError", "compile_glob", "escape_glob"]

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


#: The longest pattern accepted, in bytes of its UTF-8 encoding. Longer ones
#: raise :class:`InvalidPatternError` from the API and are counted as
#: malformed (and ignored) when they arrive on the invalidation channel.
MAX_PATTERN_BYTES = 1024


def _byte(b: int) -> bytes:
    return re.escape(bytes((b,)))


class _Glob:
    """A compiled pattern: star-free segments, matched greedily left to right.

    Each segment between two ``*`` is a fixed-length run of one-byte atoms, so
    it is compiled into a regex with no repetition: matching it at one offset
    costs at most ``len(segment)`` byte comparisons and nothing backtracks.
    The first segment must match at the start, the last at the end, each
    middle one at its leftmost place after the previous one (leftmost is
    always right for fixed-length segments). One key therefore costs at most
    ``(len(key) + 1) * len(pattern)`` comparisons, which :meth:`run` counts.
    """

    __slots__ = ("_first", "_last", "_middle", "_segments", "_star")

    def __init__(self, segments: list[list[bytes]], sizes: list[int]) -> None:
        self._segments = segments
        compiled = [re.compile(b"".join(seg), re.DOTALL) for seg in segments]
        self._star = len(segments) > 1
        self._first = (compiled[0], sizes[0])
        self._last = (compiled[-1], sizes[-1])
        self._middle = [(c, s) for c, s in zip(compiled[1:-1], sizes[1:-1], strict=True) if s]

    def __call__(self, key: str) -> bool:
        return self.run(key.encode("utf-8", "surrogatepass"))[0]

    def matcher(self) -> Callable[[str], bool]:
        """The predicate: :meth:`run` without the step count (a test checks
        that they agree). A pattern with at most one ``*`` is one anchored
        regex: its only ``.*`` can stop at ``len(key) + 1`` places, each
        followed by a fixed-length tail, so it stays within the same bound."""
        if len(self._segments) <= 2:
            regex = re.compile(b".*".join(b"".join(seg) for seg in self._segments), re.DOTALL)
            fullmatch = regex.fullmatch

            def one(key: str) -> bool:
                return fullmatch(key.encode("utf-8", "surrogatepass")) is not None

            return one
        first, flen = self._first
        last, llen = self._last
        head, tail = first.match, last.match
        middle = [(seg.search, size) for seg, size in self._middle]

        def many(key: str) -> bool:
            data = key.encode("utf-8", "surrogatepass")
            end = len(data) - llen
            if end < flen or head(data) is None:
                return False
            pos = flen
            for search, _ in middle:
                found = search(data, pos, end)
                if found is None:
                    return False
                pos = found.end()
            return tail(data, end) is not None

        return many

    def run(self, data: bytes) -> tuple[bool, int]:
        """``(matched, steps)``: steps bound the byte comparisons made."""
        n = len(data)
        first, flen = self._first
        if not self._star:
            return (n == flen and first.match(data) is not None), flen
        last, llen = self._last
        end = n - llen
        if end < flen or first.match(data) is None:
            return False, flen
        steps = flen + llen
        pos = flen
        for seg, size in self._middle:
            found = seg.search(data, pos, end)
            if found is None:
                return False, steps + (end - pos + 1) * size
            steps += (found.start() - pos + 1) * size
            pos = found.end()
        return (last.match(data, end) is not None), steps


def compile_glob(pattern: str) -> Callable[[str], bool]:
    """A predicate ``key -> bool`` that matches like Redis ``SCAN MATCH pattern``.

    Matching one key costs at most ``(len(key) + 1) * len(pattern)`` byte
    comparisons (no backtracking), whatever the pattern.

    Raises:
        InvalidPatternError: the pattern has an unterminated ``[`` class, or is
            longer than :data:`MAX_PATTERN_BYTES` bytes (UTF-8).
        TypeError: the pattern is not a ``str``.
    """
    segments, literal_only = _parse(pattern)
    if literal_only:
        target = pattern if "\\" not in pattern else _unescape(pattern)
        return target.__eq__
    return _program(segments).matcher()


def glob_program(pattern: str) -> _Glob:
    """The compiled segments of ``pattern``, whose :meth:`_Glob.run` counts steps.

    Raises:
        The errors of :func:`compile_glob`.
    """
    return _program(_parse(pattern)[0])


def _program(segments: list[list[bytes]]) -> _Glob:
    # every atom matches exactly one byte, so a segment's size is its atom count
    return _Glob(segments, [len(seg) for seg in segments])


def _parse(pattern: str) -> tuple[list[list[bytes]], bool]:
    """The pattern's star-free segments (regex atoms) and whether it is a literal."""
    if not isinstance(pattern, str):
        raise TypeError(f"a glob pattern is a str, not {type(pattern).__name__}")
    p = pattern.encode("utf-8", "surrogatepass")
    n = len(p)
    if n > MAX_PATTERN_BYTES:
        raise InvalidPatternError(
            pattern[:64] + "...", f"longer than {MAX_PATTERN_BYTES} bytes ({n})"
        )
    segments: list[list[bytes]] = [[]]
    out = segments[0]
    literal_only = True
    i = 0
    while i < n:
        c = p[i]
        if c == 0x2A:  # '*'
            while i + 1 < n and p[i + 1] == 0x2A:
                i += 1
            out = []
            segments.append(out)
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
    return segments, literal_only


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
