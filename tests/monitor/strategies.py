"""Hypothesis strategies for the monitor tests."""

from __future__ import annotations

from hypothesis import strategies as st

#: Magnitudes the sketch's guarantee is checked over (12 orders of magnitude).
magnitudes = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False)

positive_values = st.lists(magnitudes, min_size=1, max_size=120)

#: Positive, negative and zero values mixed.
signed_values = st.lists(
    st.one_of(magnitudes, magnitudes.map(lambda v: -v), st.just(0.0)), min_size=1, max_size=120
)

quantiles = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)

accuracies = st.sampled_from([0.005, 0.01, 0.02, 0.05])

#: Metric values an alert rule sees: None (no data) or numbers around the thresholds.
rule_values = st.one_of(st.none(), st.sampled_from([0.0, 40.0, 55.0, 65.0, 75.0, 85.0, 95.0]))

#: Seconds between two evaluations.
steps = st.sampled_from([0.0, 1.0, 5.0, 10.0, 30.0, 61.0])
