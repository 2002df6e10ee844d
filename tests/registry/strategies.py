"""Hypothesis strategies shared by the registry tests."""

from __future__ import annotations

from hypothesis import strategies as st

#: text that may be anything a hostile writer puts in a Redis hash
junk_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "0", "-1", "1e309", "nan", "inf", "{}", "[]", "null", "healthy"]),
    st.integers().map(str),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3).map(
        lambda d: __import__("json").dumps(d)
    ),
)

FIELDS = ["address", "weight", "zone", "status", "metadata", "registered_at", "heartbeat_at"]

#: a stored instance hash with any subset of fields, each possibly garbage
instance_hashes = st.dictionaries(
    st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)), junk_text, max_size=9
)

#: probe outcomes for the health tracker
probe_results = st.lists(st.booleans(), max_size=60)
