"""The cache's core: every decision, no I/O. ``TieredCache`` and
``AsyncTieredCache`` are thin shells around one :class:`CacheCore`.

Theory of operation
-------------------

*Layers.* A read asks the layers in order: the L1 (:class:`MemoryLayer`,
in-process, decided here), then the backend (a byte-oriented second layer,
:mod:`._backend`; the Redis L2 in :mod:`._l2`), then the loader. The core owns
the L1, the codec, the single-flight table, the counters and the listeners.
The procedures around those decisions (ask the L1, then the backend, then the
loader; write through; invalidate twice) are written once, in :mod:`._ops`, as
generators yielding effects; the two shells only run the effects -- a thread
on an ``Event`` and plain calls, or a task on a ``Future`` and ``await``.

*Hit path.* :meth:`CacheCore.make_reader` builds a closure that does one
``dict.get``, one clock read, the eviction policy's ``on_hit`` (LRU:
``OrderedDict.move_to_end``) and one ``next()`` on an ``itertools.count`` --
each a single C call, atomic under the GIL -- and takes no lock at all. Every
mutation (writes, misses that drop dead entries, invalidations, flights) takes
``lock`` for a few dict operations; encoding and decoding happen outside it,
listeners run after it is released. On a free-threaded build the single C
calls stay safe (dict and OrderedDict lock internally) but the hit counter may
lose increments.

*Writes.* :meth:`prepare` validates the key, TTL and tags and runs the codec
(outside the lock) -- so an unencodable value raises ``SerializationError``
at ``set`` time whether or not a backend exists; it frames a payload (zstd,
signature) only when something will hold bytes: an L1 in ``"payload"`` mode,
or a backend. :meth:`store` then puts the entry in the L1 under the lock.

*TTL arithmetic.* An entry lives until ``now + ttl`` (``ttl`` per call, or the
cache default; ``math.inf`` never expires) and is kept, stale, for
``stale_ttl`` more. A value filled into the L1 from the backend gets
``min(remaining backend TTL, L1 ttl)``.

*Invalidation and stale writes.* ``delete``, ``set``, ``invalidate_tags``,
``invalidate_pattern`` and ``clear`` remove L1 entries, *poison* matching
flights (their loaded value is returned but not stored; see :mod:`._flight`)
and bump ``epoch``. An adapter that reads the backend notes ``epoch`` first
and :meth:`adopt` declines to fill the L1 if it moved meanwhile, so a value
read before an invalidation is never installed after it.

*Stale-while-revalidate / fail-safe.* :meth:`begin` is the single-flight
decision for a missing key: ``Hit`` (someone filled it), ``Join`` (wait for
the running flight), ``Lead`` (run the loader), ``ServeStale`` (an expired
value within ``stale_ttl`` is served at once while one background flight
refreshes it -- only with ``stale_while_revalidate=True``) or ``Bypass``
(would deadlock: load without single-flight). When a leader's loader raises
and the flight holds a stale value, :meth:`fail` serves it to the leader and
every waiter (fail-safe) instead of the error, and counts it.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple

from sentia_core._clock import Clock
from sentia_core._events import Event, Listeners
from sentia_core._validate import check_int, check_non_negative, parse_duration
from sentia_core.errors import ConfigError

from ._backend import BackendWrite, CacheBackend, StoredBatch, StoredValue
from ._codec import Codec
from ._errors import InvalidKeyError, PayloadError, UntrustedPayloadError
from ._flight import Flight
from ._glob import InvalidPatternError, compile_glob
from ._keys import check_key, check_tags, key_bytes
from ._memory import Entry, MemoryLayer
from ._policy import EvictionPolicy, LRUPolicy
from ._tinylfu import TinyLFUPolicy
from ._types import (
    CacheEviction,
    CacheFault,
    CacheInvalidation,
    CacheStats,
    EvictionCounts,
    FaultKind,
    InvalidationKind,
    RedisStats,
)

__all__ = [
    "MISS",
    "Bypass",
    "CacheCore",
    "Decision",
    "Hit",
    "Join",
    "Lead",
    "Prepared",
    "ServeStale",
]

_INF = math.inf

#: Seconds a loaded value written to the backend is remembered, so that an
#: invalidation announced by another process a little later can delete it again.
FILL_GRACE = 2.0
#: ...and at most this many of them (the oldest are forgotten first).
MAX_RECENT_FILLS = 100_000

#: At most this many stale-while-revalidate refreshes run at once per cache;
#: beyond it a stale value is served without starting another refresh.
MAX_REFRESHES = 8
_NAMESPACE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<MISS>"

    def __bool__(self) -> bool:
        return False


#: Returned where "no value" must be told apart from a cached ``None``.
MISS: Final[Any] = _Missing()


# -- single-flight decisions ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hit:
    """The key is (now) present: return ``value``."""

    value: Any


@dataclass(frozen=True, slots=True)
class Join:
    """Another caller is loading: wait for ``flight`` (on ``future`` if async)."""

    flight: Flight
    future: asyncio.Future[None] | None


@dataclass(frozen=True, slots=True)
class Lead:
    """You load: run the loader, then :meth:`CacheCore.complete` / ``fail`` / ``abandon``."""

    flight: Flight


@dataclass(frozen=True, slots=True)
class ServeStale:
    """Return the expired ``value`` now; if ``refresh`` is set, start it in the background."""

    value: Any
    refresh: Flight | None


@dataclass(frozen=True, slots=True)
class Bypass:
    """Joining would deadlock (same thread/task leads): run the loader, store nothing."""


_BYPASS: Final = Bypass()

Decision = Hit | Join | Lead | ServeStale | Bypass


class Prepared(NamedTuple):
    """A validated, encoded write, ready to be stored (see :meth:`CacheCore.prepare`).

    A NamedTuple rather than a frozen dataclass: it is built on every write,
    and a frozen dataclass's ``__init__`` costs several times more.

    Attributes:
        key: the key.
        value: what the L1 holds: the object, or its payload in ``"payload"`` mode.
        size: accounted L1 bytes (key plus value).
        ttl: seconds to live in the L1 (``inf``: no expiry).
        backend_ttl: seconds to live in the backend.
        tags: the tags.
        payload: the framed bytes, when something needs bytes; else None.
        raw: serialized length before compression (for the compression ratio).
    """

    key: str
    value: Any
    size: int
    ttl: float
    backend_ttl: float
    tags: tuple[str, ...]
    payload: bytes | None
    raw: int


L1Store = Literal["object", "payload"]
#: The L1's eviction policy, by name (``policy=`` overrides it).
Eviction = Literal["tinylfu", "lru"]

#: Who asked for an invalidation (see :meth:`CacheCore.delete`).
Origin = Literal["local", "remote", "quiet"]


class CacheCore:
    """Decisions and state shared by the sync and async caches (see module doc).

    Not public: construct a :class:`~sentia_core.cache.TieredCache`. Every
    argument is validated here, so invalid configuration raises
    :class:`~sentia_core.errors.ConfigError` at construction.
    """

    def __init__(
        self,
        *,
        max_items: int,
        max_bytes: int,
        ttl: float,
        stale_ttl: float,
        stale_while_revalidate: bool,
        namespace: str,
        codec: Codec,
        l1_store: L1Store,
        eviction: Eviction = "tinylfu",
        policy: EvictionPolicy | None,
        backend: CacheBackend | None,
        backend_ttl: float | None,
        clock: Clock,
    ) -> None:
        self.max_items = check_int("max_items", max_items, minimum=0)
        self.max_bytes = check_int("max_bytes", max_bytes, minimum=1)
        self.ttl = _check_ttl("ttl", ttl)
        self.backend_ttl = self.ttl if backend_ttl is None else _check_ttl("ttl", backend_ttl)
        self.stale_ttl = check_non_negative("stale_ttl", stale_ttl, allow_inf=True)
        if not isinstance(stale_while_revalidate, bool):
            raise ConfigError("stale_while_revalidate", stale_while_revalidate, "a bool")
        if stale_while_revalidate and self.stale_ttl == 0:
            raise ConfigError(
                "stale_while_revalidate",
                stale_while_revalidate,
                "needs stale_ttl > 0 (how long an expired value may still be served)",
            )
        self.swr = stale_while_revalidate
        if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
            raise ConfigError(
                "namespace", namespace, "1 to 64 characters among letters, digits, '_', '.', '-'"
            )
        self.namespace = namespace
        self.source = f"cache:{namespace}"
        self._prefix = namespace + ":"
        if l1_store not in ("object", "payload"):
            raise ConfigError("l1_store", l1_store, "must be 'object' or 'payload'")
        self.payload_mode = l1_store == "payload"
        if eviction not in ("tinylfu", "lru"):
            raise ConfigError("eviction", eviction, "must be 'tinylfu' or 'lru'")
        if policy is None:
            policy = (
                LRUPolicy() if eviction == "lru" else TinyLFUPolicy(self.max_items, self.max_bytes)
            )
        elif not isinstance(policy, EvictionPolicy):
            raise ConfigError("policy", policy, "must implement EvictionPolicy")
        if backend is not None and not isinstance(backend, CacheBackend):
            raise ConfigError("backend", backend, "must implement CacheBackend")
        if not isinstance(clock, Clock):
            raise ConfigError("clock", clock, "must provide monotonic() and time()")
        self.backend = backend
        self.codec = codec
        self.clock = clock
        self.now = clock.monotonic
        self.layer = MemoryLayer(self.max_items, self.max_bytes, policy)
        self.lock = threading.Lock()
        self.flights: dict[str, Flight] = {}
        self.listeners: Listeners[Event] = Listeners()
        #: bumped by every invalidation; see the module docstring.
        self.epoch = 0
        #: background (stale-while-revalidate) refreshes running now.
        self.refreshing = 0
        #: the longest an L1 entry may live right now (a Redis L2 lowers it while
        #: its invalidation channel is down; see _redis_backend.py)
        self.cap = _INF
        #: loaded values being written to the backend, and those written in the
        #: last FILL_GRACE seconds (see "fills racing invalidations")
        self.writing: dict[str, Flight] = {}
        self.recent: dict[str, tuple[float, tuple[str, ...], str]] = {}
        self.repairs: list[tuple[str, str]] = []
        #: counts hits lock-free (next() on it is one C call); never replaced,
        #: so the readers built by make_reader keep counting after reset_stats
        self._hits = itertools.count()
        self._hit = self._hits.__next__
        self._hits_offset = 0
        #: backend hits, counted the same way
        self._bhits = itertools.count()
        self._backend_hit = self._bhits.__next__
        self._bhits_offset = 0
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._hits_offset = self._raw_hits()
        self.misses = 0
        self.sets = 0
        self.invalidated = 0
        self.loader_calls = 0
        self.loader_errors = 0
        self.coalesced = 0
        self.stale_served = 0
        self.discarded = 0
        self.compressed = 0
        self.raw_bytes = 0
        self.payload_bytes = 0
        self.corrupt = 0
        self.rejected = 0
        self._bhits_offset = int(repr(self._bhits)[6:-1])
        self.backend_misses = 0
        self.backend_errors = 0
        self.backend_skipped = 0
        self.remote_coalesced = 0
        layer = self.layer
        layer.evicted_size = layer.evicted_bytes = layer.evicted_ttl = layer.oversize = 0

    # -- validation --------------------------------------------------------------

    def resolve_ttl(self, ttl: float | None) -> tuple[float, float]:
        """``(l1_ttl, backend_ttl)`` for a per-call ``ttl`` (None: the defaults)."""
        if ttl is None:
            return self.ttl, self.backend_ttl
        t = _check_ttl("ttl", ttl)
        return t, t

    # -- hit path ------------------------------------------------------------------

    def make_reader(self, on_miss: Callable[[Any, Any, float | None], Any]) -> Callable[..., Any]:
        """The lock-free hit path as a closure ``read(key, default=None)``.

        On a miss (absent or expired) it returns ``on_miss(key, default, now)``
        where ``now`` is the clock reading it made (None if it made none).
        """
        get = self.layer.data.get
        now = self.now
        touch = self.layer.policy.on_hit
        hit = self._hit
        decode = self._own_loads if self.payload_mode else None

        def read(key: Any, default: Any = None) -> Any:
            try:
                entry = get(key)
            except TypeError:
                raise InvalidKeyError(key) from None
            if entry is not None:
                t = now()
                if entry.expires > t:
                    if touch is not None:
                        try:  # noqa: SIM105 - try is free on the hit path, suppress() is not
                            touch(key)
                        except KeyError:  # removed by another thread a moment ago
                            pass
                    hit()
                    return entry.value if decode is None else decode(entry.value)
                return on_miss(key, default, t)
            return on_miss(key, default, None)

        return read

    def _own_loads(self, payload: bytes) -> Any:
        return self.codec.loads(payload, verify=False)

    def _l1_value(self, entry: Entry) -> Any:
        return self._own_loads(entry.value) if self.payload_mode else entry.value

    def _raw_hits(self) -> int:
        # repr(count(n)) is "count(n)": reading it does not consume a value
        return int(repr(self._hits)[6:-1])

    def hits(self) -> int:
        """Hits since construction or the last reset_stats()."""
        return self._raw_hits() - self._hits_offset

    def backend_hits(self) -> int:
        """Hits answered by the backend since construction or the last reset_stats()."""
        return int(repr(self._bhits)[6:-1]) - self._bhits_offset

    # -- miss path (L1 only) -----------------------------------------------------

    def recheck(self, key: Any, now: float | None) -> Any:
        """After a lock-free miss: validate ``key``, drop a dead entry, re-read once.

        Returns the value if another thread stored it meanwhile (counted as a
        hit), else MISS (not yet counted: the caller may still find it in the
        backend).
        """
        check_key(key)
        if now is None:
            now = self.now()
        with self.lock:
            entry = self.layer.data.get(key)
            if entry is not None:
                if entry.expires > now:
                    self._hit()
                    touch = self.layer.policy.on_hit
                    if touch is not None:
                        touch(key)
                    value = entry.value
                    found = True
                else:
                    found = False
                    if entry.stale_until <= now:
                        self.layer.drop_dead(key, entry)
            else:
                found = False
            log = self._take_log()
        if log:
            self._emit_evictions(log)
        if found:
            return self._own_loads(value) if self.payload_mode else value
        return MISS

    def count_misses(self, n: int = 1) -> None:
        """Count ``n`` lookups that found nothing."""
        with self.lock:
            self.misses += n

    # -- backend reads -------------------------------------------------------------

    def qualify(self, key: str) -> str:
        """The key as the backend sees it: ``namespace:key``."""
        return self._prefix + key

    def qualify_tags(self, tags: Iterable[str]) -> tuple[str, ...]:
        """The tags as the backend sees them: ``namespace:tag``."""
        p = self._prefix
        return tuple(p + t for t in tags)

    def decode(self, key: str, stored: StoredValue) -> Any:
        """Decode a backend payload; a bad one is counted, reported and becomes MISS."""
        try:
            if stored.error is not None:
                raise stored.error
            return self.codec.loads(stored.payload)
        except PayloadError as exc:
            untrusted = isinstance(exc, UntrustedPayloadError)
            with self.lock:
                if untrusted:
                    self.rejected += 1
                else:
                    self.corrupt += 1
            self.fault("untrusted" if untrusted else "corrupt", key, exc)
            return MISS

    def adopt(
        self, key: str, stored: StoredValue | None, epoch: int, *, counted_miss: bool = False
    ) -> Any:
        """Turn a backend read into a value (or MISS), counting it; fill the L1.

        ``epoch`` is :attr:`epoch` as read before the backend call; if an
        invalidation happened since, the value is returned but not put in L1.
        ``counted_miss``: the caller already counted this lookup as a miss
        (single-flight leaders); a backend hit then turns it into a hit.
        """
        value = MISS if stored is None else self.decode(key, stored)
        if value is MISS:
            with self.lock:
                self.backend_misses += 1
                if not counted_miss:
                    self.misses += 1
            return MISS
        assert stored is not None
        if not self.max_items and not counted_miss:  # nothing to fill: count lock-free
            self._hit()
            self._backend_hit()
            return value
        now = self.now()
        prepared = self._fill(key, value, stored) if self.max_items else None
        with self.lock:
            self._hit()
            self._backend_hit()
            if counted_miss:
                self.misses -= 1
            if prepared is not None and self.epoch == epoch:
                self._put(prepared, now)
            log = self._take_log()
        if log:
            self._emit_evictions(log)
        return value

    def _fill(self, key: str, value: Any, stored: StoredValue) -> Prepared | None:
        """The L1 entry for a value read from the backend (None: not cacheable here)."""
        p = self._prefix
        try:  # tags and TTL come from the store: tolerate anything in them
            tags = tuple(
                t[len(p) :] if t.startswith(p) else t
                for t in stored.tags
                if isinstance(t, str) and t
            )
            ttl = min(float(stored.ttl), self.ttl)
            if ttl > 0:
                return self._prepare_l1(key, value, ttl, tags, stored.payload)
        except Exception:  # not cacheable locally; the caller still gets the value
            pass
        return None

    def recheck_many(self, keys: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
        """:meth:`recheck` for keys the lock-free read missed, under one lock.

        Returns ``(found, missing)``; hits are counted, misses are not (yet).
        """
        found: dict[str, Any] = {}
        missing: list[str] = []
        now = self.now()
        data = self.layer.data
        touch = self.layer.policy.on_hit
        with self.lock:
            for key in keys:
                entry = data.get(key)
                if entry is not None and entry.expires > now:
                    self._hit()
                    if touch is not None:
                        touch(key)
                    found[key] = entry.value
                else:
                    if entry is not None and entry.stale_until <= now:
                        self.layer.drop_dead(key, entry)
                    missing.append(key)
            log = self._take_log()
        if log:
            self._emit_evictions(log)
        if self.payload_mode:
            found = {k: self._own_loads(v) for k, v in found.items()}
        return found, missing

    def adopt_many(
        self, keys: Sequence[str], stored: Sequence[StoredValue | None], epoch: int
    ) -> dict[str, Any]:
        """:meth:`adopt` for a batch read (``get_many``): decode outside the lock,
        count and fill the L1 under it once. Returns the keys found."""
        found: dict[str, Any] = {}
        fills: list[Prepared] = []
        misses = 0
        decode = self.decode
        loads = self.codec.loads
        fill = self._fill if self.max_items else None
        if fill is None and stored.__class__ is StoredBatch:
            # the common batch, no L1 to fill: decode it in one pass
            try:
                batch: StoredBatch = stored
                values = self.codec.loads_many(batch.raws, batch.offset)
                found = dict(zip(keys, values, strict=True))
            except PayloadError:
                found = {}  # someone's payload is bad: key by key below, counting it
            else:
                stored = ()
                keys = ()
        for key, item in zip(keys, stored, strict=True):
            if item is None:
                misses += 1
                continue
            payload, _, _, error = item
            if error is None:
                try:
                    value = loads(payload)
                except PayloadError:  # count and report it (slow path, rare)
                    value = decode(key, item)
            else:
                value = decode(key, item)
            if value is MISS:
                misses += 1
                continue
            found[key] = value
            if fill is not None:
                prepared = fill(key, value, item)
                if prepared is not None:
                    fills.append(prepared)
        now = self.now()
        with self.lock:
            n = len(found)
            self._hits_offset -= n  # n hits at once (hits() is raw count - offset)
            self._bhits_offset -= n
            self.backend_misses += misses
            self.misses += misses
            if fills and self.epoch == epoch:
                for p in fills:
                    self._put(p, now)
            log = self._take_log()
        if log:
            self._emit_evictions(log)
        return found

    # -- writes --------------------------------------------------------------------

    def prepare(
        self,
        key: Any,
        value: Any,
        ttl: float | None,
        tags: Any,
        *,
        checked: bool = False,
    ) -> Prepared:
        """Validate and encode one write (no lock held; may raise).

        Raises:
            InvalidKeyError: ``key`` is not a str.
            ConfigError: ``ttl`` is not a positive number, or bad ``tags``.
            SerializationError: the codec cannot encode ``value``.
        """
        if not checked:
            if key.__class__ is not str:
                check_key(key)
            tags = check_tags(tags) if tags else ()
        if ttl is None:
            l1_ttl = self.ttl
            b_ttl = self.backend_ttl
        else:
            l1_ttl = b_ttl = _check_ttl("ttl", ttl)
        codec = self.codec
        if self.payload_mode or self.backend is not None:
            fmt, body = codec.serialize(value)
            payload = codec.frame(fmt, body)
            raw = len(body)
            held = payload if self.payload_mode else value
            size = key_bytes(key) + (len(payload) if self.payload_mode else raw)
        else:  # objects in L1, no backend: any object (a reference, as cachetools)
            raw = codec.measure_object(value)
            payload = None
            held = value
            size = (len(key) if key.isascii() else key_bytes(key)) + raw
        return Prepared(key, held, size, l1_ttl, b_ttl, tags, payload, raw)

    def _prepare_l1(
        self, key: str, value: Any, ttl: float, tags: tuple[str, ...], payload: bytes
    ) -> Prepared:
        if self.payload_mode:
            return Prepared(key, payload, key_bytes(key) + len(payload), ttl, ttl, tags, None, 0)
        raw = self.codec.measure(value)
        return Prepared(key, value, key_bytes(key) + raw, ttl, ttl, tags, None, 0)

    def _put(self, p: Prepared, now: float) -> bool:
        """Insert into the L1 (caller holds the lock)."""
        expires = now + (p.ttl if p.ttl < self.cap else self.cap)
        entry = Entry(p.value, expires, expires + self.stale_ttl, p.size, p.tags)
        return self.layer.put(p.key, entry, now)

    def _count_payload(self, p: Prepared) -> None:
        payload = p.payload
        if payload is not None:
            header = payload[0]
            self.raw_bytes += p.raw
            # the body as stored: without the header byte and the signature
            self.payload_bytes += len(payload) - (33 if header & 0x40 else 1)
            if header & 0x80:
                self.compressed += 1

    def store(self, writes: Sequence[Prepared]) -> None:
        """Put prepared writes in the L1; a write wins over any load in flight for its key."""
        now = self.now()
        stale_ttl = self.stale_ttl
        put = self.layer.put
        cap = self.cap
        with self.lock:
            self.epoch += 1
            flights = self.flights
            for p in writes:
                if flights:
                    self._poison_key(p.key)
                if p.payload is not None:
                    self._count_payload(p)
                expires = now + (p.ttl if p.ttl < cap else cap)
                put(p.key, Entry(p.value, expires, expires + stale_ttl, p.size, p.tags), now)
            self.sets += len(writes)
            log = self.layer.log
            log = self._take_log() if log else None
        if log:
            self._emit_evictions(log)

    def write(self, key: Any, value: Any, ttl: float | None, tags: Any) -> Prepared | None:
        """``set()`` in one call: validate, size, store; the Prepared write when a backend
        needs it, else None.

        The commonest write (default TTL, no tags, objects in L1, no backend)
        is :meth:`prepare` plus :meth:`store` inlined: no intermediate record,
        two calls fewer. Anything else takes the general path.
        """
        if ttl is not None or tags or self.payload_mode or self.backend is not None:
            prepared = self.prepare(key, value, ttl, tags)
            self.store((prepared,))
            return prepared
        if key.__class__ is not str:
            check_key(key)
        size = (len(key) if key.isascii() else key_bytes(key)) + self.codec.measure_object(value)
        now = self.now()
        expires = now + self.ttl
        entry = Entry(value, expires, expires + self.stale_ttl, size, ())
        with self.lock:
            self.epoch += 1
            if self.flights:
                self._poison_key(key)
            self.sets += 1
            self.layer.put(key, entry, now)
            log = self._take_log() if self.layer.log else None
        if log:
            self._emit_evictions(log)
        return None

    def backend_writes(self, writes: Sequence[Prepared]) -> list[BackendWrite]:
        """The backend's view of prepared writes (qualified keys and tags)."""
        return [
            BackendWrite(self.qualify(p.key), p.payload, p.backend_ttl, self.qualify_tags(p.tags))
            for p in writes
            if p.payload is not None
        ]

    # -- invalidation --------------------------------------------------------------

    def _poison_key(self, key: str) -> None:
        flight = self.flights.pop(key, None)
        if flight is not None:
            flight.poisoned = True
        if self.writing:
            flight = self.writing.get(key)
            if flight is not None:
                flight.poisoned = True

    def _poison(self, pred: Callable[[Flight], bool]) -> None:
        flights = self.flights
        for key in [k for k, f in flights.items() if pred(f)]:
            flights.pop(key).poisoned = True
        for flight in self.writing.values():
            if pred(flight):
                flight.poisoned = True

    # -- fills racing invalidations ------------------------------------------------
    #
    # A loaded value reaches the backend after complete() released the lock. An
    # invalidation (local, or announced by another process) can reach the
    # backend *before* that write lands, leaving a value loaded before the
    # change in the L2. So a fill being written stays in ``writing`` and is
    # poisoned like a flight; its writer then takes it back (written()). And an
    # announcement can arrive *after* the write landed: fills written within
    # the last FILL_GRACE seconds are remembered in ``recent``, and a remote
    # invalidation (or a flush) matching one hands it to the listener
    # (take_repairs()). Taking a fill back is conditional: the backend deletes
    # the key only if it still holds that very payload (by digest), so a newer
    # write by anyone else is never lost.

    def written(self, flight: Flight, digest: str) -> bool:
        """The leader's backend write of its loaded value (payload ``digest``)
        returned. True: an invalidation raced it; take it back."""
        now = self.now()
        with self.lock:
            if self.writing.get(flight.key) is flight:
                del self.writing[flight.key]
            if flight.poisoned:
                return True
            recent = self.recent
            recent.pop(flight.key, None)
            recent[flight.key] = (now, flight.tags, digest)
            limit = now - FILL_GRACE
            while recent:
                first = next(iter(recent))
                if recent[first][0] > limit and len(recent) <= MAX_RECENT_FILLS:
                    break
                del recent[first]
            return False

    def _repair(self, pred: Callable[[str, tuple[str, ...]], bool]) -> None:
        """Hand recent fills matching ``pred`` to take_repairs() (caller holds the lock)."""
        recent = self.recent
        if not recent:
            return
        limit = self.now() - FILL_GRACE
        doomed = [
            (k, digest) for k, (at, tags, digest) in recent.items() if at > limit and pred(k, tags)
        ]
        for key, _ in doomed:
            del recent[key]
        self.repairs.extend(doomed)

    def take_repairs(self) -> list[tuple[str, str]]:
        """``(key, payload digest)`` of fills the listener must take back (see above)."""
        with self.lock:
            repairs, self.repairs = self.repairs, []
            return repairs

    def delete(self, keys: Sequence[str], *, origin: Origin = "local") -> int:
        """Remove keys from the L1 (and poison their flights); returns how many were held.

        ``origin``: ``"local"`` (a caller asked), ``"remote"`` (another process
        announced it) or ``"quiet"`` (a second pass after the backend finished:
        neither counted nor reported). The same for the methods below.
        """
        n = 0
        now = self.now()
        with self.lock:
            self.epoch += 1
            self.layer.purge(now)
            pop = self.layer.pop
            for key in keys:
                self._poison_key(key)
                if pop(key) is not None:
                    n += 1
            if origin == "remote" and self.recent:
                wanted = frozenset(keys)
                self._repair(lambda k, t: k in wanted)
            if origin != "quiet":
                self.invalidated += n
            log = self._take_log()
        if log:
            self._emit_evictions(log)
        self._invalidation("delete", tuple(keys), n, origin)
        return n

    def invalidate_tags(self, tags: tuple[str, ...], *, origin: Origin = "local") -> int:
        """Remove every L1 entry carrying one of ``tags``; poison matching flights."""
        wanted = frozenset(tags)
        now = self.now()
        with self.lock:
            self.epoch += 1
            self.layer.purge(now)
            self._poison(lambda f: not wanted.isdisjoint(f.tags))
            if origin == "remote":
                self._repair(lambda k, t: not wanted.isdisjoint(t))
            keys = self.layer.keys_tagged(tags)
            pop = self.layer.pop
            for key in keys:
                pop(key)
            if origin != "quiet":
                self.invalidated += len(keys)
            log = self._take_log()
        if log:
            self._emit_evictions(log)
        self._invalidation("tags", tags, len(keys), origin)
        return len(keys)

    def invalidate_matching(
        self, pattern: str, match: Callable[[str], bool], *, origin: Origin = "local"
    ) -> int:
        """Remove every L1 key for which ``match(key)``; poison matching flights."""
        now = self.now()
        with self.lock:
            self.epoch += 1
            self.layer.purge(now)
            self._poison(lambda f: match(f.key))
            if origin == "remote":
                self._repair(lambda k, t: match(k))
            keys = [k for k in self.layer.data if match(k)]
            pop = self.layer.pop
            for key in keys:
                pop(key)
            if origin != "quiet":
                self.invalidated += len(keys)
            log = self._take_log()
        if log:
            self._emit_evictions(log)
        self._invalidation("pattern", (pattern,), len(keys), origin)
        return len(keys)

    def clear(self, *, origin: Origin = "local", kind: InvalidationKind = "clear") -> int:
        """Empty the L1 and poison every flight (``kind="flush"``: not on request)."""
        now = self.now()
        with self.lock:
            self.epoch += 1
            self.layer.purge(now)
            self._poison(lambda f: True)
            if origin == "remote":  # another process's clear, or a flush
                self._repair(lambda k, t: True)
            n = self.layer.clear()
            if origin != "quiet" and kind == "clear":
                self.invalidated += n
            log = self._take_log()
        if log:
            self._emit_evictions(log)
        self._invalidation(kind, (), n, origin)
        return n

    # -- the invalidation sink (a Redis L2's listener calls these) -------------------

    def apply_remote(self, kind: str, targets: tuple[str, ...]) -> None:
        """Apply another process's invalidation to this L1."""
        if kind == "keys":
            self.delete(targets, origin="remote")
        elif kind == "tags":
            self.invalidate_tags(targets, origin="remote")
        elif kind == "pattern" and len(targets) == 1:
            try:
                match = compile_glob(targets[0])
            except InvalidPatternError:  # not ours to judge: drop everything instead
                self.clear(origin="remote", kind="flush")
                return
            self.invalidate_matching(targets[0], match, origin="remote")
        else:
            self.clear(origin="remote")

    def flush_l1(self) -> None:
        """Empty the L1 because invalidations may have been missed."""
        self.clear(origin="remote", kind="flush")

    def cap_l1(self, ttl: float | None) -> None:
        """Keep L1 entries stored from now on at most ``ttl`` seconds (None: lift)."""
        self.cap = _INF if ttl is None else ttl

    # -- single-flight -------------------------------------------------------------

    def begin(
        self,
        key: str,
        tags: tuple[str, ...],
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        task: object | None = None,
    ) -> Decision:
        """Decide what a caller that missed ``key`` does next (see module doc).

        ``loop`` (with ``task``) is given by async callers: a ``Join`` then
        carries a future on that loop.
        """
        now = self.now()
        layer = self.layer
        hit_value: Any = MISS
        with self.lock:
            entry = layer.data.get(key)
            if entry is not None and entry.expires > now:
                self._hit()
                touch = layer.policy.on_hit
                if touch is not None:
                    touch(key)
                hit_value = entry.value
                decision: Decision = _BYPASS  # replaced by Hit below, outside the lock
            else:
                stale: Any = MISS
                if entry is not None:
                    if entry.stale_until > now:
                        stale = self._l1_value(entry)  # decodes only in payload mode (rare)
                    else:
                        layer.drop_dead(key, entry)
                self.misses += 1
                flight = self.flights.get(key)
                if flight is not None:
                    if flight.stale is not MISS and self.swr:
                        self.stale_served += 1
                        decision = ServeStale(flight.stale, None)
                    elif flight.would_deadlock(task if loop is not None else None):
                        self.loader_calls += 1
                        decision = _BYPASS
                    else:
                        flight.waiters += 1
                        self.coalesced += 1
                        if loop is None:
                            flight.wait_event()
                            decision = Join(flight, None)
                        else:
                            decision = Join(flight, flight.future(loop))
                elif stale is not MISS and self.swr and self.refreshing >= MAX_REFRESHES:
                    self.stale_served += 1  # enough refreshes running: serve, refresh later
                    decision = ServeStale(stale, None)
                else:
                    flight = Flight(key, tags, stale, task)
                    self.flights[key] = flight
                    if stale is not MISS and self.swr:
                        flight.background = True
                        self.refreshing += 1
                        self.stale_served += 1
                        decision = ServeStale(stale, flight)
                    else:
                        if self.backend is None:  # with a backend, loading() counts it
                            self.loader_calls += 1
                        decision = Lead(flight)
            log = self._take_log()
        if log:
            self._emit_evictions(log)
        if hit_value is not MISS:
            return Hit(self._own_loads(hit_value) if self.payload_mode else hit_value)
        return decision

    def complete(self, flight: Flight, prepared: Prepared, value: Any) -> bool:
        """The leader loaded ``value``: store it unless poisoned, settle the flight.

        Returns whether it was stored (and so should go to the backend too).
        The caller must call ``flight.wake()`` afterwards.
        """
        now = self.now()
        with self.lock:
            self._retire(flight)
            stored = not flight.poisoned
            if stored:
                self._count_payload(prepared)
                self.sets += 1
                self._put(prepared, now)
                if self.backend is not None:
                    self.writing[flight.key] = flight  # until written()
            else:
                self.discarded += 1
            flight.settle(True, value)
            log = self._take_log()
        if log:
            self._emit_evictions(log)
        return stored

    def _retire(self, flight: Flight) -> None:
        """Take a settling flight out of the table (caller holds the lock)."""
        if self.flights.get(flight.key) is flight:
            del self.flights[flight.key]
        if flight.background:  # each flight is retired once, when it settles
            self.refreshing -= 1

    def loading(self) -> None:
        """A leader found nothing in the backend and runs its loader (counted).

        Without a backend, :meth:`begin` counts the load when it says Lead.
        """
        with self.lock:
            self.loader_calls += 1

    def settle(self, flight: Flight, value: Any) -> None:
        """Settle ``flight`` with ``value`` without storing (a backend hit, a bypass).

        The caller must call ``flight.wake()`` afterwards.
        """
        with self.lock:
            self._retire(flight)
            flight.settle(True, value)

    def fail(self, flight: Flight, error: BaseException, *, loader: bool = True) -> Any:
        """The leader's loader raised ``error``: serve the stale value or propagate.

        Returns the stale value (fail-safe; counted for the leader and every
        waiter) or MISS, meaning the caller re-raises ``error`` (which every
        waiter also gets). The caller must call ``flight.wake()`` afterwards.
        """
        with self.lock:
            self._retire(flight)
            if loader:
                self.loader_errors += 1
            stale = flight.stale if loader else MISS
            if stale is not MISS:
                # the leader (unless a background refresh, counted when it began) and waiters
                self.stale_served += flight.waiters + (0 if flight.background else 1)
                flight.settle(True, stale)
            else:
                flight.settle(False, error=error)
        if loader:
            self.fault("loader", flight.key, error)
        return stale

    def abandon(self, flight: Flight) -> None:
        """The leader was cancelled or interrupted: its waiters will retry."""
        with self.lock:
            self._retire(flight)
            flight.settle(False)

    @staticmethod
    def outcome(flight: Flight) -> Any:
        """What a woken waiter returns: the value, the error raised, or MISS (retry)."""
        if flight.ok:
            return flight.value
        if flight.error is not None:
            raise flight.error
        return MISS

    # -- faults and events ---------------------------------------------------------

    def count_skipped(self, n: int = 1, *, misses: int = 0) -> None:
        """Backend calls not made (its breaker is open); ``misses`` lookups found nothing."""
        with self.lock:
            self.backend_skipped += n
            self.misses += misses

    def count_remote_coalesced(self) -> None:
        """A caller got its value from another process's load (distributed lock)."""
        with self.lock:
            self.remote_coalesced += 1

    def count_backend_error(self, key: str | None, error: BaseException) -> None:
        """A backend call failed (the caller carries on without it)."""
        with self.lock:
            self.backend_errors += 1
        self.fault("backend", key, error)

    def fault(self, kind: FaultKind, key: str | None, error: BaseException) -> None:
        if self.listeners:
            self.listeners.emit(
                CacheFault(
                    self.source,
                    self.clock.time(),
                    self.namespace,
                    kind,
                    key,
                    f"{type(error).__name__}: {error}",
                )
            )

    def _take_log(self) -> list[tuple[str, Any, int]] | None:
        log = self.layer.log
        if not log:
            return None
        items = list(log)
        log.clear()
        return items

    def _emit_evictions(self, log: list[tuple[str, Any, int]]) -> None:
        at = self.clock.time()
        emit = self.listeners.emit
        for key, reason, size in log:
            emit(CacheEviction(self.source, at, self.namespace, key, reason, size))

    def _invalidation(
        self, kind: InvalidationKind, targets: tuple[str, ...], n: int, origin: Origin = "local"
    ) -> None:
        if self.listeners and origin != "quiet":
            self.listeners.emit(
                CacheInvalidation(
                    self.source,
                    self.clock.time(),
                    self.namespace,
                    kind,
                    targets,
                    n,
                    origin == "remote",
                )
            )

    def add_listener(self, listener: Callable[[Event], object]) -> Callable[[], None]:
        remove = self.listeners.add(listener)
        self._refresh_log()

        def unsubscribe() -> None:
            remove()
            self._refresh_log()

        return unsubscribe

    def _refresh_log(self) -> None:
        with self.lock:
            if self.listeners and self.layer.log is None:
                self.layer.log = []
            elif not self.listeners:
                self.layer.log = None

    # -- stats ---------------------------------------------------------------------

    def stats(self, *, degraded: bool = False, redis: RedisStats | None = None) -> CacheStats:
        """A consistent snapshot (dead entries are purged first); the adapter adds
        ``degraded`` and the Redis side."""
        now = self.now()
        with self.lock:
            layer = self.layer
            layer.purge(now)
            hits = self.hits()
            lookups = hits + self.misses
            ratio = self.payload_bytes / self.raw_bytes if self.raw_bytes else 1.0
            snap = CacheStats(
                namespace=self.namespace,
                hits=hits,
                misses=self.misses,
                hit_rate=hits / lookups if lookups else 0.0,
                sets=self.sets,
                items=len(layer.data),
                bytes=layer.bytes,
                max_items=self.max_items,
                max_bytes=self.max_bytes,
                evictions=EvictionCounts(
                    layer.evicted_size, layer.evicted_bytes, layer.evicted_ttl
                ),
                oversize=layer.oversize,
                invalidated=self.invalidated,
                loader_calls=self.loader_calls,
                loader_errors=self.loader_errors,
                coalesced=self.coalesced,
                stale_served=self.stale_served,
                discarded_loads=self.discarded,
                compressed=self.compressed,
                compression_ratio=ratio,
                corrupt=self.corrupt,
                rejected=self.rejected,
                backend_hits=self.backend_hits(),
                backend_errors=self.backend_errors,
                backend_misses=self.backend_misses,
                backend_skipped=self.backend_skipped,
                remote_coalesced=self.remote_coalesced,
                degraded=degraded,
                redis=redis,
            )
            log = self._take_log()
        if log:
            self._emit_evictions(log)
        return snap

    def reset_stats(self) -> None:
        """Zero every counter (contents are kept)."""
        with self.lock:
            self._reset_counters()


def _check_ttl(parameter: str, ttl: object) -> float:
    if isinstance(ttl, str):
        ttl = parse_duration(parameter, ttl)  # "5min", like the configuration file
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise ConfigError(parameter, ttl, "a TTL is a number of seconds")
    t = float(ttl)
    if math.isnan(t) or t <= 0:
        raise ConfigError(parameter, ttl, "a TTL must be greater than 0 (math.inf: no expiry)")
    return t


def as_mapping(mapping: object) -> Mapping[Any, Any]:
    """``mapping`` itself if it is a Mapping, else TypeError (``set_many`` takes one)."""
    if isinstance(mapping, Mapping):
        return mapping
    raise TypeError(f"set_many takes a mapping of key to value, not {type(mapping).__name__}")
