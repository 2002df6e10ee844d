"""Rate strings: the grammar, canonical round trips, and garbage that only raises ConfigError."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentia_core.errors import ConfigError
from sentia_core.policies._ratelimit import Rate, parse_rate

from .strategies import rate_texts


@pytest.mark.parametrize(
    ("text", "limit", "period"),
    [
        ("1000/15min", 1000, 900.0),
        ("50/15min", 50, 900.0),
        ("200/15min", 200, 900.0),
        ("10/second", 10, 1.0),
        ("10/s", 10, 1.0),
        ("10 / sec", 10, 1.0),
        ("60/minute", 60, 60.0),
        ("60/m", 60, 60.0),
        ("5000/hour", 5000, 3600.0),
        ("5000/1h", 5000, 3600.0),
        ("100000/day", 100000, 86400.0),
        ("7/2d", 7, 172800.0),
        ("3/30s", 3, 30.0),
        ("50 per 15 minutes", 50, 900.0),
        ("50 per minute", 50, 60.0),
        ("50per15min", 50, 900.0),
        ("5/250ms", 5, 0.25),
        ("1/1.5h", 1, 5400.0),
        ("2/0.5s", 2, 0.5),
        ("1/week", 1, 604800.0),
        ("0/minute", 0, 60.0),
        ("  12 / 5 MIN  ", 12, 300.0),
    ],
)
def test_accepted_spellings(text: str, limit: int, period: float) -> None:
    assert parse_rate(text) == Rate(limit, period)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "10",
        "/minute",
        "ten/minute",
        "10/",
        "10/fortnight",
        "10/0s",
        "10/0min",
        "-1/minute",
        "+1/minute",
        "1.5/minute",
        "10//minute",
        "10/minute/extra",
        "10 minute",
        "10/-5s",
        "10/1e3s",
        "10/0.0001s",
        "10000000/s",
        "9" * 40 + "/s",
        "10/" + "9" * 400 + "w",
        "١٠/minute",
    ],
)
def test_bad_strings_raise_config_error_naming_the_parameter(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_rate(text, parameter="tiers['api']")
    assert err.value.parameter == "tiers['api']"
    assert "tiers['api']" in str(err.value)


def test_a_rate_object_passes_through_and_non_strings_are_rejected() -> None:
    rate = Rate(3, 1.0)
    assert parse_rate(rate) is rate
    for bad in (10, None, b"10/s", 1.5, ["10/s"]):
        with pytest.raises(ConfigError):
            parse_rate(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("limit", "period", "parameter"),
    [
        (-1, 1.0, "limit"),
        (1.5, 1.0, "limit"),
        (True, 1.0, "limit"),
        (10**16, 1e12, "limit"),
        (1, 0.0, "period"),
        (1, 0.0005, "period"),
        (1, math.inf, "period"),
        (1, math.nan, "period"),
        (1, "60", "period"),
        (2_000_000, 1.0, "limit"),
    ],
)
def test_rate_validates_its_fields(limit: object, period: object, parameter: str) -> None:
    with pytest.raises(ConfigError) as err:
        Rate(limit, period)  # type: ignore[arg-type]
    assert err.value.parameter == parameter


def test_canonical_text() -> None:
    assert str(Rate(1000, 900.0)) == "1000/15min"
    assert str(Rate(10, 1.0)) == "10/second"
    assert str(Rate(10, 60)) == "10/minute"
    assert str(Rate(5, 0.25)) == "5/250ms"
    assert str(Rate(5, 1.5)) == "5/1500ms"
    assert str(Rate(5, 7200.0)) == "5/2h"
    assert str(Rate(1, 604800.0)) == "1/week"
    assert Rate(100, 60.0).per_second == pytest.approx(100 / 60)


@given(rate_texts())
def test_every_spelling_parses_to_its_limit_and_exact_period(case: tuple[str, int, float]) -> None:
    text, limit, period = case
    assert parse_rate(text) == Rate(limit, period)


@given(
    st.integers(0, 10**6),
    st.floats(min_value=1.0, max_value=1e15, allow_nan=False, allow_infinity=False),
)
def test_str_round_trips(limit: int, period: float) -> None:
    rate = Rate(limit, period)
    assert parse_rate(str(rate)) == rate


@given(st.floats(min_value=0.001, max_value=10.0))
def test_str_round_trips_sub_second_periods(period: float) -> None:
    rate = Rate(1, period)
    assert parse_rate(str(rate)) == rate


@given(st.text(max_size=40))
def test_garbage_never_crashes_with_anything_but_config_error(text: str) -> None:
    error: ConfigError | None = None
    try:
        rate = parse_rate(text)
    except ConfigError as exc:
        error = exc
    if error is not None:
        assert error.parameter == "rate"
    else:
        assert isinstance(rate, Rate) and rate.limit >= 0 and rate.period >= 0.001


_digits = st.text("0123456789", max_size=7)
_near_miss = st.tuples(
    st.sampled_from(["", " ", "-", "+"]),
    _digits,
    st.sampled_from(["/", " per ", "per", "//", " ", ""]),
    st.text("0123456789.e-", max_size=8),
    st.sampled_from(["", " "]),
    st.text("abcdeghiklmnorstuwyMSH", max_size=10),
).map("".join)


@given(_near_miss)
def test_near_miss_strings_never_crash(text: str) -> None:
    try:
        rate = parse_rate(text)
    except ConfigError:
        pass
    else:
        assert str(rate) and rate.period >= 0.001
