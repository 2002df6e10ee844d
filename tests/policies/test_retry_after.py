"""Reading Retry-After hints: HTTP header parsing and hostile values never raise."""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime

from hypothesis import given
from hypothesis import strategies as st

from sentia_core.policies import parse_retry_after
from sentia_core.policies._retry_after import hint_seconds, retry_after_attribute

from .strategies import hostile_hints

NOW = 1_750_000_000.0


def test_delta_seconds() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(b" 7 ") == 7.0
    assert parse_retry_after("0") == 0.0


def test_an_http_date_is_measured_against_now() -> None:
    when = datetime.fromtimestamp(NOW + 30, tz=timezone.utc)
    assert parse_retry_after(format_datetime(when, usegmt=True), now=NOW) == 30.0


def test_a_date_in_the_past_means_now() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=NOW) == 0.0


def test_garbage_gives_none() -> None:
    for value in (None, "", "soon", "-5", "1.5", "１２", "9" * 100, b"\xff\xfe", "Mon, 99 Foo"):
        assert parse_retry_after(value, now=NOW) is None  # type: ignore[arg-type]


@given(st.one_of(st.text(max_size=80), st.binary(max_size=80)))
def test_parsing_never_raises_and_never_goes_negative(value: str | bytes) -> None:
    seconds = parse_retry_after(value, now=NOW)
    assert seconds is None or seconds >= 0.0


@given(hostile_hints)
def test_hint_values_are_none_or_non_negative(value: object) -> None:
    seconds = hint_seconds(value)
    assert seconds is None or seconds >= 0.0


@given(hostile_hints)
def test_the_attribute_reader_never_raises(value: object) -> None:
    class Carrier:
        retry_after = value

    seconds = retry_after_attribute(Carrier())
    assert seconds is None or seconds >= 0.0
