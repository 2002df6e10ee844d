"""W-TinyLFU: the L1's default eviction policy (after Caffeine, Einziger et al.).

Theory of operation
-------------------

*Regions.* Every tracked key sits in exactly one of three LRU queues
(``OrderedDict`` key -> accounted size): the admission *window* (new
keys enter here), and the main region split into *probation* and
*protected*. Each region has a share of the cache, applied to both bounds
(items and bytes): the window starts at 1 %, protected at 80 % of the rest,
probation takes what is left. A hit in the window or protected moves the key
to its queue's end; a hit in probation promotes it to protected (whose
overflow is demoted back to probation's end).

*Admission.* When a write makes the window overflow, its oldest keys move to
the end of probation as *candidates*. While the cache is over a bound the
layer asks :meth:`TinyLFUPolicy.victim`: each candidate, oldest first, is
compared with probation's least recent key (the *victim*) by their estimated
frequencies; the candidate is admitted (the victim leaves) only if its
estimate is strictly higher, else the candidate leaves. With no candidate
left, the window's oldest key competes the same way. The key written by the
current operation is never chosen, so a value just stored is readable.

*Frequency.* :class:`FrequencySketch`, a count-min sketch of 4-bit counters
(saturating at 15; one per byte, for speed) in two rows of 16 counters per
key of capacity: a key's first write and every recorded hit increment its
counter in each row (picked by either half of ``hash(key)``), an estimate
is the smaller of the two. Every ``5 x capacity`` requests every counter is
halved (one ``bytearray.translate``), so old popularity fades. Two rows, not
Caffeine's four, because each row costs Python bytecodes on every write; the
rows are wider instead (32 one-byte counters per key of capacity, where
Caffeine packs 16 in 8 bytes; 512 KiB for the default 10,000). Keys are
``str``, whose ``hash`` is SipHash with a per-process seed, so an attacker
cannot aim collisions at a victim (the reason Caffeine admits a warm
candidate at random; not needed here). No doorkeeper: a new key costs two
counters. The sketch starts at 1,024 keys (or ``max_items`` if smaller) and
doubles, keeping its estimates, as the tracked keys outgrow it, up to
``max_items``: a byte-bounded cache holding few keys keeps a small sketch.
A rewrite of a held key makes it recent but is not counted as a use.

*Hits without a lock.* ``on_hit`` is ``deque.append`` on a bounded deque (the
read buffer): one C call, atomic under the GIL, and under contention or
between writes the oldest records fall off the front, which only loses
frequency samples. Writes (:meth:`on_insert`, :meth:`on_update`, called
under the cache lock) drain it: each record increments the sketch and
reorders its key.

*Adaptive window.* Caffeine's hill climber: every ``10 x capacity``
requests (drained hits plus inserts) it compares the hit rate with the
previous sample's and moves the window's share by a step in the direction
that helped (starting towards a smaller window); the step decays by 2 % a
sample and restarts at 6.25 % of the cache when the hit rate moves by 5
points. A bigger window takes its room from protected (window plus protected
stay 80.2 % of the cache, so the window is at most that), moving main's
least recent keys into the window; a smaller one spills the window's oldest
keys to probation without a contest. So recency-biased traces grow the
window, frequency-biased ones keep it small.

*Between writes.* In a read-only stretch only the last ``read_buffer`` hits
are recorded; a cache with no writes evicts nothing, so this only thins the
frequency samples of keys read long before the next write.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable

from sentia_core._validate import check_int
from sentia_core.errors import ConfigError

__all__ = ["FrequencySketch", "TinyLFUPolicy"]

#: counter values halved: the table of ``bytearray.translate`` that ages the sketch
_HALVE = bytes(i >> 1 for i in range(256))
#: ...and incremented, saturating at 15 (so 4-bit counters in a byte each)
_INCREMENT = bytes(min(i + 1, 15) for i in range(256))
_MIN_CAPACITY = 64

#: the window's initial share of the cache, and protected's share of the main region
WINDOW_SHARE = 0.01
PROTECTED_SHARE = 0.80
#: hill climber (Caffeine's constants): step as a share of the cache, its decay,
#: and the hit-rate change that restarts it at full step
CLIMB_STEP = 0.0625
CLIMB_DECAY = 0.98
CLIMB_RESTART = 0.05
#: most entries moved between regions in one operation (bounds a write's work)
_TRANSFER_LIMIT = 1000


class FrequencySketch:
    """Estimates how often each key was seen recently: a count-min sketch.

    Two rows of 16 counters per key of capacity (one byte each, saturating
    at 15: 4-bit counters); a key's counter in each row is picked by a
    different half of ``hash(key)``, and its estimate is the smaller of the
    two. Its owner calls :meth:`age` (halving every counter) every
    ``sample_size // 2`` increments or so: TinyLFU's reset.

    Args:
        capacity: the number of keys it should tell apart (rounded up to a
            power of two, at least 64).
    """

    __slots__ = ("_mask", "_row", "_table", "capacity", "sample_size")

    def __init__(self, capacity: int) -> None:
        capacity = max(_MIN_CAPACITY, 1 << (max(1, capacity) - 1).bit_length())
        self.capacity = capacity
        self._row = 16 * capacity
        self._mask = self._row - 1
        self._table = bytearray(2 * self._row)
        #: requests in which popularity is measured: 10 per key of capacity
        self.sample_size = 10 * capacity

    def frequency(self, key: str) -> int:
        """The estimated number of recent occurrences of ``key`` (0..15)."""
        h = hash(key)
        t = self._table
        m = self._mask
        a = t[h & m]
        b = t[((h >> 32) & m) | self._row]
        return a if a < b else b

    def increment(self, key: str) -> None:
        """Count one occurrence of ``key``."""
        h = hash(key)
        t = self._table
        m = self._mask
        i = h & m
        t[i] = _INCREMENT[t[i]]
        i = ((h >> 32) & m) | self._row
        t[i] = _INCREMENT[t[i]]

    def age(self) -> None:
        """Halve every counter (TinyLFU's reset)."""
        self._table = self._table.translate(_HALVE)

    def ensure_capacity(self, capacity: int) -> None:
        """Grow (never shrink) to tell ``capacity`` keys apart, keeping every estimate.

        Doubling a row keeps the estimates exactly: a counter's index in the
        longer row, masked by the old length, is its index in the old one.
        """
        while self.capacity < capacity:
            row = self._row
            t = self._table
            self._table = t[:row] * 2 + t[row:] * 2
            self.capacity *= 2
            self._row = 2 * row
            self._mask = 2 * row - 1
            self.sample_size = 10 * self.capacity

    def clear(self) -> None:
        """Forget every count."""
        self._table = bytearray(len(self._table))

    def __repr__(self) -> str:
        return f"FrequencySketch(capacity={self.capacity})"


class TinyLFUPolicy:
    """Window TinyLFU with an adaptive window (see the module docstring).

    ``TieredCache(eviction="tinylfu")`` (the default) builds one with the
    cache's bounds; pass one as ``policy=`` to change the knobs.

    Args:
        max_items: the cache's ``max_items``.
        max_bytes: the cache's ``max_bytes``.
        window: the window's initial share of the cache (0 < window < 1);
            default 0.01, as Caffeine.
        adaptive: let the hill climber resize the window (default True);
            False keeps ``window`` fixed.
        read_buffer: hit records kept between two writes (default 128); more
            are dropped, oldest first.

    Raises:
        ConfigError: an argument out of range, naming it.
    """

    __slots__ = (
        "_adjust_step",
        "_age_at",
        "_buffer",
        "_candidate",
        "_checkpoint",
        "_climb",
        "_hits",
        "_max_bytes",
        "_max_items",
        "_more",
        "_more_for",
        "_newest",
        "_prev_rate",
        "_probation",
        "_protected",
        "_qbytes",
        "_qmax_bytes",
        "_qmax_items",
        "_requests",
        "_sample",
        "_share",
        "_wbytes",
        "_window",
        "_wmax_bytes",
        "_wmax_items",
        "on_hit",
        "sketch",
    )

    def __init__(
        self,
        max_items: int,
        max_bytes: int,
        *,
        window: float = WINDOW_SHARE,
        adaptive: bool = True,
        read_buffer: int = 128,
    ) -> None:
        self._max_items = check_int("max_items", max_items, minimum=0)
        self._max_bytes = check_int("max_bytes", max_bytes, minimum=1)
        if (
            isinstance(window, bool)
            or not isinstance(window, (int, float))
            or not 0.0 < window < 1.0
        ):
            raise ConfigError("window", window, "a share of the cache between 0 and 1 (exclusive)")
        if not isinstance(adaptive, bool):
            raise ConfigError("adaptive", adaptive, "a bool")
        buffer_size = check_int("read_buffer", read_buffer, minimum=1)
        self._window: OrderedDict[str, int] = OrderedDict()
        self._probation: OrderedDict[str, int] = OrderedDict()
        self._protected: OrderedDict[str, int] = OrderedDict()
        self._wbytes = 0
        self._qbytes = 0
        self._buffer: deque[str] = deque(maxlen=buffer_size)
        self.on_hit: Callable[[str], object] | None = self._buffer.append
        self.sketch = FrequencySketch(min(max(max_items, 1), 1024))
        #: requests per hill-climber sample; the sketch ages twice a sample
        self._sample = self.sketch.sample_size
        self._age_at = self._sample // 2
        #: requests at which _maintain() runs next
        self._checkpoint = 0
        #: the first key the current write moved out of the window, and the
        #: others (rare), oldest first: the candidates for admission
        self._candidate: str | None = None
        self._more: list[str] = []
        self._more_for: str | None = None
        #: the key the current write stored: never a victim
        self._newest: str | None = None
        self._climb = adaptive
        self._hits = 0
        #: hits and inserts in the current sample
        self._requests = 0
        self._prev_rate = 0.0
        self._adjust_step = -CLIMB_STEP
        self._share = 0.0
        self._wmax_items = self._wmax_bytes = 0.0
        self._qmax_items = self._qmax_bytes = 0.0
        self._resize(float(window))

    # -- sizing --------------------------------------------------------------------

    def _resize(self, share: float) -> None:
        """Set the window's share; protected gets 80 % of the rest."""
        self._share = share
        self._wmax_items = max(1.0, share * self._max_items)
        self._wmax_bytes = share * self._max_bytes
        main = 1.0 - share
        self._qmax_items = PROTECTED_SHARE * main * self._max_items
        self._qmax_bytes = PROTECTED_SHARE * main * self._max_bytes

    @property
    def window_share(self) -> float:
        """The window's current share of the cache (moved by the hill climber)."""
        return self._share

    def segments(self) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """The keys of (window, probation, protected), least recent first (for tests)."""
        return tuple(self._window), tuple(self._probation), tuple(self._protected)

    # -- the EvictionPolicy protocol ---------------------------------------------------

    def on_insert(self, key: str, size: int) -> None:
        if self._buffer:
            self._drain()
        # self.sketch.increment(key), inlined: this runs on every miss
        sketch = self.sketch
        t = sketch._table
        m = sketch._mask
        h = hash(key)
        i = h & m
        t[i] = _INCREMENT[t[i]]
        i = ((h >> 32) & m) | sketch._row
        t[i] = _INCREMENT[t[i]]
        window = self._window
        window[key] = size
        self._newest = key
        wbytes = self._wbytes + size
        if len(window) > self._wmax_items or (wbytes > self._wmax_bytes and len(window) > 1):
            # commonly over by this one key: move the oldest to probation inline
            first, first_size = window.popitem(last=False)
            self._wbytes = wbytes - first_size
            self._probation[first] = first_size
            self._candidate = first
            if len(window) > 1 and (
                len(window) > self._wmax_items or self._wbytes > self._wmax_bytes
            ):
                self._spill()
        else:
            self._wbytes = wbytes
            self._candidate = None
        self._requests += 1
        if self._requests >= self._checkpoint:
            self._maintain()

    def on_update(self, key: str, size: int) -> None:
        # a rewrite makes the key recent (as LRU) but is not a use: the
        # sketch counts reads and first writes only
        if self._buffer:
            self._drain()
        self._newest = key
        self._candidate = None
        self._more = []
        window = self._window
        old = window.get(key)
        if old is not None:
            window[key] = size
            window.move_to_end(key)
            self._wbytes += size - old
            return
        protected = self._protected
        old = protected.get(key)
        if old is not None:
            protected[key] = size
            protected.move_to_end(key)
            self._qbytes += size - old
            if size > old and self._qbytes > self._qmax_bytes:
                self._demote()
        else:
            del self._probation[key]
            self._probation[key] = size

    def on_remove(self, key: str) -> None:
        size = self._probation.pop(key, None)
        if size is not None:
            return
        size = self._window.pop(key, None)
        if size is not None:
            self._wbytes -= size
            return
        size = self._protected.pop(key, None)
        if size is not None:
            self._qbytes -= size

    def victim(self) -> str:
        """The key to evict next: the loser of a candidate/victim contest, or whoever is left.

        Called by the layer while the cache is over a bound, after the write
        that overflowed it; each call's answer is evicted before the next.
        """
        candidate = self._candidate
        if candidate is not None:  # the common case: one candidate against probation's oldest
            self._candidate = None  # each candidate competes once
            victim = next(iter(self._probation))
            if victim not in (candidate, self._newest):
                return victim if self._admit(candidate, victim) else candidate
            self._candidate = candidate
        return self._victim()

    def _victim(self) -> str:
        """:meth:`victim` in general: any number of candidates, any region empty."""
        probation = self._probation
        newest = self._newest
        victim = _first(probation, newest)
        candidate = self._candidate
        if candidate is not None:
            self._candidate = None
            if candidate == victim:
                candidate = self._next_candidate(victim)
        else:
            candidate = self._next_candidate(victim)
        if victim is None:
            if candidate is not None:
                return candidate
            found = _first(self._protected, newest)
            if found is None:
                found = _first(self._window, newest)
            if found is None:
                raise LookupError("no key to evict")  # the layer's bounds prevent this
            return found
        if candidate is None:
            return victim
        return victim if self._admit(candidate, victim) else candidate

    def _next_candidate(self, victim: str | None) -> str | None:
        """The next key moved out of the window by this write, else the window's oldest."""
        more = self._more if self._more_for == self._newest else []
        probation = self._probation
        while more:
            c = more.pop(0)
            if c != victim and c in probation:
                return c
        return _first(self._window, self._newest)

    def _admit(self, candidate: str, victim: str) -> bool:
        """Whether ``candidate`` displaces ``victim``: strictly more frequent (a tie keeps it)."""
        # FrequencySketch.frequency twice, inlined (this runs on every eviction)
        sketch = self.sketch
        t = sketch._table
        m = sketch._mask
        row = sketch._row
        h = hash(candidate)
        a = t[h & m]
        b = t[((h >> 32) & m) | row]
        h = hash(victim)
        c = t[h & m]
        d = t[((h >> 32) & m) | row]
        return (a if a < b else b) > (c if c < d else d)

    def clear(self) -> None:
        """Forget every key; the frequency history is kept (hot keys come back first)."""
        self._window.clear()
        self._probation.clear()
        self._protected.clear()
        self._buffer.clear()
        self._wbytes = self._qbytes = 0
        self._candidate = None
        self._more = []
        self._newest = None

    # -- maintenance (caller holds the cache lock) -------------------------------------

    def _drain(self) -> None:
        """Apply the hits recorded since the last write."""
        buffer = self._buffer
        popleft = buffer.popleft
        sketch = self.sketch
        t = sketch._table
        m = sketch._mask
        row = sketch._row
        inc = _INCREMENT
        window = self._window
        probation = self._probation
        protected = self._protected
        hits = 0
        promoted = False
        # len() once: hits appended meanwhile wait for the next write, and
        # pops never outnumber what was there (appends to a full deque drop
        # from the left, but never shorten it)
        for _ in range(len(buffer)):
            key = popleft()
            if key in protected:  # most hits land in the largest region
                protected.move_to_end(key)
            elif key in window:
                window.move_to_end(key)
            else:
                size = probation.pop(key, None)
                if size is None:
                    continue  # removed since the hit
                protected[key] = size
                self._qbytes += size
                promoted = True
            # sketch.increment(key), inlined
            h = hash(key)
            i = h & m
            t[i] = inc[t[i]]
            i = ((h >> 32) & m) | row
            t[i] = inc[t[i]]
            hits += 1
        self._hits += hits
        self._requests += hits
        if self._requests >= self._checkpoint:
            self._maintain()
        if promoted and (len(protected) > self._qmax_items or self._qbytes > self._qmax_bytes):
            self._demote()

    def _spill(self) -> None:
        """Move the window's overflow to probation's end, as this write's candidates."""
        window = self._window
        probation = self._probation
        more: list[str] = []
        self._more = more
        self._more_for = self._newest
        for _ in range(_TRANSFER_LIMIT):
            if len(window) <= 1 or (
                len(window) <= self._wmax_items and self._wbytes <= self._wmax_bytes
            ):
                break
            key, size = window.popitem(last=False)
            self._wbytes -= size
            probation[key] = size
            if self._candidate is None:
                self._candidate = key
            else:
                more.append(key)

    def _demote(self) -> None:
        """Move protected's overflow to probation's end."""
        protected = self._protected
        probation = self._probation
        for _ in range(_TRANSFER_LIMIT):
            if not protected or (
                len(protected) <= self._qmax_items and self._qbytes <= self._qmax_bytes
            ):
                break
            key, size = protected.popitem(last=False)
            self._qbytes -= size
            probation[key] = size

    def _maintain(self) -> None:
        """Every few thousand requests: age the sketch, step the hill climber, grow the sketch."""
        if self._requests >= self._age_at:
            self.sketch.age()
            if self._requests >= self._sample:
                if self._climb:
                    self._adapt()
                self._hits = self._requests = 0
                self._age_at = self._sample // 2
            else:
                self._age_at = self._sample
        checkpoint = self._age_at
        sketch = self.sketch
        if sketch.capacity < self._max_items:
            n = len(self._window) + len(self._probation) + len(self._protected)
            if n > sketch.capacity:
                sketch.ensure_capacity(min(n, self._max_items))
                self._sample = sketch.sample_size
            # n grows by one per insert at most: no need to look before
            checkpoint = min(checkpoint, self._requests + sketch.capacity - n + 1)
        self._checkpoint = checkpoint

    def _adapt(self) -> None:
        """One hill-climber step: move the window's share towards a better hit rate."""
        rate = self._hits / self._requests
        change = rate - self._prev_rate
        amount = self._adjust_step if change >= 0 else -self._adjust_step
        if abs(change) >= CLIMB_RESTART:
            self._adjust_step = CLIMB_STEP if amount >= 0 else -CLIMB_STEP
        else:
            self._adjust_step = CLIMB_DECAY * amount
        self._prev_rate = rate
        limit = PROTECTED_SHARE * (1.0 - WINDOW_SHARE) + WINDOW_SHARE
        share = min(max(self._share + amount, 0.0), limit)
        if share == self._share:
            return
        grow = share > self._share
        self._resize(share)
        if grow:
            self._refill_window()
        else:
            self._spill()
            # moved by a resize, not by a write: no contest
            self._candidate = None
            self._more = []
        self._demote()

    def _refill_window(self) -> None:
        """After the window grew: move main's least recent keys into it, up to its share."""
        window = self._window
        for _ in range(_TRANSFER_LIMIT):
            source = self._probation or self._protected
            if not source:
                break
            key = next(iter(source))
            size = source[key]
            if len(window) + 1 > self._wmax_items or self._wbytes + size > self._wmax_bytes:
                break
            del source[key]
            if source is self._protected:
                self._qbytes -= size
            window[key] = size
            self._wbytes += size

    def __len__(self) -> int:
        return len(self._window) + len(self._probation) + len(self._protected)

    def __repr__(self) -> str:
        return (
            f"TinyLFUPolicy(window={len(self._window)}, probation={len(self._probation)}, "
            f"protected={len(self._protected)}, window_share={self._share:.3f})"
        )


def _first(queue: OrderedDict[str, int], skip: str | None) -> str | None:
    """The least recent key of ``queue`` other than ``skip``, or None."""
    for key in queue:
        if key != skip:
            return key
    return None
