"""AdaptiveBulkhead: a bulkhead whose limit follows the dependency's latency and drops.

Theory of operation, after Netflix's concurrency-limits. Each call that got a
slot ends with a *sample*: its round-trip time (slot taken to slot given back,
queueing excluded), the number of calls in flight when it started, and
whether it was a *drop* (an error in ``drop_on``: by default timeouts and
rejections such as an inner breaker or rate limit saying no). Other errors
are ignored: they say nothing about capacity. The sample goes to a *limit
algorithm*, a small object with one pure method ``update(limit, rtt,
inflight, dropped) -> new limit``:

* ``"aimd"``: +1 per sample while the limit is in use, times ``backoff``
  (0.9) on a drop: additive increase, multiplicative decrease, like TCP Reno.
* ``"vegas"``: estimates the queue at the dependency as ``limit * (1 -
  rtt_noload / rtt)`` from the lowest RTT seen; grows quickly while that queue
  is short (below log10(limit)), slowly below 3 log10(limit), shrinks above
  6 log10(limit) or on a drop. The no-load RTT is re-probed periodically.
* ``"gradient2"``: compares a long exponential average of RTT with the
  latest RTT; ``limit * clamp(tolerance * long / short, 0.5, 1) + sqrt(limit)``
  smoothed, so the limit shrinks when latency rises above its long-run level
  and grows by a small queue allowance when it does not. A drop applies the
  minimum gradient (0.5) at once (concurrency-limits ignores drops here; we
  don't, so that timeouts shrink the limit even before latency does).

Every algorithm leaves the limit unchanged while fewer than half the slots are
in use (an idle client learns nothing about capacity), and the result is
clamped to ``[min_limit, max_limit]``; the bulkhead admits ``floor(limit)``
calls. The limit lives under one lock together with the in-flight count and
the FIFO queue of waiters (the waiter objects are the fixed Bulkhead's, so
threads and asyncio tasks share one adaptive bulkhead too).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, Protocol, TypeVar, overload, runtime_checkable

from sentia_core._clock import SYSTEM_CLOCK, Clock
from sentia_core._events import Event, Listeners
from sentia_core._validate import check_choice, check_int, check_name, check_non_negative
from sentia_core.errors import BulkheadFullError, CallRejectedError, ConfigError

from ._bulkhead import _TaskWaiter, _ThreadWaiter, wait_limit, wait_task, wait_thread
from ._wrap import decorate

__all__ = [
    "AIMDLimit",
    "AdaptiveBulkhead",
    "AdaptiveBulkheadStats",
    "AdaptiveEvent",
    "Gradient2Limit",
    "LimitAlgorithm",
    "VegasLimit",
]

P = ParamSpec("P")
T = TypeVar("T")

AlgorithmName = Literal["gradient2", "vegas", "aimd"]


# -------------------------------------------------------------- algorithms


@runtime_checkable
class LimitAlgorithm(Protocol):
    """Computes the next concurrency limit from one sample (plug in your own)."""

    def update(self, limit: float, rtt: float, inflight: int, dropped: bool) -> float:
        """The new limit (the bulkhead clamps it to its bounds).

        Args:
            limit: the current limit.
            rtt: the sample's round-trip time in seconds.
            inflight: calls in flight when the sample's call started (itself included).
            dropped: True if the call failed in a way that signals overload.
        """
        ...


def _app_limited(limit: float, inflight: int) -> bool:
    return inflight * 2 < limit


class AIMDLimit:
    """Additive increase (+1 per sample in use), multiplicative decrease (``backoff``) on drops.

    Args:
        backoff: the factor applied on a drop (0.5..1, exclusive of 1; default 0.9).
        rtt_timeout: a sample slower than this many seconds counts as a drop
            (default None: only errors are drops).
    """

    __slots__ = ("backoff", "rtt_timeout")

    def __init__(self, backoff: float = 0.9, rtt_timeout: float | None = None) -> None:
        if not isinstance(backoff, (int, float)) or not 0.5 <= backoff < 1.0:
            raise ConfigError("backoff", backoff, "expected a factor in [0.5, 1)")
        self.backoff = float(backoff)
        self.rtt_timeout = rtt_timeout

    def update(self, limit: float, rtt: float, inflight: int, dropped: bool) -> float:
        if dropped or (self.rtt_timeout is not None and rtt > self.rtt_timeout):
            return limit * self.backoff
        if _app_limited(limit, inflight):
            return limit
        return limit + 1.0

    def __repr__(self) -> str:
        return f"AIMDLimit(backoff={self.backoff!r})"


class VegasLimit:
    """TCP Vegas: grow while the estimated queue at the dependency is short.

    Args:
        smoothing: weight of the new estimate (0 < s <= 1; default 1.0).
        probe_every: re-learn the no-load RTT after this many samples times
            the limit (>= 1; default 30), so a dependency that got slower
            for good is not forever compared with its old best.
    """

    __slots__ = ("_samples", "probe_every", "rtt_noload", "smoothing")

    def __init__(self, smoothing: float = 1.0, probe_every: int = 30) -> None:
        if not isinstance(smoothing, (int, float)) or not 0.0 < smoothing <= 1.0:
            raise ConfigError("smoothing", smoothing, "expected a weight in (0, 1]")
        self.smoothing = float(smoothing)
        self.probe_every = check_int("probe_every", probe_every, minimum=1)
        self.rtt_noload = 0.0
        self._samples = 0

    def update(self, limit: float, rtt: float, inflight: int, dropped: bool) -> float:
        self._samples += 1
        if self._samples >= self.probe_every * max(limit, 1.0):
            self._samples = 0
            self.rtt_noload = 0.0  # probe: the next sample becomes the baseline
        if rtt > 0.0 and (self.rtt_noload == 0.0 or rtt < self.rtt_noload):
            self.rtt_noload = rtt
            return limit
        log = max(1.0, math.log10(max(limit, 1.0)))
        if dropped:
            new = limit - log
        elif _app_limited(limit, inflight):
            return limit
        else:
            queue = math.ceil(limit * (1.0 - self.rtt_noload / rtt)) if rtt > 0.0 else 0
            if queue <= log:
                new = limit + 3.0 * log  # beta-like fast growth while no queue forms
            elif queue < 3.0 * log:
                new = limit + log
            elif queue > 6.0 * log:
                new = limit - log
            else:
                return limit
        return (1.0 - self.smoothing) * limit + self.smoothing * new

    def __repr__(self) -> str:
        return f"VegasLimit(smoothing={self.smoothing!r})"


class Gradient2Limit:
    """Netflix's Gradient2: shrink when latency rises above its long-run average.

    Args:
        tolerance: how much above the long-run RTT the latest may be before
            the limit shrinks (>= 1; default 1.5).
        smoothing: weight of the new estimate (0 < s <= 1; default 0.2).
        long_window: samples in the long exponential average (>= 1; default 600).
    """

    __slots__ = ("_long", "_n", "long_window", "smoothing", "tolerance")

    def __init__(
        self, tolerance: float = 1.5, smoothing: float = 0.2, long_window: int = 600
    ) -> None:
        if not isinstance(tolerance, (int, float)) or not tolerance >= 1.0:
            raise ConfigError("tolerance", tolerance, "expected a factor >= 1")
        if not isinstance(smoothing, (int, float)) or not 0.0 < smoothing <= 1.0:
            raise ConfigError("smoothing", smoothing, "expected a weight in (0, 1]")
        self.tolerance = float(tolerance)
        self.smoothing = float(smoothing)
        self.long_window = check_int("long_window", long_window, minimum=1)
        self._long = 0.0
        self._n = 0

    def update(self, limit: float, rtt: float, inflight: int, dropped: bool) -> float:
        if self._n < self.long_window:  # warm-up: a plain average of the first samples
            self._n += 1
            self._long += (rtt - self._long) / self._n
        else:
            self._long += (rtt - self._long) * (2.0 / (self.long_window + 1))
        if rtt > 0.0 and self._long / rtt > 2.0:
            self._long *= 0.95  # recover faster after a period of high latency
        if _app_limited(limit, inflight) and not dropped:
            return limit
        if dropped or rtt <= 0.0:
            gradient = 0.5
        else:
            gradient = max(0.5, min(1.0, self.tolerance * self._long / rtt))
        new = limit * gradient + math.sqrt(limit)
        return (1.0 - self.smoothing) * limit + self.smoothing * new

    def __repr__(self) -> str:
        return f"Gradient2Limit(tolerance={self.tolerance!r}, smoothing={self.smoothing!r})"


def _make_algorithm(algorithm: object) -> tuple[str, LimitAlgorithm]:
    if isinstance(algorithm, str):
        name = check_choice("algorithm", algorithm, ("gradient2", "vegas", "aimd"))
        made: LimitAlgorithm = {
            "gradient2": Gradient2Limit,
            "vegas": VegasLimit,
            "aimd": AIMDLimit,
        }[name]()
        return name, made
    if isinstance(algorithm, LimitAlgorithm):
        return type(algorithm).__name__, algorithm
    raise ConfigError(
        "algorithm", algorithm, 'expected "gradient2", "vegas", "aimd" or a LimitAlgorithm'
    )


# ------------------------------------------------------------ values & events


@dataclass(frozen=True, slots=True)
class AdaptiveBulkheadStats:
    """A snapshot of an :class:`AdaptiveBulkhead`.

    Attributes:
        algorithm: the limit algorithm's name.
        limit: calls admitted at once now (``floor`` of the estimate).
        estimate: the algorithm's current (fractional) limit.
        min_limit: the lower bound of the limit.
        max_limit: the upper bound of the limit.
        max_waiting: the configured queue length.
        active: calls holding a slot now.
        waiting: callers queued now.
        accepted: calls that got a slot.
        rejected: callers turned away (full, no room to wait).
        timed_out: callers that waited and gave up.
        samples: calls whose outcome moved (or held) the limit.
        drops: of which, drops (errors in ``drop_on``).
    """

    algorithm: str
    limit: int
    estimate: float
    min_limit: int
    max_limit: int
    max_waiting: int
    active: int
    waiting: int
    accepted: int
    rejected: int
    timed_out: int
    samples: int
    drops: int


@dataclass(frozen=True, slots=True)
class AdaptiveEvent(Event):
    """The limit changed, or a caller was turned away.

    Attributes:
        bulkhead: the bulkhead's name.
        kind: ``"limit"`` (the integer limit changed), ``"rejected"`` or ``"timed_out"``.
        limit: the integer limit after the event.
        active: calls in flight at that moment.
        waiting: callers queued at that moment.
    """

    bulkhead: str
    kind: str
    limit: int
    active: int
    waiting: int


# ---------------------------------------------------------------- the core


class _LimitCore:
    """Admission and limit state; every method runs under the owner's lock. No I/O.

    Samples are aggregated into windows (as concurrency-limits' WindowedLimit
    does) of at least ``window`` samples and ``window_time`` seconds: the
    algorithm sees the window's mean RTT, its largest in-flight count and
    whether any sample dropped, so one noisy call cannot move the limit and
    a burst of timeouts is one decrease, not one per call.
    """

    __slots__ = (
        "_drop",
        "_inflight_max",
        "_n",
        "_rtt_sum",
        "_started",
        "algorithm",
        "estimate",
        "inflight",
        "max_limit",
        "min_limit",
        "window",
        "window_time",
    )

    def __init__(
        self,
        algorithm: LimitAlgorithm,
        initial: int,
        min_limit: int,
        max_limit: int,
        *,
        window: int = 1,
        window_time: float = 0.0,
    ) -> None:
        self.algorithm = algorithm
        self.min_limit = min_limit
        self.max_limit = max_limit
        self.estimate = float(initial)
        self.inflight = 0
        self.window = window
        self.window_time = window_time
        self._n = 0
        self._rtt_sum = 0.0
        self._inflight_max = 0
        self._drop = False
        self._started: float | None = None

    @property
    def limit(self) -> int:
        return int(self.estimate)

    def try_admit(self) -> bool:
        if self.inflight < int(self.estimate):
            self.inflight += 1
            return True
        return False

    def sample(self, rtt: float, inflight: int, dropped: bool | None, now: float = 0.0) -> bool:
        """A call ended (``dropped`` None: ignored outcome); True if the integer limit moved."""
        self.inflight -= 1
        if dropped is None:
            return False
        if self.window > 1 or self.window_time > 0.0:
            if self._started is None:
                self._started = now
            self._n += 1
            self._rtt_sum += rtt if 0.0 <= rtt < math.inf else 0.0
            self._inflight_max = max(self._inflight_max, inflight)
            self._drop = self._drop or dropped
            if self._n < self.window or now - self._started < self.window_time:
                return False
            rtt, inflight, dropped = self._rtt_sum / self._n, self._inflight_max, self._drop
            self._n, self._rtt_sum, self._inflight_max, self._drop = 0, 0.0, 0, False
            self._started = None
        before = int(self.estimate)
        try:
            new = float(self.algorithm.update(self.estimate, rtt, inflight, dropped))
        except Exception:  # a broken custom algorithm keeps the limit where it is
            return False
        if not new >= self.min_limit:  # also catches NaN
            new = float(self.min_limit)
        elif new > self.max_limit:
            new = float(self.max_limit)
        self.estimate = new
        return int(new) != before


# ------------------------------------------------------------- the strategy


class AdaptiveBulkhead:
    """A bulkhead whose limit follows observed latency and drops (see the module docs).

    Use it in a :class:`Policy` (``Policy(adaptive=AdaptiveBulkhead(...))``),
    as a decorator on ``def`` or ``async def``, or through :meth:`call` /
    :meth:`call_async`. Threads and asyncio tasks may share one.

    Args:
        algorithm: ``"gradient2"`` (default), ``"vegas"``, ``"aimd"``, or a
            :class:`LimitAlgorithm` instance (e.g. ``AIMDLimit(backoff=0.8)``).
        initial: the starting limit (default 20; clamped into the bounds).
        min: the lowest the limit goes (>= 1; default 1).
        max: the highest the limit goes (>= min; default 200).
        max_waiting: callers allowed to queue when the limit is reached
            (>= 0; default 0: reject at once).
        max_wait: seconds a queued caller waits at most (default None: only
            its deadline bounds it).
        window: samples aggregated into one update of the limit (>= 1;
            default 10): the algorithm sees their mean RTT, their largest
            in-flight count and whether any dropped.
        window_time: and at least this many seconds per window (default 0).
        drop_on: errors that mean overload and shrink the limit (default:
            ``TimeoutError`` and :class:`~sentia_core.errors.CallRejectedError`).
        name: shown in errors, events and ``repr``.
        clock: measures round-trip times and stamps events.

    Raises:
        ConfigError: naming the offending parameter.
    """

    __slots__ = (
        "_accepted",
        "_clock",
        "_core",
        "_drops",
        "_listeners",
        "_lock",
        "_max_wait",
        "_monotonic",
        "_rejected",
        "_samples",
        "_timed_out",
        "_waiters",
        "algorithm",
        "drop_on",
        "max_waiting",
        "name",
    )

    def __init__(
        self,
        algorithm: AlgorithmName | LimitAlgorithm = "gradient2",
        *,
        initial: int = 20,
        min: int = 1,  # the issue's and concurrency-limits' name
        max: int = 200,
        max_waiting: int = 0,
        max_wait: float | None = None,
        window: int = 10,
        window_time: float = 0.0,
        drop_on: type[BaseException] | tuple[type[BaseException], ...] = (
            TimeoutError,
            CallRejectedError,
        ),
        name: str = "adaptive",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.algorithm, made = _make_algorithm(algorithm)
        low = check_int("min", min, minimum=1)
        high = check_int("max", max, minimum=low)
        start = check_int("initial", initial, minimum=1)
        start = low if start < low else high if start > high else start
        self._core = _LimitCore(
            made,
            start,
            low,
            high,
            window=check_int("window", window, minimum=1),
            window_time=check_non_negative("window_time", window_time),
        )
        self.max_waiting = check_int("max_waiting", max_waiting, minimum=0)
        wait = (
            None if max_wait is None else check_non_negative("max_wait", max_wait, allow_inf=True)
        )
        self._max_wait = None if wait == math.inf else wait
        if isinstance(drop_on, type) and issubclass(drop_on, BaseException):
            drop_on = (drop_on,)
        if not (
            isinstance(drop_on, tuple)
            and all(isinstance(t, type) and issubclass(t, BaseException) for t in drop_on)
        ):
            raise ConfigError("drop_on", drop_on, "expected an exception class or a tuple of them")
        self.drop_on = drop_on
        self.name = check_name("name", name)
        if not isinstance(clock, Clock):
            raise ConfigError("clock", clock, "expected a Clock (monotonic, time, sleep)")
        self._clock = clock
        self._monotonic = clock.monotonic
        self._lock = threading.Lock()
        self._waiters: deque[_ThreadWaiter | _TaskWaiter] = deque()
        self._accepted = 0
        self._rejected = 0
        self._timed_out = 0
        self._samples = 0
        self._drops = 0
        self._listeners: Listeners[AdaptiveEvent] = Listeners()

    @property
    def limit(self) -> int:
        """Calls admitted at once now."""
        return self._core.limit

    def add_listener(self, listener: Callable[[AdaptiveEvent], object]) -> Callable[[], None]:
        """Subscribe to :class:`AdaptiveEvent` s; returns an unsubscribe function."""
        return self._listeners.add(listener)

    # ------------------------------------------------------------ admission

    def _emit(self, kind: str) -> None:
        """Report an event; caller holds ``_lock``."""
        core = self._core
        self._listeners.emit(
            AdaptiveEvent(
                source=f"adaptive:{self.name}",
                at=self._clock.time(),
                bulkhead=self.name,
                kind=kind,
                limit=core.limit,
                active=core.inflight,
                waiting=len(self._waiters),
            )
        )

    def _drain(self) -> None:
        """Admit waiters, oldest first, while the limit allows. Caller holds ``_lock``."""
        waiters, core = self._waiters, self._core
        while waiters and core.try_admit():
            waiter = waiters.popleft()
            waiter.granted = True
            if not waiter.wake():
                waiter.granted = False
                core.inflight -= 1

    def _turn_away(self, kind: str) -> BulkheadFullError:
        """Count a refusal; caller holds ``_lock``. Returns the error to raise."""
        if kind == "rejected":
            self._rejected += 1
            message = f"adaptive bulkhead {self.name!r} is full (limit {self._core.limit}"
            message += f", {len(self._waiters)} waiting)"
        else:
            self._timed_out += 1
            message = f"adaptive bulkhead {self.name!r}: no slot freed in time"
        if self._listeners:
            self._emit(kind)
        return BulkheadFullError(self.name, message)

    def _enter(self, waiter: _ThreadWaiter | _TaskWaiter | None, limit: float | None) -> bool:
        """Admit at once (True), queue ``waiter`` (False), or raise. ``waiter`` None: no queue."""
        with self._lock:
            if not self._waiters and self._core.try_admit():
                self._accepted += 1
                return True
            if waiter is None or len(self._waiters) >= self.max_waiting or limit == 0.0:
                raise self._turn_away("rejected")
            self._waiters.append(waiter)
            self._drain()
            if waiter.granted:
                self._accepted += 1
            return waiter.granted

    def _give_up(self, waiter: _ThreadWaiter | _TaskWaiter, *, cancelled: bool) -> bool:
        """A waiter stops waiting; True if it holds a slot after all (timeout case)."""
        with self._lock:
            if waiter.granted:
                if not cancelled:
                    self._accepted += 1
                    return True
                self._core.inflight -= 1
                self._drain()
                return False
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            if not cancelled:
                raise self._turn_away("timed_out")
            return False

    def _granted(self) -> None:
        with self._lock:
            self._accepted += 1

    def _exit(self, started: float, inflight: int, error: BaseException | None) -> None:
        """A call that held a slot ended: feed the sample, admit waiters."""
        rtt = self._monotonic() - started
        dropped: bool | None
        if error is None:
            dropped = False
        elif isinstance(error, self.drop_on):
            dropped = True
        else:
            dropped = None
        with self._lock:
            moved = self._core.sample(rtt, inflight, dropped, started + rtt)
            if dropped is not None:
                self._samples += 1
                if dropped:
                    self._drops += 1
            if self._waiters:
                self._drain()
            if moved and self._listeners:
                self._emit("limit")

    # --------------------------------------------------------------- threads

    def _acquire(self) -> int:
        """Take a slot (waiting if allowed); returns the in-flight count at entry."""
        limit = wait_limit(self._max_wait) if self.max_waiting else 0.0
        waiter = _ThreadWaiter() if self.max_waiting else None
        if not self._enter(waiter, limit):
            assert waiter is not None
            if wait_thread(waiter, limit, self._give_up):
                self._granted()
        return self._core.inflight

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` in a slot; its outcome moves the limit.

        Raises:
            BulkheadFullError: no slot, and no room or time left to wait.
        """
        inflight = self._acquire()
        started = self._monotonic()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._exit(started, inflight, exc)
            raise
        self._exit(started, inflight, None)
        return result

    # --------------------------------------------------------------- asyncio

    async def _acquire_async(self) -> int:
        limit = wait_limit(self._max_wait) if self.max_waiting else 0.0
        waiter = _TaskWaiter(asyncio.get_running_loop()) if self.max_waiting else None
        if not self._enter(waiter, limit):
            assert waiter is not None
            if await wait_task(waiter, limit, self._give_up):
                self._granted()
        return self._core.inflight

    async def call_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await ``fn(*args, **kwargs)`` in a slot; see :meth:`call`."""
        inflight = await self._acquire_async()
        started = self._monotonic()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self._exit(started, inflight, exc)
            raise
        self._exit(started, inflight, None)
        return result

    # -------------------------------------------------------------- decorator

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, T]]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate ``fn`` (sync or async) so that every call runs in a slot."""
        return decorate("AdaptiveBulkhead", fn, self.call, self.call_async)

    # ------------------------------------------------------------- reporting

    def stats(self) -> AdaptiveBulkheadStats:
        """A frozen snapshot."""
        with self._lock:
            core = self._core
            return AdaptiveBulkheadStats(
                algorithm=self.algorithm,
                limit=core.limit,
                estimate=core.estimate,
                min_limit=core.min_limit,
                max_limit=core.max_limit,
                max_waiting=self.max_waiting,
                active=core.inflight,
                waiting=len(self._waiters),
                accepted=self._accepted,
                rejected=self._rejected,
                timed_out=self._timed_out,
                samples=self._samples,
                drops=self._drops,
            )

    def __repr__(self) -> str:
        core = self._core
        return (
            f"AdaptiveBulkhead(name={self.name!r}, algorithm={self.algorithm!r}, "
            f"limit={core.limit}, min={core.min_limit}, max={core.max_limit})"
        )
