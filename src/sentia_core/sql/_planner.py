"""What a dialect's planner gives :mod:`._verify`: plans, a base class, one error.

A :class:`Planner` is one verification session on one connection: it samples
column values, builds a hypothetical or rolled-back index, EXPLAINs a probe
and judges two plans. Each database subclasses it in its own module
(:mod:`._sqlite`, :mod:`._postgres`); :mod:`._verify` keeps the generic
logic (which shapes to probe, the second pass, the verdicts) and never asks
which database it talks to.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sentia_core.errors import UnsafeStatementError

from ._analysis import ParameterSlot
from ._probe import Probe

__all__ = ["ExplainError", "Plan", "Planner", "probe_index_name", "quantile"]


@dataclass(frozen=True, slots=True)
class Plan:
    """One EXPLAIN result.

    Attributes:
        cost: the planner's total cost, or None when the database has none.
        summary: a one-line summary for people.
        indexes: the names of the indexes the plan uses.
        rows: the raw plan rows, when the dialect judges by them.
    """

    cost: float | None
    summary: str
    indexes: frozenset[str]
    rows: tuple[str, ...] = ()


class ExplainError(Exception):
    """The database refused to plan a probe or to build a probe index."""


def quantile(values: Sequence[object], q: float) -> object:
    """The value at fraction ``q`` of an ordered sample (None when empty)."""
    if not values:
        return None
    i = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return values[i]


def probe_index_name(key: str) -> str:
    """A stable name for a real probe index built from ``key`` (its DDL)."""
    return "sentia_probe_" + hashlib.sha1(key.encode()).hexdigest()[:12]


class Planner:
    """A verification session on one connection; subclassed per database.

    Attributes:
        method: how indexes are tried (``"hypopg"``, ``"rolled-back-index"``,
            ``"sqlite-savepoint"``...); reported in each verdict.
        has_costs: the plans carry costs (so a cost reduction can be asked).
        marker: the driver's placeholder.
    """

    method = ""
    has_costs = True
    marker = "?"

    def __init__(self, conn: Any, rng: random.Random) -> None:
        self.conn = conn
        self.rng = rng

    def scalar(self, value: int) -> object:
        """How an integer LIMIT/OFFSET value is bound."""
        return value

    def array_of(self, value: object) -> object:
        """How a value is bound where the probe needs an array (``= ANY(?)``)."""
        return value

    def escape(self, text: str) -> str:
        """Probe text made safe for the driver's placeholder syntax."""
        return text

    def sample(self, table: str, column: str) -> tuple[list[object], object]:
        """Ordered sample values of a column and a typical one."""
        raise NotImplementedError

    def session(self) -> contextlib.AbstractContextManager[None]:
        """Everything happens inside this; it leaves no trace."""
        raise NotImplementedError

    def with_index(
        self, table: str, columns: Sequence[tuple[str, bool]], key: str
    ) -> contextlib.AbstractContextManager[str]:
        """Put an index on ``(column, descending)`` pairs in place; yields its name.

        Raises:
            ExplainError: the database refused it.
        """
        raise NotImplementedError

    def explain(self, text: str, params: list[object]) -> Plan:
        """EXPLAIN ``text`` (never run it).

        Raises:
            ExplainError: the database could not plan it.
        """
        raise NotImplementedError

    def judge(self, before: Plan, after: Plan, index: str, margin: float) -> tuple[str, str]:
        """``(outcome, note)`` for two plans of one shape (see :class:`~._verify.PlanCheck`)."""
        raise NotImplementedError

    def render(
        self, p: Probe, value: Callable[[ParameterSlot], object]
    ) -> tuple[str, list[object]]:
        """The probe's text with placeholders, and the values ``value`` binds."""
        marker = self.marker
        out: list[str] = []
        params: list[object] = []
        for part in p.parts:
            if isinstance(part, str):
                out.append(self.escape(part))
            else:
                out.append(marker)
                params.append(value(part))
        text = " ".join(out)
        if ";" in text:
            raise UnsafeStatementError("statement text contains ';'")
        return text, params
