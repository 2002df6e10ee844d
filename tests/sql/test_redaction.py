"""The redaction guarantee: no literal of a recorded statement appears in any output.

Outputs are everything the optimizer lets out: fingerprints, statistics and
their samples, slow-query reports, N+1 reports, events, exports, log records
and reprs. Statements come from tests/sql/strategies.py, where every literal
carries a marker that nothing else could produce.
"""

from __future__ import annotations

import json
import logging
import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentia_core._events import Event
from sentia_core.sql import QueryOptimizer, fingerprint, redact

from .strategies import Sql, soups, statements


def leaks(marker: str, text: str) -> bool:
    if marker.isdigit():
        return re.search(rf"(?<![\d.]){marker}(?!\d)", text) is not None
    return marker in text


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def everything_the_optimizer_lets_out(batch: list[Sql]) -> str:
    opt = QueryOptimizer(
        slow_query_threshold=1e-9,  # every execution is a slow query
        sample_rate=1.0,
        nplusone_threshold=2,
        rng=random.Random(0),
    )
    events: list[Event] = []
    opt.add_listener(events.append)
    capture = _Capture()
    logger = logging.getLogger("sentia_core.sql")
    logger.addHandler(capture)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        with opt.unit_of_work("request"):
            for sql in batch:
                for _ in range(3):  # the same statement from one line: an N+1 when a SELECT
                    opt.record(sql.text, 0.001, params=("zqparam",), rows=1)
    finally:
        logger.removeHandler(capture)
        logger.setLevel(old_level)
    parts = [
        json.dumps(opt.export()),
        repr(opt.stats()),
        repr(opt.top(5)),
        repr(opt.slow_queries()),
        repr(opt.nplusone_reports()),
        repr(events),
        repr(opt),
        "\n".join(capture.lines),
    ]
    for sql in batch:
        parts.append(fingerprint(sql.text))
        parts.append(redact(sql.text))
        parts.append(repr(opt.shape(sql.text)))
    return "\n".join(parts)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(statements(), soups(quotes=False)), min_size=1, max_size=4))
def test_no_literal_appears_in_any_output(batch: list[Sql]) -> None:
    out = everything_the_optimizer_lets_out(batch)
    assert "zqparam" not in out
    for sql in batch:
        for marker in sql.markers:
            assert not leaks(marker, out), (sql.text, marker)


def test_the_outputs_checked_are_not_empty() -> None:
    # Guard against a vacuous property: the batch produces every kind of output.
    sql = Sql("SELECT * FROM users WHERE email = 'zqabcdefgh'", ("zqabcdefgh",))
    out = everything_the_optimizer_lets_out([sql])
    assert "SELECT * FROM users WHERE email = ?" in out
    assert '"slow_queries": [{' in out
    assert '"nplusone": [{' in out
    assert "N+1 query" in out and "slow query" in out
    assert "NPlusOneDetected" in out and "SlowQueryDetected" in out
    assert not leaks("zqabcdefgh", out)


@pytest.mark.parametrize(
    "text",
    [
        "SELECT * FROM t WHERE token = 'zqtokentail",  # cut inside a string
        "SELECT * FROM t WHERE token = $$zqtokentail",  # cut inside a dollar quote
        "SELECT * FROM t WHERE token = E'zq\\'tokentail'",  # escaped quote
        "SELECT * FROM t /* zqtokentail */ WHERE a = 1",  # comments can hold anything
        "SELECT * FROM t WHERE a = 1 -- zqtokentail",
        "SELECT /* a /* zqtokentail */ */ 1",
    ],
)
def test_malformed_and_commented_text_hides_its_contents(text: str) -> None:
    out = everything_the_optimizer_lets_out([Sql(text, ())])
    assert "tokentail" not in out
