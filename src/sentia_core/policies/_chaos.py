"""Chaos: inject faults, latency or fake results into your own tests, on a safe switch.

Theory of operation. :meth:`Chaos.decide` is the pure core: with the switch
on, it draws one number from the injected ``rng`` and returns a
:class:`ChaosDecision` (inject or not, what) for one call; the sync and async
adapters sleep (``sleep`` / ``async_sleep``), raise or return accordingly and
otherwise call through.

The switch is **off unless code turns it on**: ``enabled`` defaults to False,
and no environment variable can turn a Chaos on by itself. Code may add a
second key with ``require_env="NAME"``: then injection also needs the
environment variable ``NAME`` set to ``"1"`` (read when the Chaos is built),
so test-only chaos that is wired in code stays off in a deployment that does
not set the variable. Both must agree; neither alone injects.

Every injected outcome is marked: a :class:`ChaosEvent` per injection, an
injected exception carries ``sentia_chaos`` (the Chaos's name; see
:func:`is_injected`), and the stats count injections apart from calls.
"""

from __future__ import annotations

import copy
import os
import random
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, overload

from sentia_core._clock import SYSTEM_CLOCK, Clock
from sentia_core._events import Event, Listeners
from sentia_core._validate import check_callable, check_fraction, check_name, check_non_negative
from sentia_core.errors import ConfigError

from ._counter import Counter
from ._wrap import decorate

__all__ = ["Chaos", "ChaosDecision", "ChaosEvent", "ChaosStats", "is_injected"]

P = ParamSpec("P")
T = TypeVar("T")

_UNSET: Any = object()
#: the attribute that marks an exception raised by a Chaos.
MARK = "sentia_chaos"


def is_injected(error: BaseException) -> bool:
    """True if ``error`` was raised by a :class:`Chaos`, not by the real call."""
    return isinstance(getattr(error, MARK, None), str)


@dataclass(frozen=True, slots=True)
class ChaosDecision:
    """What to do with one call.

    Attributes:
        inject: False: run the call untouched.
        latency: seconds to wait before the outcome (0.0 for none).
        fault: True: raise the configured fault.
        result: True: return the configured result instead of calling.
    """

    inject: bool
    latency: float
    fault: bool
    result: bool


_PASS = ChaosDecision(False, 0.0, False, False)


@dataclass(frozen=True, slots=True)
class ChaosEvent(Event):
    """An injected outcome (never a real one).

    Attributes:
        chaos: the Chaos's name.
        kind: ``"fault"``, ``"result"`` or ``"latency"`` (only a delay; the
            real call then runs).
        latency: the injected delay in seconds (0.0 for none).
        error: the injected exception (``kind == "fault"``), else None.
        injected: always True, so a handler mixing event sources can tell.
    """

    chaos: str
    kind: str
    latency: float
    error: BaseException | None
    injected: bool = True


@dataclass(frozen=True, slots=True)
class ChaosStats:
    """A snapshot of a :class:`Chaos`.

    Attributes:
        enabled: whether injection is on now.
        calls: calls seen.
        faults: faults injected.
        results: fake results returned.
        delays: calls delayed (with or without a fault or result).
    """

    enabled: bool
    calls: int
    faults: int
    results: int
    delays: int


def _fault_factory(fault: object) -> Callable[[], BaseException] | None:
    if fault is None:
        return None
    if isinstance(fault, type) and issubclass(fault, BaseException):
        return fault
    if isinstance(fault, BaseException):
        return lambda: copy.copy(fault)  # a fresh instance: no shared traceback
    if callable(fault):
        return fault
    raise ConfigError("fault", fault, "expected an exception, its class, or a factory")


class Chaos:
    """Injects a fault, a delay or a fake result into a fraction of calls, for tests.

    Use it in a :class:`Policy` (``Policy(chaos=Chaos(...))``, innermost, so
    every other stage sees the injected outcome as the dependency's), as a
    decorator on ``def`` or ``async def``, or through :meth:`call` /
    :meth:`call_async`.

    Args:
        fault: raised on injection: an exception instance (copied each time),
            an exception class, or a factory returning an exception.
        latency: seconds to wait on injection before the outcome (>= 0).
        result: returned on injection instead of calling (any value, None too).
        rate: the fraction of calls injected (0..1; default 0.01).
        enabled: the switch: False (default), True, or a callable read on
            every call (a feature flag). Nothing else turns it on.
        require_env: also require this environment variable to be ``"1"``
            (read once, now) for injection to happen.
        name: shown in events, marks and ``repr``.
        rng: the random source (default a fresh ``random.Random``; seed one
            for reproducible tests).
        clock: stamps events; its ``sleep`` / ``async_sleep`` are the
            default delays.
        sleep: blocks for the injected latency (sync).
        async_sleep: awaits the injected latency (async).
        environ: the environment to read ``require_env`` from (default ``os.environ``).

    Raises:
        ConfigError: naming the offending parameter (``fault`` and ``result``
            together, or none of ``fault``, ``latency``, ``result``).
    """

    __slots__ = (
        "_async_sleep",
        "_calls",
        "_clock",
        "_counts",
        "_enabled",
        "_env_ok",
        "_fault",
        "_listeners",
        "_lock",
        "_result",
        "_rng",
        "_sleep",
        "latency",
        "name",
        "rate",
    )

    def __init__(
        self,
        *,
        fault: BaseException | type[BaseException] | Callable[[], BaseException] | None = None,
        latency: float | None = None,
        result: Any = _UNSET,
        rate: float = 0.01,
        enabled: bool | Callable[[], bool] = False,
        require_env: str | None = None,
        name: str = "chaos",
        rng: random.Random | None = None,
        clock: Clock = SYSTEM_CLOCK,
        sleep: Callable[[float], object] | None = None,
        async_sleep: Callable[[float], Awaitable[object]] | None = None,
        environ: Any = None,
    ) -> None:
        self._fault = _fault_factory(fault)
        self.latency = 0.0 if latency is None else check_non_negative("latency", latency)
        if self._fault is not None and result is not _UNSET:
            raise ConfigError("result", result, "inject a fault or a result, not both")
        if self._fault is None and result is _UNSET and not self.latency:
            raise ConfigError("fault", fault, "nothing to inject: give fault, latency or result")
        self._result = result
        self.rate = check_fraction("rate", rate)
        if not (isinstance(enabled, bool) or callable(enabled)):
            raise ConfigError("enabled", enabled, "expected True, False or a callable")
        self._enabled = enabled
        if require_env is None:
            self._env_ok = True
        else:
            env = os.environ if environ is None else environ
            self._env_ok = check_name("require_env", require_env) in env and (
                env[require_env] == "1"
            )
        self.name = check_name("name", name)
        if rng is None:
            rng = random.Random()
        elif not callable(getattr(rng, "random", None)):
            raise ConfigError("rng", rng, "expected a random.Random")
        self._rng = rng
        if not isinstance(clock, Clock):
            raise ConfigError("clock", clock, "expected a Clock (monotonic, time, sleep)")
        self._clock = clock
        self._sleep = clock.sleep if sleep is None else check_callable("sleep", sleep)
        self._async_sleep: Callable[[float], Awaitable[object]] = (
            clock.async_sleep if async_sleep is None else check_callable("async_sleep", async_sleep)  # type: ignore[assignment]
        )
        self._lock = threading.Lock()
        self._calls = Counter()  # lock-free: every call counts, injected or not
        self._counts = dict.fromkeys(("fault", "result", "latency"), 0)
        self._listeners: Listeners[ChaosEvent] = Listeners()

    def add_listener(self, listener: Callable[[ChaosEvent], object]) -> Callable[[], None]:
        """Subscribe to :class:`ChaosEvent` s; returns an unsubscribe function."""
        return self._listeners.add(listener)

    def enable(self) -> None:
        """Turn injection on (``require_env`` still applies)."""
        self._enabled = True

    def disable(self) -> None:
        """Turn injection off."""
        self._enabled = False

    @property
    def enabled(self) -> bool:
        """Whether a call now may be injected."""
        if not self._env_ok:
            return False
        switch = self._enabled
        if switch is True or switch is False:
            return switch
        try:
            return switch() is True
        except Exception:  # a broken flag reads as off: chaos must never start by accident
            return False

    # ------------------------------------------------------------------ core

    def decide(self) -> ChaosDecision:
        """The decision for one call (draws from ``rng`` only when enabled)."""
        self._calls.incr()
        if not self.enabled or not self._rng.random() < self.rate:
            return _PASS
        return ChaosDecision(
            True, self.latency, self._fault is not None, self._result is not _UNSET
        )

    def _inject(self, decision: ChaosDecision) -> BaseException | None:
        """Count and report an injection; returns the exception to raise, if any."""
        error: BaseException | None = None
        if decision.fault:
            assert self._fault is not None
            error = self._fault()
            if not isinstance(error, BaseException):
                error = RuntimeError(f"chaos {self.name!r}: fault factory returned {error!r}")
            setattr(error, MARK, self.name)
            kind = "fault"
        elif decision.result:
            kind = "result"
        else:
            kind = "latency"
        with self._lock:
            self._counts[kind] += 1
            if decision.latency and kind != "latency":
                self._counts["latency"] += 1
        if self._listeners:
            self._listeners.emit(
                ChaosEvent(
                    source=f"chaos:{self.name}",
                    at=self._clock.time(),
                    chaos=self.name,
                    kind=kind,
                    latency=decision.latency,
                    error=error,
                )
            )
        return error

    # -------------------------------------------------------------- adapters

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)``, or inject instead (sync)."""
        decision = self.decide()
        if not decision.inject:
            return fn(*args, **kwargs)
        error = self._inject(decision)
        if decision.latency:
            self._sleep(decision.latency)
        if error is not None:
            raise error
        if decision.result:
            return self._result  # type: ignore[no-any-return]
        return fn(*args, **kwargs)

    async def call_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await ``fn(*args, **kwargs)``, or inject instead; see :meth:`call`."""
        decision = self.decide()
        if not decision.inject:
            return await fn(*args, **kwargs)
        error = self._inject(decision)
        if decision.latency:
            await self._async_sleep(decision.latency)
        if error is not None:
            raise error
        if decision.result:
            return self._result  # type: ignore[no-any-return]
        return await fn(*args, **kwargs)

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, T]]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate ``fn`` (sync or async) with injection."""
        return decorate("Chaos", fn, self.call, self.call_async)

    # ------------------------------------------------------------- reporting

    def stats(self) -> ChaosStats:
        """A frozen snapshot."""
        with self._lock:
            c = dict(self._counts)
        return ChaosStats(
            enabled=self.enabled,
            calls=self._calls.value(),
            faults=c["fault"],
            results=c["result"],
            delays=c["latency"],
        )

    def __repr__(self) -> str:
        return f"Chaos(name={self.name!r}, rate={self.rate!r}, enabled={self.enabled})"
