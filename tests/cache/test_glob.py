"""Glob patterns: the L1 must select exactly what Redis ``SCAN MATCH`` selects."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentia_core.cache import InvalidPatternError, compile_glob, escape_glob

from .strategies import keys, literal_patterns, patterns


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("*", ["", "a", "a:b"], []),
        ("user:*", ["user:", "user:1", "user:1:x"], ["use", "xuser:1"]),
        ("user:?", ["user:1", "user:x"], ["user:", "user:10", "user:é"]),
        ("h[ae]llo", ["hallo", "hello"], ["hillo", "hllo"]),
        ("h[^e]llo", ["hallo", "hxllo"], ["hello"]),
        ("h[a-c]llo", ["hallo", "hbllo", "hcllo"], ["hdllo"]),
        ("h[c-a]llo", ["hbllo"], ["hdllo"]),  # reversed ranges are swapped, as in Redis
        ("a\\*b", ["a*b"], ["axb", "ab"]),
        ("a\\?", ["a?"], ["ab"]),
        ("\\[x]", ["[x]"], ["x"]),
        ("a[\\]]b", ["a]b"], ["ab"]),
        ("x\\", ["x\\"], ["x"]),  # a trailing backslash is literal
        ("[]x", [], ["x", "]x"]),  # an empty class matches nothing
        ("[^]x", ["ax", "]x"], ["x"]),  # a negated empty class matches any one byte
        ("a**b", ["ab", "axxb"], ["a"]),
    ],
)
def test_redis_glob_semantics(pattern: str, matches: list[str], misses: list[str]) -> None:
    match = compile_glob(pattern)
    for key in matches:
        assert match(key), (pattern, key)
    for key in misses:
        assert not match(key), (pattern, key)


def test_question_mark_matches_one_byte_like_redis() -> None:
    # "é" is two UTF-8 bytes: Redis (and so the L1) needs "??" for it.
    assert not compile_glob("?")("é")
    assert compile_glob("??")("é")


def test_unterminated_classes_are_refused() -> None:
    for bad in ("[", "a[bc", "[^", "x[\\]", "[a-]"):
        with pytest.raises(InvalidPatternError):
            compile_glob(bad)


def test_patterns_must_be_strings() -> None:
    with pytest.raises(TypeError):
        compile_glob(b"*")  # type: ignore[arg-type]


@given(literal_patterns, keys)
def test_an_escaped_literal_matches_itself_and_nothing_else(
    literal: tuple[str, str], other: str
) -> None:
    text, pattern = literal
    match = compile_glob(pattern)
    assert match(text)
    assert match(other) == (other == text)


@given(st.text(max_size=10))
def test_escape_glob_is_identity_without_metacharacters(text: str) -> None:
    if not any(c in "*?[]\\" for c in text):
        assert escape_glob(text) == text


_KEYS = sorted(
    {
        "a",
        "b",
        "ab",
        "ba",
        "a:b",
        "a-b",
        "a_b",
        "a0",
        "0a",
        "é",
        "aé",
        "日",
        "a日b",
        "*",
        "a*",
        "?",
        "a?b",
        "[",
        "]",
        "[a]",
        "a]",
        "\\",
        "a\\b",
        "^",
        "a^",
        "-",
        "::",
        "aaa",
        "bab",
        "_0_",
        "a:b:c",
        "a[b",
        "é:a",
        "b-a",
    }
)


@pytest.mark.redis
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pattern=patterns)
def test_the_l1_matches_exactly_what_redis_scan_matches(real_redis: Any, pattern: str) -> None:
    if real_redis.dbsize() != len(_KEYS):
        real_redis.flushdb()
        real_redis.mset({k.encode(): b"1" for k in _KEYS})
    redis_says = {k.decode() for k in real_redis.scan_iter(match=pattern.encode(), count=1000)}
    match = compile_glob(pattern)
    assert {k for k in _KEYS if match(k)} == redis_says, pattern


# -- bounded work: no pattern makes one key cost more than len(key) x len(pattern) --

#: patterns built to make a backtracking matcher explode (issue 12, item 1)
_ADVERSARIAL = st.builds(
    lambda stars, lit, tail: f"*{lit}" * stars + "*" + tail,
    st.integers(1, 40),
    st.sampled_from(["a", "?", "[a]", "[^b]", "aa", "a?"]),
    st.sampled_from(["b", "", "?b", "[b]"]),
)


def _steps(pattern: str, key: str) -> tuple[bool, int]:
    from sentia_core.cache._glob import glob_program

    matched, steps = glob_program(pattern).run(key.encode("utf-8", "surrogatepass"))
    assert matched == compile_glob(pattern)(key)  # the fast shapes agree with it
    return matched, steps


@given(_ADVERSARIAL, st.integers(0, 400), st.sampled_from(["c", "", "b", "ab"]))
def test_adversarial_patterns_run_in_bounded_steps(pattern: str, n: int, tail: str) -> None:
    key = "a" * n + tail
    _, steps = _steps(pattern, key)
    size = len(pattern.encode())
    assert steps <= (len(key) + 1) * (size + 1)


def test_the_reported_pattern_costs_a_handful_of_steps() -> None:
    # issue 12: "*a"*7 + "*b" against a 54-byte key took seconds with a regex
    matched, steps = _steps("*a" * 7 + "*b", "a" * 53 + "c")
    assert not matched
    assert steps <= 54 * 16


@given(patterns, keys)
def test_steps_are_bounded_for_any_pattern(pattern: str, key: str) -> None:
    try:
        _, steps = _steps(pattern, key)
    except InvalidPatternError:
        return
    assert steps <= (len(key.encode()) + 1) * (len(pattern.encode()) + 1)


def test_patterns_longer_than_the_bound_are_refused_with_a_clear_error() -> None:
    from sentia_core.cache._glob import MAX_PATTERN_BYTES

    compile_glob("a" * MAX_PATTERN_BYTES)
    with pytest.raises(InvalidPatternError, match="longer than 1024 bytes"):
        compile_glob("a" * (MAX_PATTERN_BYTES + 1))
    with pytest.raises(InvalidPatternError):
        compile_glob("é" * (MAX_PATTERN_BYTES // 2 + 1))  # bytes, not characters


@pytest.mark.redis
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(
    pattern=st.one_of(patterns, _ADVERSARIAL),
    generated=st.lists(st.text(alphabet="ab:?*[]\\-é", max_size=24), min_size=1, max_size=12),
)
def test_generated_keys_match_exactly_what_redis_scan_matches(
    real_redis: Any, pattern: str, generated: list[str]
) -> None:
    try:
        match = compile_glob(pattern)
    except InvalidPatternError:
        return
    real_redis.flushdb()
    real_redis.mset({"k:" + k: b"1" for k in generated})
    qualified = "k:" + pattern
    redis_says = {
        k.decode("utf-8", "surrogatepass")[2:]
        for k in real_redis.scan_iter(match=qualified.encode(), count=1000)
    }
    assert {k for k in set(generated) if match(k)} == redis_says, pattern
