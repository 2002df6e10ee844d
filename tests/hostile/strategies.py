"""Hypothesis strategies for hostile data: any Redis type, any bytes, any message.

``foreign_values`` draws what someone else (a careless neighbour, an attacker,
another version of the library) could leave under a key the library owns;
:func:`write` puts it there with plain commands, on fakeredis or a real server.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

#: one Redis value: (type, content)
_members = st.lists(st.binary(max_size=12), min_size=1, max_size=4, unique=True)
foreign_values = st.one_of(
    st.tuples(st.just("string"), st.binary(max_size=40)),
    st.tuples(st.just("list"), _members),
    st.tuples(st.just("set"), _members),
    st.tuples(
        st.just("hash"),
        st.dictionaries(st.binary(max_size=8), st.binary(max_size=12), min_size=1, max_size=3),
    ),
    st.tuples(
        st.just("zset"),
        st.dictionaries(st.binary(max_size=8), st.floats(-1e9, 1e9), min_size=1, max_size=3),
    ),
)

#: only values of another type than a string (WRONGTYPE for GET / SET-family reads)
non_strings = foreign_values.filter(lambda v: v[0] != "string")


def write(client: Any, key: bytes | str, value: tuple[str, Any]) -> None:
    """Replace ``key`` by ``value`` (no TTL: foreign data need not have one)."""
    kind, content = value
    client.delete(key)
    if kind == "string":
        client.set(key, content)
    elif kind == "list":
        client.rpush(key, *content)
    elif kind == "set":
        client.sadd(key, *content)
    elif kind == "hash":
        client.hset(key, mapping=content)
    else:
        client.zadd(key, content)


_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
_json = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


def _message(fields: dict[str, Any]) -> bytes:
    body: dict[str, Any] = {"v": 1, "p": "attacker", "s": 1, "k": "keys", "d": ["x"], "t": 1}
    body.update(fields)
    return json.dumps(body).encode()


#: what anyone who can PUBLISH could send on an invalidation channel
channel_messages = st.one_of(
    st.binary(max_size=200),
    _json.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["v", "p", "s", "k", "d", "t"]), _json, max_size=6).map(
        _message
    ),
    st.builds(
        lambda pattern: _message({"k": "pattern", "d": [pattern]}),
        st.one_of(st.text(alphabet="*a?[]^\\-b", max_size=60), st.just("*a" * 700 + "*b")),
    ),
)
