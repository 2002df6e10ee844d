"""The breaker's decision core, shared by the sync and async adapters.

Theory of operation: :class:`BreakerCore` owns the state, the sliding window,
the half-open permits and the counters, all guarded by one lock that is held
only for a few field updates, never while the user's function, a listener or
a state store runs. An adapter asks :meth:`BreakerCore.acquire` for a
decision before the call (:class:`Admit`, :class:`Trial` or :class:`Reject`),
runs the call itself, then reports the outcome with
:meth:`BreakerCore.complete`. Transitions go through the table in
``_state.py``; their events are emitted after the lock is released.

Every decision carries the *generation* it was made in (the count of
transitions so far). An outcome reported against an older generation is
stale (the breaker moved on while the call ran) and is dropped, so a slow
call admitted while CLOSED can never count as a half-open trial, and a call
that started before :meth:`reset` never lands in the fresh window.

Hot path: while CLOSED (or DISABLED) with nobody timing calls, ``fast`` holds
the generation's :class:`Admit`; the adapters read that one attribute, run
the call, and skip :meth:`complete` when the window is ``clean`` (a success
cannot change it). That path reads no clock and takes no lock. An in-process
OPEN breaker rejects without the lock too: ``_open_reject`` is the period's
one :class:`Reject`, and rejections are counted with an atomic
``itertools.count``.

With a state store (``_store.py``) the shared state is the truth: the core
returns a :class:`StoreCall` instead of deciding when the shared state
matters (a trial permit, a mirror that may be stale, every recorded outcome),
the adapter runs it against the store with no lock held and hands the reply
(or the error) to :meth:`BreakerCore.after_store`, which adopts the shared
state. While the store fails the core decides alone on its local window and
says ``shared_state="unavailable"``; it tries the store again after the
store's ``retry_interval``.

Half-open permits live in a dict of permit id -> start time. A permit is
released by :meth:`complete` whatever the outcome (including cancellation),
and a permit older than ``half_open_timeout`` is reclaimed when a new trial
finds the breaker full, so a lost call cannot wedge the breaker in HALF_OPEN.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sentia_core._clock import Clock
from sentia_core._events import Event, Listeners

from ._config import BreakerConfig
from ._state import BreakerState, Trigger, next_state
from ._store import StateStore, StoreReply, StoreRequest
from ._types import BreakerCallOutcome, BreakerMetrics, BreakerStateChanged, Outcome, SharedState
from ._window import FAILURE, SLOW, CountWindow, TimeWindow

__all__ = [
    "IGNORED",
    "SUCCESS",
    "Admit",
    "BreakerCore",
    "Decision",
    "Reject",
    "StoreCall",
    "Trial",
]

#: Outcome codes handed to :meth:`BreakerCore.complete` (FAILURE/SLOW are bits).
IGNORED = -1
SUCCESS = 0

_CLOSED = BreakerState.CLOSED
_OPEN = BreakerState.OPEN
_HALF_OPEN = BreakerState.HALF_OPEN
_FORCED_OPEN = BreakerState.FORCED_OPEN
_DISABLED = BreakerState.DISABLED

_ACQUIRE = StoreRequest("acquire")
_READ = StoreRequest("read")


@dataclass(frozen=True, slots=True)
class Admit:
    """Run the call; record its outcome in the window when ``record`` (CLOSED).

    ``shared_generation`` is the store's generation when the call was admitted
    (-1 without a store).
    """

    generation: int
    record: bool
    shared_generation: int = -1


@dataclass(frozen=True, slots=True)
class Trial:
    """Run the call as a half-open trial; ``permit`` goes back via complete().

    ``shared`` trials hold a permit of the state store, not of this process.
    """

    generation: int
    permit: int
    started: float
    shared: bool = False
    shared_generation: int = -1


@dataclass(frozen=True, slots=True)
class Reject:
    """Do not run the call.

    ``until`` is the monotonic time from which a trial may be admitted (None
    when unknown: forced open, or half-open at capacity); one Reject is made
    per OPEN period, so rejecting allocates nothing.
    """

    state: BreakerState
    until: float | None = None

    def retry_after(self, now: float) -> float:
        """Seconds from ``now`` until a trial may be admitted (0.0 when unknown)."""
        until = self.until
        return 0.0 if until is None or until <= now else until - now


_REJECT_FORCED = Reject(BreakerState.FORCED_OPEN)
_REJECT_FULL = Reject(BreakerState.HALF_OPEN)


@dataclass(frozen=True, slots=True)
class StoreCall:
    """Run ``request`` on the state store, then hand the reply to :meth:`BreakerCore.after_store`.

    ``decision`` and ``outcome`` say which completed call a ``record`` reports.
    """

    request: StoreRequest
    decision: Admit | Trial | None = None
    outcome: int = 0


Decision = Admit | Trial | Reject


def _count_of(counter: itertools.count[int]) -> int:
    """How many times ``next()`` was called on ``counter`` (its repr is ``count(N)``)."""
    return int(repr(counter)[6:-1])


def _outcome_name(code: int) -> Outcome:
    if code < 0:
        return "ignored"
    if code & FAILURE:
        return "failure"
    return "slow" if code & SLOW else "success"


class BreakerCore:
    """State, window and counters of one breaker; thread-safe; see the module doc."""

    __slots__ = (
        "_admit",
        "_consecutive",
        "_generation",
        "_history",
        "_last_transition_at",
        "_listeners",
        "_listening",
        "_lock",
        "_next_permit",
        "_next_sync",
        "_open_reject",
        "_open_until",
        "_outcome_listeners",
        "_pass",
        "_permits",
        "_predicate",
        "_reject",
        "_rejected",
        "_rejections",
        "_shared_clean",
        "_shared_generation",
        "_shared_totals",
        "_slow_after",
        "_source",
        "_store_retry_at",
        "_synced",
        "_timed",
        "_times_opened",
        "_trial_successes",
        "_trips",
        "_wall",
        "config",
        "fast",
        "monotonic",
        "shared_state",
        "shared_state_error",
        "state",
        "store",
        "store_errors",
        "window",
    )

    def __init__(
        self,
        config: BreakerConfig,
        clock: Clock,
        listeners: Listeners[Event],
        store: StateStore | None = None,
    ) -> None:
        self.config = config
        self._wall: Callable[[], float] = clock.time
        self.monotonic: Callable[[], float] = clock.monotonic
        self._lock = threading.Lock()
        self._listeners = listeners
        self._source = f"breaker:{config.name}"
        self.window: CountWindow | TimeWindow = (
            CountWindow(config.window_size)
            if config.window_type == "count"
            else TimeWindow(config.window_size)
        )
        #: True when a call's duration matters to the core (slow-call detection).
        self._timed = config.slow_call_duration is not None
        self._slow_after = config.slow_call_duration
        self._predicate = config.failure_predicate
        self._listening = False
        #: Listeners that asked for BreakerCallOutcome events: only they put
        #: the breaker on its slow path (state-change listeners cost nothing).
        self._outcome_listeners = 0
        self.state = _CLOSED
        self._generation = 0
        self._admit = Admit(0, True)
        self._pass: Admit | None = None
        self.fast: Admit | None = None
        self._consecutive = 0
        self._open_until = 0.0
        self._reject = Reject(_OPEN, 0.0)
        self._trips = 0
        self._times_opened = 0
        self._rejected = 0
        #: Rejections counted without the lock (``next()`` is atomic).
        self._rejections = itertools.count()
        #: The Reject of the current OPEN period, for the lock-free check (no store).
        self._open_reject: Reject | None = None
        self._permits: dict[int, float] = {}
        self._next_permit = 1
        self._trial_successes = 0
        self._history: deque[BreakerStateChanged] = deque(maxlen=config.history_size)
        self._last_transition_at: float | None = None
        self.store = store
        self.shared_state: SharedState = "local" if store is None else "connected"
        self.shared_state_error: str | None = None
        self.store_errors = 0
        self._store_retry_at = 0.0
        self._next_sync = 0.0
        self._synced = False
        self._shared_generation = -1
        self._shared_totals = (0, 0, 0, 0)
        #: The shared count window is full of successes: recording another
        #: success would change nothing, so it is not sent (see complete()).
        self._shared_clean = False
        self.refresh_fast()

    # -- admission ---------------------------------------------------------

    def refresh_fast(self) -> None:
        """Recompute the lock-free admission shortcuts (after a transition or a
        listener change)."""
        self._listening = self._outcome_listeners > 0
        state = self.state
        if state is _CLOSED:
            self._pass = self._admit if self.store is None or self._synced else None
        elif state is _DISABLED and self.store is None:
            self._pass = self._admit
        else:
            self._pass = None
        slow_path = self._timed or self._listening or self.store is not None
        self.fast = None if slow_path else self._pass

    def listeners_changed(self, outcome_listeners: int = 0) -> None:
        """Recompute the shortcuts after a listener was added or removed
        (``outcome_listeners``: +1 / -1 when it wants per-call outcomes).

        Under the lock: computed outside it, a transition running at the same
        moment could be overwritten with a stale pass-through admit.
        """
        with self._lock:
            self._outcome_listeners += outcome_listeners
            self.refresh_fast()

    def acquire(self, now: float) -> Decision | StoreCall:
        """Decide whether a call may run at monotonic time ``now``.

        Returns a :class:`StoreCall` when the shared state must be consulted first.
        """
        admit = self._pass
        if admit is not None:
            return admit
        reject = self._open_reject
        if reject is not None and now < reject.until:  # type: ignore[operator]
            # Open, in-process: reject without the lock (the hot path of an outage).
            next(self._rejections)
            if self._listening:
                self._emit(None, reject)
            return reject
        with self._lock:
            if self._pass is not None:
                return self._pass
            if self.store is not None and now >= self._store_retry_at:
                state = self.state
                if (
                    state is _HALF_OPEN
                    or (state is _OPEN and now >= self._open_until)
                    or now >= self._next_sync
                ):
                    return StoreCall(_ACQUIRE)
            decision, event = self._decide(now)
        if event is not None or self._listening:
            self._emit(event, decision)
        return decision

    def _emit(self, event: BreakerStateChanged | None, decision: object) -> None:
        if event is not None:
            self._listeners.emit(event)
        if self._listening and decision.__class__ is Reject:
            self._listeners.emit(
                BreakerCallOutcome(self._source, self._wall(), self.config.name, "rejected", 0.0)
            )

    def _decide(self, now: float) -> tuple[Decision, BreakerStateChanged | None]:
        """The local decision (under the lock)."""
        state = self.state
        if state is _CLOSED or state is _DISABLED:
            return self._admit, None
        if state is _OPEN:
            if now < self._open_until:
                self._rejected += 1
                return self._reject, None
            event = self._move(Trigger.TIMEOUT_ELAPSED, "reset_timeout elapsed")
            return self._grant(now), event
        if state is _HALF_OPEN:
            return self._grant(now), None
        self._rejected += 1
        return _REJECT_FORCED, None

    def _grant(self, now: float) -> Decision:
        """A trial permit if one is free (under the lock, state HALF_OPEN)."""
        permits = self._permits
        limit = self.config.half_open_max_calls
        if len(permits) >= limit:
            oldest = now - self.config.half_open_timeout
            for permit in [p for p, started in permits.items() if started <= oldest]:
                del permits[permit]
        if len(permits) < limit:
            permit = self._next_permit
            self._next_permit = permit + 1
            permits[permit] = now
            return Trial(self._generation, permit, now)
        self._rejected += 1
        return _REJECT_FULL

    # -- outcomes ----------------------------------------------------------

    def classify_exception(self, exc: BaseException) -> int:
        """IGNORED, SUCCESS or FAILURE for a call that raised ``exc``.

        ``ignore_exceptions`` wins; then ``record_exceptions`` makes it a
        failure; any other :class:`Exception` means the dependency answered
        (a success); any other :class:`BaseException` (cancellation,
        ``KeyboardInterrupt``) is ignored.
        """
        cfg = self.config
        if isinstance(exc, cfg.ignore_types) or any(p(exc) for p in cfg.ignore_predicates):
            return IGNORED
        if isinstance(exc, cfg.record_types) or any(p(exc) for p in cfg.record_predicates):
            return FAILURE
        return SUCCESS if isinstance(exc, Exception) else IGNORED

    def completed_with_exception(
        self, decision: Admit | Trial, exc: BaseException, duration: float, now: float
    ) -> StoreCall | None:
        """Record a call that raised ``exc``; a raising ``ignore``/``record`` predicate
        releases the permit (as ignored) and propagates."""
        try:
            outcome = self.classify_exception(exc)
        except BaseException:
            self.complete(decision, IGNORED, duration, now)
            raise
        return self.complete(decision, outcome, duration, now)

    def completed_with_result(
        self, decision: Admit | Trial, result: Any, duration: float, now: float
    ) -> StoreCall | None:
        """Record a call that returned ``result``; a raising ``failure_predicate``
        releases the permit (as ignored) and propagates."""
        predicate = self._predicate
        if predicate is None:
            return self.complete(decision, SUCCESS, duration, now)
        try:
            outcome = FAILURE if predicate(result) else SUCCESS
        except BaseException:
            self.complete(decision, IGNORED, duration, now)
            raise
        return self.complete(decision, outcome, duration, now)

    def fast_exception(self, decision: Admit, exc: BaseException) -> None:
        """The hot path's failure report (no store on that path): one clock read."""
        self.completed_with_exception(decision, exc, 0.0, self.monotonic())

    def fast_result(self, decision: Admit, result: Any) -> None:
        """The hot path's report when the window is not clean (no store on that path)."""
        if self._predicate is not None or self._listening:
            self.completed_with_result(decision, result, 0.0, self.monotonic())
        elif decision.record:
            now = self.monotonic()
            lock = self._lock
            lock.acquire()  # explicit acquire/release: measurably cheaper than `with`
            try:
                if decision.generation == self._generation:
                    self.window.record(SUCCESS, now)
                    self._consecutive = 0
            finally:
                lock.release()

    def complete(
        self, decision: Admit | Trial, outcome: int, duration: float, now: float
    ) -> StoreCall | None:
        """Record the outcome of a call admitted by ``decision``.

        Args:
            decision: what :meth:`acquire` returned for the call.
            outcome: IGNORED, SUCCESS or FAILURE (from the classify methods).
            duration: seconds the call took (for slow-call detection and events).
            now: monotonic time at completion.

        Returns:
            A :class:`StoreCall` to run when the outcome must reach the state store.
        """
        slow_after = self._slow_after
        if slow_after is not None and outcome >= 0 and duration >= slow_after:
            outcome |= SLOW
        event: BreakerStateChanged | None = None
        call: StoreCall | None = None
        if decision.__class__ is Admit:
            if outcome == SUCCESS and self.window.clean and self.store is None:
                pass  # a success into a full window of successes changes nothing
            elif outcome >= 0 and decision.record:
                lock = self._lock
                lock.acquire()
                try:
                    if decision.generation == self._generation:
                        self.window.record(outcome, now)
                        if outcome & FAILURE:
                            self._consecutive += 1
                        else:
                            self._consecutive = 0
                        if self.store is not None and now >= self._store_retry_at:
                            if not (
                                outcome == SUCCESS
                                and self._shared_clean
                                and now < self._next_sync
                                and decision.shared_generation == self._shared_generation
                            ):  # (else a no-op for the shared state: skip the round trip)
                                call = StoreCall(
                                    StoreRequest(
                                        "record",
                                        outcome=outcome,
                                        generation=decision.shared_generation,
                                    ),
                                    decision,
                                    outcome,
                                )
                        elif outcome:
                            event = self._evaluate(now)
                finally:
                    lock.release()
        else:
            assert isinstance(decision, Trial)
            with self._lock:
                if not decision.shared:
                    started = self._permits.pop(decision.permit, None)
                    # A permit held for half_open_timeout or longer was reclaimable:
                    # its late outcome is stale (exactly as the store's expiring permits).
                    if (
                        started is not None
                        and outcome >= 0
                        and now - started < self.config.half_open_timeout
                    ):
                        event = self._record_trial(outcome, now)
                elif self.store is not None and now >= self._store_retry_at:
                    call = StoreCall(
                        StoreRequest(
                            "record",
                            outcome=outcome,
                            generation=decision.shared_generation,
                            permit=decision.permit,
                        ),
                        decision,
                        outcome,
                    )
                else:
                    event = self._local_outcome(decision, outcome, now)
        if event is not None:
            self._listeners.emit(event)
        if self._listening:
            self._listeners.emit(
                BreakerCallOutcome(
                    self._source, self._wall(), self.config.name, _outcome_name(outcome), duration
                )
            )
        return call

    def _local_outcome(
        self, decision: Admit | Trial, outcome: int, now: float
    ) -> BreakerStateChanged | None:
        """Apply an outcome the store did not take (under the lock; window already has it)."""
        if outcome < 0 or decision.generation != self._generation:
            return None
        if decision.__class__ is Admit:
            return self._evaluate(now) if outcome and self.state is _CLOSED else None
        if self.state is _HALF_OPEN:
            return self._record_trial(outcome, now)
        return None

    def _evaluate(self, now: float) -> BreakerStateChanged | None:
        """Trip if an opening rule fires (under the lock, state CLOSED)."""
        cfg = self.config
        if cfg.consecutive_failures is not None and self._consecutive >= cfg.consecutive_failures:
            return self._trip(now, Trigger.TRIP, f"{self._consecutive} consecutive failures")
        calls, failures, slow = self.window.totals(now)
        if calls < cfg.minimum_calls:
            return None
        rate = cfg.failure_rate_threshold
        if rate is not None and failures / calls >= rate:
            return self._trip(
                now,
                Trigger.TRIP,
                f"failure rate {failures / calls:.2f} >= {rate:g} over {calls} calls",
            )
        if cfg.slow_call_duration is not None and slow / calls >= cfg.slow_call_rate_threshold:
            return self._trip(
                now,
                Trigger.TRIP,
                f"slow-call rate {slow / calls:.2f} >= {cfg.slow_call_rate_threshold:g}"
                f" over {calls} calls",
            )
        return None

    def _record_trial(self, outcome: int, now: float) -> BreakerStateChanged | None:
        if outcome:
            what = "failed" if outcome & FAILURE else "was slow"
            return self._trip(now, Trigger.TRIAL_FAILED, f"trial call {what}")
        self._trial_successes += 1
        if self._trial_successes >= self.config.success_threshold:
            return self._move(
                Trigger.TRIAL_SUCCEEDED, f"{self._trial_successes} trial calls succeeded"
            )
        return None

    def _trip(self, now: float, trigger: Trigger, reason: str) -> BreakerStateChanged | None:
        self._trips += 1
        self._times_opened += 1
        timeout = self.config.reset_timeout_for(self._trips)
        self._open_until = now + timeout
        self._reject = Reject(_OPEN, self._open_until)
        return self._move(trigger, f"{reason}; open for {timeout:g}s")

    # -- transitions -------------------------------------------------------

    def _enter(self, new: BreakerState) -> None:
        """Bookkeeping of entering ``new`` (under the lock)."""
        self.state = new
        self._generation += 1
        self._permits = {}
        self._trial_successes = 0
        if new is _CLOSED:
            self.window.clear()
            self._consecutive = 0
            self._trips = 0
        self._admit = Admit(self._generation, new is _CLOSED, self._shared_generation)
        self._open_reject = self._reject if new is _OPEN and self.store is None else None
        self.refresh_fast()

    def _changed(
        self, old: BreakerState, new: BreakerState, reason: str
    ) -> BreakerStateChanged | None:
        if old is new:
            return None
        at = self._wall()
        event = BreakerStateChanged(self._source, at, self.config.name, old, new, reason)
        self._history.append(event)
        self._last_transition_at = at
        return event

    def _move(self, trigger: Trigger, reason: str) -> BreakerStateChanged | None:
        """Apply ``trigger`` (under the lock); the event to emit, if the state changed."""
        old = self.state
        new = next_state(old, trigger)
        self._enter(new)
        return self._changed(old, new, reason)

    def manual(self, trigger: Trigger, reason: str) -> StoreCall | None:
        """Apply a manual trigger (force_open, disable, reset) here, and return
        the store call that applies it to every process sharing the state."""
        with self._lock:
            if trigger is Trigger.RESET:
                self._trips = 0
            event = self._move(trigger, reason)
        if event is not None:
            self._listeners.emit(event)
        if self.store is None:
            return None
        return StoreCall(StoreRequest("manual", trigger=trigger.value))

    def poll(self, now: float) -> BreakerState:
        """The state at ``now``, moving OPEN -> HALF_OPEN first if the timeout has passed."""
        state = self.state
        if state is _OPEN and now >= self._open_until:
            with self._lock:
                event = None
                if self.state is _OPEN and now >= self._open_until:
                    event = self._move(Trigger.TIMEOUT_ELAPSED, "reset_timeout elapsed")
                state = self.state
            if event is not None:
                self._listeners.emit(event)
        return state

    # -- the state store ---------------------------------------------------

    def refresh_due(self, now: float) -> StoreCall | None:
        """The ``read`` that refreshes a mirror not synced for ``sync_interval``
        (so an observer sees a transition made by another process without a
        local call), or None when the mirror is fresh or the store is resting."""
        store = self.store
        if store is None or now < self._store_retry_at or (self._synced and now < self._next_sync):
            return None
        return StoreCall(_READ)

    def after_store(
        self, call: StoreCall, reply: StoreReply | BaseException, now: float
    ) -> Decision:
        """Take the store's reply (or its error) for ``call``.

        Returns:
            For an ``acquire``: the decision. For other operations the return
            value is meaningless (the current pass-through admit).
        """
        assert self.store is not None
        op = call.request.op
        event: BreakerStateChanged | None = None
        decision: Decision = self._admit
        with self._lock:
            if isinstance(reply, StoreReply):
                self.shared_state = "connected"
                self.shared_state_error = None
                self._synced = True
                self._next_sync = now + self.store.sync_interval
                event = self._adopt(reply, now)
                if op == "acquire":
                    decision = self._from_reply(reply, now)
            else:
                self.shared_state = "unavailable"
                self.shared_state_error = f"{type(reply).__name__}: {reply}"[:300]
                self.store_errors += 1
                self._store_retry_at = now + self.store.retry_interval
                self.refresh_fast()
                if op == "acquire":
                    decision, event = self._decide(now)
                elif op == "record" and call.decision is not None:
                    event = self._local_outcome(call.decision, call.outcome, now)
        self._emit(event, decision)
        return decision

    def _adopt(self, reply: StoreReply, now: float) -> BreakerStateChanged | None:
        """Mirror the shared state (under the lock)."""
        self._shared_totals = (
            reply.calls,
            reply.failures,
            reply.slow_calls,
            reply.consecutive_failures,
        )
        self._shared_clean = (
            reply.state is _CLOSED
            and self.config.window_type == "count"
            and reply.calls >= self.config.window_size
            and not reply.failures
            and not reply.slow_calls
            and not reply.consecutive_failures
        )
        new = reply.state
        if new is _OPEN:
            self._open_until = now + reply.retry_after
            self._reject = Reject(_OPEN, self._open_until)
        old = self.state
        if reply.generation == self._shared_generation and new is old:
            self.refresh_fast()
            return None
        self._shared_generation = reply.generation
        if new is _OPEN and old is not _OPEN:
            self._times_opened += 1
        self._enter(new)
        return self._changed(old, new, f"shared state: {reply.reason}")

    def _from_reply(self, reply: StoreReply, now: float) -> Decision:
        state = reply.state
        if state is _CLOSED or state is _DISABLED:
            return self._admit
        if state is _HALF_OPEN and reply.permit > 0:
            return Trial(self._generation, reply.permit, now, True, reply.generation)
        self._rejected += 1
        if state is _OPEN:
            return Reject(_OPEN, now + reply.retry_after)
        return _REJECT_FORCED if state is _FORCED_OPEN else _REJECT_FULL

    # -- observation -------------------------------------------------------

    def metrics(self, now: float) -> BreakerMetrics:
        """A consistent snapshot at ``now`` (shared counts while the store answers)."""
        self.poll(now)
        cfg = self.config
        with self._lock:
            if self.shared_state == "connected" and self._synced:
                calls, failures, slow, consecutive = self._shared_totals
            else:
                calls, failures, slow = self.window.totals(now)
                consecutive = self._consecutive
            state = self.state
            return BreakerMetrics(
                name=cfg.name,
                state=state,
                calls=calls,
                failures=failures,
                slow_calls=slow,
                failure_rate=failures / calls if calls else 0.0,
                slow_call_rate=slow / calls if calls else 0.0,
                consecutive_failures=consecutive,
                rejected=self._rejected + _count_of(self._rejections),
                times_opened=self._times_opened,
                last_transition_at=self._last_transition_at,
                retry_after=max(0.0, self._open_until - now) if state is _OPEN else 0.0,
                current_reset_timeout=cfg.reset_timeout_for(self._trips + 1),
                half_open_in_flight=len(self._permits),
                shared_state=self.shared_state,
                shared_state_error=self.shared_state_error,
                store_errors=self.store_errors,
                history=tuple(self._history),
            )
