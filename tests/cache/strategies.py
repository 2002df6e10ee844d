"""Hypothesis strategies for the cache tests."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from sentia_core.cache import escape_glob

#: keys: short, with glob metacharacters and non-ASCII now and then.
keys = st.text(alphabet=st.sampled_from("ab:*?[]\\-é日_0"), min_size=1, max_size=8)

tags = st.lists(st.sampled_from(["t1", "t2", "t3", "products", "user:1"]), max_size=3)

offsets = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-14 * 60, 14 * 60)
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.binary(max_size=30),
    st.datetimes(),
    st.datetimes(timezones=offsets),
    st.dates(),
    st.times(),
    st.times(timezones=offsets),
    st.timedeltas(),
    st.decimals(allow_nan=False),
    st.uuids().map(lambda u: uuid.UUID(str(u))),
)

hashables = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10), st.binary(max_size=5)),
    lambda inner: st.lists(inner, max_size=3).map(tuple) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)

#: every value the default serializer must round-trip exactly (type included).
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
        st.dictionaries(hashables, inner, max_size=3),
        st.dictionaries(st.just("\x00"), inner, max_size=1),
        st.sets(hashables, max_size=3),
        st.frozensets(hashables, max_size=3),
    ),
    max_leaves=12,
)


def same(a: Any, b: Any) -> bool:
    """Equal *and* of the same types all the way down (True is not 1, (1,) is not [1])."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        if len(a) != len(b):
            return False
        for k, v in a.items():
            match = [k2 for k2 in b if same(k, k2)]
            if len(match) != 1 or not same(v, b[match[0]]):
                return False
        return True
    if isinstance(a, (set, frozenset)):
        return a == b
    if isinstance(a, (datetime, time)):
        return a == b and a.utcoffset() == b.utcoffset()
    if isinstance(a, Decimal):
        return a == b and str(a) == str(b) or (a.is_nan() and b.is_nan())
    return bool(a == b)


# -- glob patterns -------------------------------------------------------------

_LITERALS = "ab:-é日_0^"
_SPECIAL = "*?[]\\"


def _class() -> st.SearchStrategy[str]:
    item = st.one_of(
        st.sampled_from([c for c in _LITERALS if c not in "-^"]),
        st.sampled_from(list(_SPECIAL + "-^")).map(lambda c: "\\" + c),
        st.tuples(st.sampled_from("ab0_"), st.sampled_from("ab0_")).map(lambda t: f"{t[0]}-{t[1]}"),
    )
    return st.builds(
        lambda neg, items: "[" + ("^" if neg else "") + "".join(items) + "]",
        st.booleans(),
        st.lists(item, min_size=1, max_size=3),
    )


_token = st.one_of(
    st.sampled_from(list(_LITERALS)),
    st.sampled_from(list(_SPECIAL)).map(lambda c: "\\" + c),
    st.just("*"),
    st.just("?"),
    _class(),
)

#: well-formed Redis glob patterns (every '[' closed).
patterns = st.lists(_token, min_size=1, max_size=6).map("".join)

#: literal text and the pattern that matches exactly it.
literal_patterns = keys.map(lambda k: (k, escape_glob(k)))
