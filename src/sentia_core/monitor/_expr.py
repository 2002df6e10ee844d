"""The small expression language alert rules read metrics with.

Grammar (PromQL-flavoured, deliberately tiny)::

    expr     := term (('+' | '-') term)*
    term     := unary (('*' | '/') unary)*
    unary    := '-' unary | primary
    primary  := NUMBER | '(' expr ')' | call | selector
    call     := ('rate' | 'increase') '(' selector range ')'
              | STAT '(' selector [range] ')'
              | 'quantile' '(' NUMBER ',' selector [range] ')'
    STAT     := p50 | p75 | p90 | p95 | p99 | p999 | mean | count | sum | min | max
    selector := NAME ['{' LABEL ('=' | '!=') STRING (',' LABEL ('=' | '!=') STRING)* '}']
    range    := '[' NUMBER [ms | s | m | h | d] ']'

A bare selector reads a gauge or counter (summed over the matching series).
``rate``/``increase`` read a counter (or a histogram's count) from samples
taken at each evaluation (a metric that does not exist yet reads as 0, so a
counter created between two evaluations counts from zero); the STAT
functions read a histogram, merged over the matching series, over the window
in brackets or over all time. Anything with
no data (no series yet, an empty window, a division by zero, a rate with only
one sample so far) evaluates to None, which alert rules treat as "not breaching".

Examples: ``system_cpu_percent``, ``p95(http_request_seconds[5m])``,
``rate(app_errors_total[5m]) / rate(app_requests_total[5m])``,
``rate(cache_hits_total[5m]) / (rate(cache_hits_total[5m]) + rate(cache_misses_total[5m]))``.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from sentia_core.errors import ConfigError, MonitorError

from ._sketch import QuantileSketch

__all__ = [
    "BinOp",
    "Call",
    "EvalState",
    "Expression",
    "ExpressionError",
    "MetricSource",
    "Neg",
    "Num",
    "Selector",
    "evaluate",
    "parse_expression",
]

STATS: dict[str, float | None] = {
    "p50": 0.5,
    "p75": 0.75,
    "p90": 0.9,
    "p95": 0.95,
    "p99": 0.99,
    "p999": 0.999,
    "mean": None,
    "count": None,
    "sum": None,
    "min": None,
    "max": None,
}
_RATES = ("rate", "increase")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "": 1.0}

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?P<unit>ms|s|m|h|d)?(?![A-Za-z0-9_])
    | (?P<name>[A-Za-z_:][A-Za-z0-9_:]*)
    | (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<op>!=|[-+*/(){}\[\],=])
    )""",
    re.VERBOSE,
)


class ExpressionError(MonitorError):
    """An expression could not be evaluated (e.g. a quantile of a counter)."""


class _ParseError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Num:
    """A number literal."""

    value: float


@dataclass(frozen=True, slots=True)
class Neg:
    """Unary minus."""

    operand: Expression


@dataclass(frozen=True, slots=True)
class BinOp:
    """``left op right`` with op one of ``+ - * /``."""

    op: str
    left: Expression
    right: Expression


@dataclass(frozen=True, slots=True)
class Selector:
    """A metric name and label matchers ``(label, "=" or "!=", value)``."""

    name: str
    matchers: tuple[tuple[str, str, str], ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether a series with ``labels`` is selected."""
        for label, op, value in self.matchers:
            have = labels.get(label, "")
            if (have == value) != (op == "="):
                return False
        return True


@dataclass(frozen=True, slots=True)
class Call:
    """A function over a selector: ``rate``, ``increase``, a STAT or ``quantile``."""

    func: str
    selector: Selector
    window: float | None = None
    q: float | None = None


Expression = Num | Neg | BinOp | Selector | Call


class MetricSource(Protocol):
    """What an expression reads: the monitor's registry implements it."""

    def scalar(self, selector: Selector) -> float | None:
        """Sum of the matching counters or gauges (a histogram's count), None if none match."""
        ...

    def distribution(self, selector: Selector, window: float | None) -> QuantileSketch | None:
        """The matching histograms merged over ``window`` (None: all time), None if none match."""
        ...


class EvalState:
    """Samples kept between evaluations for ``rate``/``increase`` (one per rule)."""

    __slots__ = ("samples",)

    def __init__(self) -> None:
        self.samples: dict[Call, deque[tuple[float, float]]] = {}


def parse_expression(text: str, parameter: str = "metric") -> Expression:
    """Parse ``text``; the result is a frozen tree usable by :func:`evaluate`.

    Raises:
        ConfigError: naming ``parameter``, when the text does not parse.
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(parameter, text, "must be a non-empty expression")
    try:
        return _Parser(text).parse()
    except _ParseError as exc:
        raise ConfigError(parameter, text, str(exc)) from None


def windows_of(expr: Expression) -> Iterator[tuple[str, float | None]]:
    """Every (function, window) used in ``expr``: lets the monitor check them up front."""
    if isinstance(expr, Call):
        yield expr.func, expr.window
    elif isinstance(expr, Neg):
        yield from windows_of(expr.operand)
    elif isinstance(expr, BinOp):
        yield from windows_of(expr.left)
        yield from windows_of(expr.right)


def evaluate(expr: Expression, source: MetricSource, now: float, state: EvalState) -> float | None:
    """The value of ``expr`` at monotonic time ``now``, or None when there is no data.

    Raises:
        ExpressionError: a function was applied to the wrong kind of metric.
    """
    if isinstance(expr, Num):
        return expr.value
    if isinstance(expr, Neg):
        v = evaluate(expr.operand, source, now, state)
        return None if v is None else -v
    if isinstance(expr, BinOp):
        left = evaluate(expr.left, source, now, state)
        right = evaluate(expr.right, source, now, state)
        if left is None or right is None:
            return None
        if expr.op == "+":
            out = left + right
        elif expr.op == "-":
            out = left - right
        elif expr.op == "*":
            out = left * right
        else:
            if right == 0:
                return None
            out = left / right
        return out if math.isfinite(out) else None
    if isinstance(expr, Selector):
        return source.scalar(expr)
    if expr.func in _RATES:
        return _rate(expr, source, now, state)
    sketch = source.distribution(expr.selector, expr.window)
    if sketch is None or not sketch.count:
        return 0.0 if sketch is not None and expr.func in ("count", "sum") else None
    func = expr.func
    if func == "quantile" or STATS.get(func) is not None:
        q = expr.q if func == "quantile" else STATS[func]
        assert q is not None
        return sketch.quantile(q)
    if func == "mean":
        return sketch.mean
    if func == "count":
        return float(sketch.count)
    if func == "sum":
        return sketch.sum
    if func == "min":
        return sketch.min
    return sketch.max


def _rate(expr: Call, source: MetricSource, now: float, state: EvalState) -> float | None:
    value = source.scalar(expr.selector)
    samples = state.samples.get(expr)
    if samples is None:
        samples = state.samples[expr] = deque()
    if value is None:
        value = 0.0  # a counter nobody has created yet has counted nothing
    window = expr.window
    assert window is not None
    # at most ~256 samples per window: a reading closer than window/256 to the
    # one before replaces the newest sample instead of adding one
    if samples and (
        samples[-1][0] >= now or (len(samples) >= 2 and now - samples[-2][0] < window / 256)
    ):
        samples.pop()
    samples.append((now, value))
    start = now - window
    # keep exactly one sample at or before the window start (the baseline)
    while len(samples) >= 2 and samples[1][0] <= start:
        samples.popleft()
    if len(samples) < 2:
        return None
    t0, v0 = samples[0]
    increase = value - v0 if value >= v0 else value  # a reset counts from zero
    if expr.func == "increase":
        return increase
    elapsed = now - t0
    return increase / elapsed if elapsed > 0 else None


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise _ParseError(
                    f"unexpected character at position {pos}: {text[pos : pos + 10]!r}"
                )
            kind = m.lastgroup
            if kind == "unit":
                kind = "num"
            assert kind is not None
            if kind == "num":
                self.tokens.append(("num", m.group("num") + (m.group("unit") or ""), m.start()))
            else:
                self.tokens.append((kind, m.group(kind), m.start()))
            pos = m.end()
        self.i = 0

    def peek(self) -> tuple[str, str, int]:
        if self.i < len(self.tokens):
            return self.tokens[self.i]
        return ("end", "", len(self.text))

    def take(self, kind: str, value: str | None = None) -> str:
        k, v, p = self.peek()
        if k != kind or (value is not None and v != value):
            want = value or kind
            got = v or "end of input"
            raise _ParseError(f"expected {want!r} at position {p}, got {got!r}")
        self.i += 1
        return v

    def accept(self, value: str) -> bool:
        k, v, _ = self.peek()
        if k == "op" and v == value:
            self.i += 1
            return True
        return False

    def parse(self) -> Expression:
        expr = self.expr()
        k, v, p = self.peek()
        if k != "end":
            raise _ParseError(f"unexpected {v!r} at position {p}")
        return expr

    def expr(self) -> Expression:
        node = self.term()
        while True:
            if self.accept("+"):
                node = BinOp("+", node, self.term())
            elif self.accept("-"):
                node = BinOp("-", node, self.term())
            else:
                return node

    def term(self) -> Expression:
        node = self.unary()
        while True:
            if self.accept("*"):
                node = BinOp("*", node, self.unary())
            elif self.accept("/"):
                node = BinOp("/", node, self.unary())
            else:
                return node

    def unary(self) -> Expression:
        if self.accept("-"):
            return Neg(self.unary())
        return self.primary()

    def primary(self) -> Expression:
        k, v, p = self.peek()
        if k == "num":
            self.i += 1
            return Num(self.number(v, p, allow_unit=False))
        if self.accept("("):
            node = self.expr()
            self.take("op", ")")
            return node
        if k != "name":
            raise _ParseError(f"expected a number, a metric or a function at position {p}")
        self.i += 1
        if self.peek()[:2] == ("op", "("):
            return self.call(v, p)
        return self.selector_rest(v)

    def number(self, text: str, pos: int, *, allow_unit: bool) -> float:
        m = re.fullmatch(r"(.*?)(ms|s|m|h|d)?", text)
        assert m is not None
        unit = m.group(2) or ""
        if unit and not allow_unit:
            raise _ParseError(f"a duration ({text!r}) is only allowed in [brackets] ({pos})")
        value = float(m.group(1)) * _UNITS[unit]
        if not math.isfinite(value):
            raise _ParseError(f"number out of range at position {pos}")
        return value

    def call(self, func: str, pos: int) -> Call:
        if func not in STATS and func not in _RATES and func != "quantile":
            known = ", ".join(sorted([*STATS, *_RATES, "quantile"]))
            raise _ParseError(f"unknown function {func!r} at position {pos} (known: {known})")
        self.take("op", "(")
        q: float | None = None
        if func == "quantile":
            k, v, p = self.peek()
            if k != "num":
                raise _ParseError(f"quantile() needs a number first, at position {p}")
            self.i += 1
            q = self.number(v, p, allow_unit=False)
            if not 0.0 <= q <= 1.0:
                raise _ParseError(f"quantile {q} is not between 0 and 1 (position {p})")
            self.take("op", ",")
        k, v, p = self.peek()
        if k != "name":
            raise _ParseError(f"{func}() needs a metric name at position {p}")
        self.i += 1
        selector = self.selector_rest(v)
        window: float | None = None
        if self.accept("["):
            k, v, p = self.peek()
            if k != "num":
                raise _ParseError(f"expected a duration such as 5m at position {p}")
            self.i += 1
            window = self.number(v, p, allow_unit=True)
            if window <= 0:
                raise _ParseError(f"the window must be positive (position {p})")
            self.take("op", "]")
        elif func in _RATES:
            raise _ParseError(f"{func}() needs a window, e.g. {func}({selector.name}[5m])")
        self.take("op", ")")
        return Call(func, selector, window, q)

    def selector_rest(self, name: str) -> Selector:
        matchers: list[tuple[str, str, str]] = []
        if self.accept("{"):
            while not self.accept("}"):
                label = self.take("name")
                if self.accept("="):
                    op = "="
                elif self.accept("!="):
                    op = "!="
                else:
                    raise _ParseError(f"expected = or != after label {label!r}")
                raw = self.take("str")
                matchers.append((label, op, _unquote(raw)))
                if not self.accept(","):
                    self.take("op", "}")
                    break
        return Selector(name, tuple(matchers))


def _unquote(raw: str) -> str:
    body = raw[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), body)
