"""Which outcomes a policy handles: transient errors, HTTP statuses, and rule sets.

Theory of operation: a *rule set* (:class:`OutcomeRules`) is what ``retry_on=``,
``record_exceptions=``, ``ignore_exceptions=`` and ``fallback_on=`` become: a
tuple of exception classes, a tuple of predicates ``(exc) -> bool`` and a set
of HTTP statuses. An exception matches when it is an instance of a class, a
predicate returns True, or it carries a listed status; a returned value
matches only by status (a ``requests``/``httpx`` response with
``status_code == 503``, say).

The status is read the way :mod:`._retry_after` reads its hint: from outside,
so defensively. :func:`http_status` looks at ``status_code``, ``status`` and
``code`` on the object and on its ``response`` attribute, accepts only an int
in 100..599, and never raises (a property that raises means "no status").

Names in configuration files (``retry_on = ["transient", "http:500",
"ConnectionError", "myapp.errors.PartnerDown"]``) are checked for shape when
the file is loaded (:func:`check_rule_name`) and resolved when a policy is
built (:func:`resolve_rules`): builtins and sentia_core's errors by name,
anything else by importing ``module.Class`` (the application's own
configuration names its own code, as a Python call would).
"""

from __future__ import annotations

import builtins
import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sentia_core import errors as _errors
from sentia_core.errors import CallRejectedError, ConfigError, RateLimitExceeded

__all__ = [
    "FALLBACK_STATUSES",
    "RETRY_STATUSES",
    "OutcomeRules",
    "check_rule_name",
    "http_status",
    "is_transient",
    "resolve_rules",
]

#: HTTP statuses a retry is worth by default: too many requests, bad gateway,
#: service unavailable, gateway timeout.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: Statuses the default fallback covers besides the transient errors: any 5xx.
FALLBACK_STATUSES = frozenset(range(500, 600)) | {429}

#: A rate-limit denial (ours, the local 429) is transient too: its
#: ``retry_after`` becomes the retry's delay.
_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    RateLimitExceeded,
)
_STATUS_ATTRS = ("status_code", "status", "code")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_STATUS = re.compile(r"^http:([1-5][0-9][0-9])$")
_ALIASES = ("transient", "unavailable")


def _status_of(obj: object) -> int | None:
    for attr in _STATUS_ATTRS:
        try:
            value = getattr(obj, attr, None)
        except Exception:
            continue
        if type(value) is int and 100 <= value <= 599:
            return value
    return None


def http_status(obj: object) -> int | None:
    """The HTTP status an exception or a result carries, or None.

    Reads ``status_code`` / ``status`` / ``code`` on ``obj``, then on
    ``obj.response`` (httpx's ``HTTPStatusError``, requests' ``HTTPError``).
    Only an int from 100 to 599 counts; nothing here raises.
    """
    status = _status_of(obj)
    if status is not None:
        return status
    try:
        response = getattr(obj, "response", None)
    except Exception:
        return None
    return None if response is None else _status_of(response)


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying: connection and timeout errors (``CallTimeoutError``
    included), a rate-limit denial (``RateLimitExceeded``) and exceptions carrying
    HTTP 429, 502, 503 or 504."""
    return isinstance(exc, _TRANSIENT_TYPES) or http_status(exc) in RETRY_STATUSES


@dataclass(frozen=True, slots=True)
class OutcomeRules:
    """A resolved rule set (see the module docs).

    Attributes:
        types: exception classes that match (subclasses too).
        predicates: ``(exc) -> bool`` callables.
        statuses: HTTP statuses that make an exception or a result match.
    """

    types: tuple[type[BaseException], ...] = ()
    predicates: tuple[Callable[[BaseException], bool], ...] = ()
    statuses: frozenset[int] = frozenset()

    def matches(self, exc: BaseException) -> bool:
        """Whether the exception ``exc`` matches."""
        if isinstance(exc, self.types):
            return True
        if self.statuses and http_status(exc) in self.statuses:
            return True
        return any(p(exc) for p in self.predicates)

    def matches_result(self, result: object) -> bool:
        """Whether a returned value matches (by HTTP status only)."""
        return bool(self.statuses) and http_status(result) in self.statuses

    @property
    def handles_results(self) -> bool:
        """True when some returned values can match (a status is listed)."""
        return bool(self.statuses)

    def as_breaker_rules(self) -> tuple[Any, ...]:
        """The same rules as ``record_exceptions`` / ``ignore_exceptions`` entries."""
        rules: list[Any] = [*self.types, *self.predicates]
        if self.statuses:
            statuses = self.statuses
            rules.append(lambda exc: http_status(exc) in statuses)
        return tuple(rules)


#: The default ``retry_on``: connection and timeout errors, rate-limit
#: denials, 429/502/503/504.
TRANSIENT = OutcomeRules(types=_TRANSIENT_TYPES, statuses=RETRY_STATUSES)
#: The default ``fallback_on``: the transient errors, a policy's own
#: rejections (open circuit, rate limit, full bulkhead) and any 5xx or 429.
UNAVAILABLE = OutcomeRules(types=(*_TRANSIENT_TYPES, CallRejectedError), statuses=FALLBACK_STATUSES)
#: The default breaker ``ignore_exceptions``: rejections and a partner's 429
#: (it is throttling us, not failing).
NOT_FAILURES = OutcomeRules(types=(CallRejectedError,), statuses=frozenset({429}))


def check_rule_name(key: str, name: object) -> str:
    """Validate one configuration rule name (shape only; resolved later).

    Accepts ``"transient"``, ``"unavailable"``, ``"http:NNN"``, or an exception
    class name (a builtin, a sentia_core error, or ``module.Class``).

    Raises:
        ConfigError: naming ``key``.
    """
    if not isinstance(name, str):
        raise ConfigError(key, name, "must be a string")
    if name in _ALIASES or _STATUS.match(name) or _NAME.match(name):
        return name
    raise ConfigError(
        key,
        name,
        "expected 'transient', 'unavailable', 'http:NNN' or an exception class name",
    )


def _resolve_name(key: str, name: str) -> OutcomeRules:
    if name == "transient":
        return TRANSIENT
    if name == "unavailable":
        return UNAVAILABLE
    m = _STATUS.match(name)
    if m:
        return OutcomeRules(statuses=frozenset({int(m.group(1))}))
    if "." not in name:
        found = getattr(builtins, name, None) or getattr(_errors, name, None)
    else:
        module, _, attr = name.rpartition(".")
        try:
            found = getattr(importlib.import_module(module), attr, None)
        except ImportError as exc:
            raise ConfigError(key, name, f"cannot import {module!r}: {exc}") from None
    if not (isinstance(found, type) and issubclass(found, BaseException)):
        raise ConfigError(key, name, "names no exception class")
    return OutcomeRules(types=(found,))


def resolve_rules(key: str, rules: object) -> OutcomeRules:
    """An :class:`OutcomeRules` from what a caller or a config file gave.

    ``rules`` is an exception class, a predicate, a rule name (see
    :func:`check_rule_name`), an :class:`OutcomeRules`, or an iterable of any
    of these (merged).

    Raises:
        ConfigError: naming ``key``.
    """
    if isinstance(rules, OutcomeRules):
        return rules
    items: Iterable[object]
    if isinstance(rules, (str, type)) or (callable(rules) and not isinstance(rules, type)):
        items = (rules,)
    else:
        try:
            items = tuple(rules)  # type: ignore[arg-type]
        except TypeError:
            raise ConfigError(
                key, rules, "expected exception classes, predicates or rule names"
            ) from None
    types: list[type[BaseException]] = []
    preds: list[Callable[[BaseException], bool]] = []
    statuses: set[int] = set()
    for item in items:
        if isinstance(item, str):
            part = _resolve_name(key, check_rule_name(key, item))
        elif isinstance(item, OutcomeRules):
            part = item
        elif isinstance(item, type):
            if not issubclass(item, BaseException):
                raise ConfigError(key, item, "a class here must be an exception class")
            part = OutcomeRules(types=(item,))
        elif callable(item):
            part = OutcomeRules(predicates=(item,))
        else:
            raise ConfigError(key, item, "expected an exception class, a predicate or a name")
        types += [t for t in part.types if t not in types]
        preds += part.predicates
        statuses |= part.statuses
    return OutcomeRules(tuple(types), tuple(preds), frozenset(statuses))
