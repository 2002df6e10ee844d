"""The Redis L2 without I/O: key layout, scripts, command plans, reply parsing.

Theory of operation
-------------------

*Keys.* Everything lives under the cache's namespace ``ns`` and has a TTL:

=================================  ============================================
``ns:v:{key}``                     the value: an envelope (``_envelope.py``)
                                   with ``PX`` = its TTL (``redis_ttl`` for an
                                   infinite one)
``ns:t:{tag}``                     the tag's members: a sorted set of value
                                   keys scored by their expiry (server ms)
``ns:t:{tag}:drain``               a tag being invalidated (same slot)
``ns:l:{key}``                     the distributed single-flight lock of
                                   ``key`` (same slot as its value)
``ns:invalidate`` (a channel)      cross-process invalidation (``_bus.py``)
=================================  ============================================

The braces are Redis Cluster hash tags: a value key hashes only the user's
key, so values spread over the cluster; every command and script below
touches keys of one slot (batches of keys are grouped by slot first).

*Plans.* Each operation is a generator that yields :class:`Batch` es -- the
commands of one round trip, pipelined -- and receives their replies (errors
in place), or yields :data:`PRIMARIES` to be told the cluster's primary
nodes. The sync and async backends (``_redis_backend.py``) only run batches;
every decision is here, once.

*Tags.* A tag's sorted set scores each member by the expiry of the value it
was added with (``TIME`` + TTL, in the script), so the set's own TTL is set to
its highest score -- never shorter than its longest-lived member (cashews
overwrites a set's TTL with the latest member's) -- and members whose values
have expired are trimmed on every add, so a hot tag's set holds live keys
only. A write runs a script that reads the *old* value's tags from its
envelope before replacing it; the client then removes the key from tags it no
longer carries (a second round trip, only when the tags changed).
Invalidating a tag moves its set to a drain key (``RENAME``, or a merge when
another invalidation is draining), then drains it in batches of
``batch_size`` (default 500) members, one round trip each: on a single server
a script pops a batch and ``UNLINK`` s it in place; on a cluster (whose
members live in other slots) a batch is popped and ``UNLINK`` ed, per slot,
with the next round trip. Redis is never busy for long (one batch), concurrent
invalidations share the work, and one that dies half way is finished by the
next. A key removed by a bulk invalidation
may stay listed in its *other* tags until they expire: a later tag
invalidation can then also drop a key rewritten without that tag -- a cache
may always drop more, never less.

*Failures.* An operation that fails part way (the connection, the breaker,
an ``OOM`` reply) must not leave Redis holding a value the caller has
replaced or invalidated: a failed write is cleaned up at once by deleting its
keys (``UNLINK`` is allowed at maxmemory), and whatever could not reach Redis
at all is kept in :class:`Pending` and replayed before the next Redis call;
until then the backend does not read from Redis (``_redis_backend.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Final, NamedTuple, TypeVar, cast

from sentia_core._clock import Clock
from sentia_core.errors import BackendError

from ._backend import BackendWrite, StoredBatch, StoredValue
from ._bus import Bus, NoticeKind
from ._envelope import HEAD, HEADER_SIZE, MAGIC, decode, decode_tags, encode, encode_tags
from ._errors import CorruptPayloadError, PayloadError
from ._glob import escape_glob

__all__ = [
    "PRIMARIES",
    "Batch",
    "L2WriteError",
    "Pending",
    "Plan",
    "Step",
    "payload_digest",
]

T = TypeVar("T")


#: replays in a row failing for a data reason before the journal drops them
MAX_REPLAY_TRIES = 3

#: value keys remembered (the encoding of a hot key is built once)
VKEY_CACHE = 8192


class Batch(NamedTuple):
    """The commands of one round trip (pipelined), optionally pinned to a cluster node."""

    commands: list[tuple[Any, ...]]
    node: Any = None


class _Primaries:
    __slots__ = ()

    def __repr__(self) -> str:
        return "PRIMARIES"


#: Yielded by a plan to be sent the list of primary nodes (``[None]`` off-cluster).
PRIMARIES: Final = _Primaries()

Step = Batch | _Primaries
Plan_ = Generator[Step, Any, T]


class L2WriteError(BackendError):
    """Redis refused part of a write (e.g. ``OOM``); the keys involved were removed."""


# -- scripts (each touches the keys of one slot) --------------------------------
#
# A key of ours holding another type (a list at a value key, a string at a tag
# key: someone else's data, or a bug elsewhere) is corrupt data about that one
# key, never an outage: every script checks the type first, removes a foreign
# value (``_FOREIGN``) and goes on, and says so by returning ``REPAIRED`` (or a
# flag) so that the client counts it (``RedisStats.corrupt_keys``).

#: A script's reply meaning "a foreign value was removed from the key".
REPAIRED = -1

_FOREIGN = """
local function foreign(k, want)
  local t = redis.call('TYPE', k)['ok']
  if t ~= 'none' and t ~= want then redis.call('UNLINK', k) return true end
  return false
end
"""

#: Replace a value; return the old value's tags region ('' none), or nil if absent.
SET_SCRIPT = (
    _FOREIGN
    + """
if foreign(KEYS[1], 'string') then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return -1
end
local h = redis.call('GETRANGE', KEYS[1], 0, 10)
local old = false
if string.len(h) == 11 and string.byte(h, 1) == 229 then
  local n = string.byte(h, 10) * 256 + string.byte(h, 11)
  if n > 0 then old = redis.call('GETRANGE', KEYS[1], 11, 10 + n) else old = '' end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return old
"""
)

#: Delete a value; return its tags region ('' none), or nil if it was absent.
DEL_SCRIPT = (
    _FOREIGN
    + """
if foreign(KEYS[1], 'string') then return -1 end
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local h = redis.call('GETRANGE', KEYS[1], 0, 10)
local old = ''
if string.len(h) == 11 and string.byte(h, 1) == 229 then
  local n = string.byte(h, 10) * 256 + string.byte(h, 11)
  if n > 0 then old = redis.call('GETRANGE', KEYS[1], 11, 10 + n) end
end
redis.call('UNLINK', KEYS[1])
return old
"""
)

#: Add members (ARGV[2..]) expiring in ARGV[1] ms; trim expired ones; TTL = max score.
TAG_SCRIPT = (
    _FOREIGN
    + """
local fixed = foreign(KEYS[1], 'zset')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local exp = now + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], exp, ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] then redis.call('PEXPIREAT', KEYS[1], math.floor(tonumber(top[2])) + 1000) end
if fixed then return -1 end
return 1
"""
)

#: Move a tag's set into its drain key (merging with a drain in progress);
#: returns {its size, foreign values removed}.
MOVE_SCRIPT = (
    _FOREIGN
    + """
local fixed = 0
if foreign(KEYS[1], 'zset') then fixed = fixed + 1 end
if foreign(KEYS[2], 'zset') then fixed = fixed + 1 end
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('EXISTS', KEYS[2]) == 0 then
    redis.call('RENAME', KEYS[1], KEYS[2])
  else
    local a = redis.call('PTTL', KEYS[1])
    local b = redis.call('PTTL', KEYS[2])
    redis.call('ZUNIONSTORE', KEYS[2], 2, KEYS[2], KEYS[1], 'AGGREGATE', 'MAX')
    redis.call('DEL', KEYS[1])
    local ttl = math.max(a, b)
    if ttl <= 0 then ttl = 86400000 end
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
end
return {redis.call('ZCARD', KEYS[2]), fixed}
"""
)

#: Pop up to ARGV[1] members of a drain key.
POP_SCRIPT = (
    _FOREIGN
    + """
if foreign(KEYS[1], 'zset') then return {} end
local m = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #m > 0 then redis.call('ZREM', KEYS[1], unpack(m)) end
return m
"""
)

#: Standalone Redis only: pop up to ARGV[1] members of a drain key and UNLINK
#: them right there (no round trip of the names); returns {popped, unlinked}.
#: A cluster cannot: the members live in other slots (it pops, then unlinks).
DRAIN_SCRIPT = (
    _FOREIGN
    + """
if foreign(KEYS[1], 'zset') then return {0, 0} end
local m = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #m == 0 then return {0, 0} end
redis.call('ZREM', KEYS[1], unpack(m))
return {#m, redis.call('UNLINK', unpack(m))}
"""
)

#: UNLINK the value keys (KEYS) whose envelope lists one of the tags (ARGV):
#: the fallback of a tag whose set was found foreign (its members are lost, so
#: the values carrying it are found by their own tags); returns how many.
TAGGED_SCRIPT = """
local wanted = {}
for i = 1, #ARGV do wanted[ARGV[i]] = true end
local n = 0
for _, k in ipairs(KEYS) do
  if redis.call('TYPE', k)['ok'] == 'string' then
    local h = redis.call('GETRANGE', k, 0, 10)
    if string.len(h) == 11 and string.byte(h, 1) == 229 then
      local size = string.byte(h, 10) * 256 + string.byte(h, 11)
      local r = ''
      if size > 0 then r = redis.call('GETRANGE', k, 11, 10 + size) end
      local i = 1
      while i + 1 <= string.len(r) do
        local m = string.byte(r, i) * 256 + string.byte(r, i + 1)
        if wanted[string.sub(r, i + 2, i + 1 + m)] then
          n = n + redis.call('UNLINK', k)
          break
        end
        i = i + 2 + m
      end
    end
  end
end
return n
"""

#: Compare-and-delete: UNLINK the key only if it still holds exactly ARGV[1].
CAS_DEL_SCRIPT = """
if redis.call('TYPE', KEYS[1])['ok'] ~= 'string' then return 0 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('UNLINK', KEYS[1]) end
return 0
"""

#: Take a load lock for ARGV[2] ms: 1 taken, 0 held by someone, -1 taken after
#: removing a foreign value (another type, or a string without a TTL: every
#: lock of ours has one, so it would otherwise be held forever).
LOCK_SCRIPT = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('TYPE', KEYS[1])['ok'] == 'string' and redis.call('PTTL', KEYS[1]) >= 0 then
  return 0
end
redis.call('UNLINK', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return -1
"""

#: Release a lock only if it still holds our token.
RELEASE_SCRIPT = """
if redis.call('TYPE', KEYS[1])['ok'] ~= 'string' then return 0 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _enc(s: str) -> bytes:
    return s.encode("utf-8", "surrogatepass")


def _dec(b: bytes) -> str:
    return b.decode("utf-8", "surrogatepass")


def is_wrong_type(error: BaseException) -> bool:
    """Whether ``error`` is Redis's ``WRONGTYPE`` reply (data, not an outage)."""
    return isinstance(error, Exception) and str(error).startswith("WRONGTYPE")


def is_data_error(error: BaseException) -> bool:
    """Whether ``error`` (or what it wraps) is an error reply about the data
    (``WRONGTYPE``, ``ERR ...``): retrying will not help, unlike a connection
    error, ``OOM``, ``BUSY``, ``LOADING`` or a cluster redirection.

    redis-py strips the reply's code and raises a subclass for every code it
    knows (``OutOfMemoryError``, ``ReadOnlyError``...): what is left as a plain
    ``ResponseError`` is an ``ERR`` or ``WRONGTYPE`` reply.
    """
    from redis.exceptions import ResponseError

    seen: BaseException | None = error
    for _ in range(4):
        if seen is None:
            return False
        if type(seen) is ResponseError:
            return not str(seen).startswith("OOM")
        seen = seen.__cause__
    return False


def is_oom(error: BaseException) -> bool:
    """Whether ``error`` is Redis's ``OOM`` reply (maxmemory reached)."""
    from redis.exceptions import OutOfMemoryError

    return isinstance(error, OutOfMemoryError) or (
        isinstance(error, Exception) and str(error).startswith("OOM")
    )


def _is_error(reply: object) -> bool:
    return isinstance(reply, BaseException)


def _first_error(replies: Iterable[object]) -> BaseException | None:
    for r in replies:
        if isinstance(r, BaseException):
            return r
    return None


# -- the journal of invalidations that could not reach Redis ----------------------


@dataclass
class _Snapshot:
    keys: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)
    patterns: set[str] = field(default_factory=set)
    clear: bool = False

    def __bool__(self) -> bool:
        return self.clear or bool(self.keys or self.tags or self.patterns)


class Pending:
    """Invalidations (and failed writes, as deletes) waiting to be replayed.

    Bounded: past ``limit`` items it collapses into one ``clear`` of the
    namespace, which subsumes everything (correct, if heavy).
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._limit = limit
        self._snap = _Snapshot()
        #: True while non-empty (read without the lock on every Redis call)
        self.waiting = False
        #: replays in a row that failed for a data reason
        self.tries = 0
        #: items given up after MAX_REPLAY_TRIES such failures
        self.dropped = 0

    def give_up(self, snap: _Snapshot, error: BaseException) -> bool:
        """After a failed replay of ``snap``: whether to drop it for good.

        Only a failure for a data reason (an error reply such as
        ``WRONGTYPE``, never a connection error nor ``OOM``) counts, and only
        :data:`MAX_REPLAY_TRIES` in a row drop it: an item no replay can ever
        complete must not keep the cache degraded forever.
        """
        if not is_data_error(error):
            return False
        with self._lock:
            self.tries += 1
            if self.tries < MAX_REPLAY_TRIES:
                return False
            self.tries = 0
            self.dropped += int(snap.clear) + len(snap.keys) + len(snap.tags) + len(snap.patterns)
            return True

    def add(self, kind: NoticeKind, items: Iterable[str]) -> None:
        """Remember an invalidation of ``kind`` that did not (surely) reach Redis."""
        with self._lock:
            snap = self._snap
            if not snap.clear:
                if kind == "keys":
                    snap.keys.update(items)
                elif kind == "tags":
                    snap.tags.update(items)
                elif kind == "pattern":
                    snap.patterns.update(items)
                else:
                    snap.clear = True
                if len(snap.keys) + len(snap.tags) + len(snap.patterns) > self._limit:
                    snap.clear = True
                if snap.clear:
                    snap.keys.clear()
                    snap.tags.clear()
                    snap.patterns.clear()
            self.waiting = bool(snap)

    def take(self) -> _Snapshot | None:
        """Everything pending (now owned by the caller), or None."""
        with self._lock:
            snap = self._snap
            if not snap:
                return None
            self._snap = _Snapshot()
            self.waiting = False
            return snap

    def restore(self, snap: _Snapshot) -> None:
        """Put back what a failed replay took."""
        if snap.clear:
            self.add("clear", ())
            return
        self.add("keys", snap.keys)
        self.add("tags", snap.tags)
        self.add("pattern", snap.patterns)

    def size(self) -> int:
        """Items waiting (a pending clear counts as one)."""
        with self._lock:
            s = self._snap
            return int(s.clear) + len(s.keys) + len(s.tags) + len(s.patterns)


# -- the plan ------------------------------------------------------------------------


class Plan:
    """Key layout, command plans and reply parsing of one namespace's L2.

    Keys, tags and patterns arrive *qualified* (``"ns:key"``, the
    :class:`CacheBackend` contract) and are mapped onto the layout above.

    Args:
        namespace: the cache's namespace.
        cluster: group multi-key commands by slot and walk every primary.
        clock: the cache's clock; ``time()`` stamps envelope deadlines.
        redis_ttl: seconds an entry written with an infinite TTL lives in Redis.
        bus: publishes invalidation messages (None: publish nothing).
        batch_size: keys per ``UNLINK`` / members per pop when invalidating.
        scan_count: the ``COUNT`` hint of each ``SCAN``.
        pending_limit: invalidations remembered while Redis is unreachable.
    """

    def __init__(
        self,
        namespace: str,
        *,
        cluster: bool,
        clock: Clock,
        redis_ttl: float,
        bus: Bus | None,
        batch_size: int = 500,
        scan_count: int = 1000,
        pending_limit: int = 10_000,
    ) -> None:
        self.namespace = namespace
        self.cluster = cluster
        self.clock = clock
        self.redis_ttl = redis_ttl
        self.bus = bus
        self.batch_size = batch_size
        self.scan_count = scan_count
        self.pending = Pending(pending_limit)
        #: foreign values found under keys of ours (removed, or read as a miss)
        self.corrupt_keys = 0
        self._qlen = len(namespace) + 1
        self._vprefix = _enc(f"{namespace}:v:{{")
        self._vplen = len(self._vprefix)
        self._tprefix = _enc(f"{namespace}:t:{{")
        self._lprefix = _enc(f"{namespace}:l:{{")
        self.channel = _enc(f"{namespace}:invalidate")
        self._qtag = namespace + ":"
        #: qualified key -> value key, for the hot keys (cleared when full)
        self._vkeys: dict[str, bytes] = {}
        self._qpattern = escape_glob(namespace) + ":"
        self._slot: Callable[[bytes], int] | None = None
        if cluster:
            from redis.crc import key_slot

            self._slot = key_slot

    # -- layout ---------------------------------------------------------------------

    def value_key(self, qkey: str) -> bytes:
        """``ns:v:{key}`` for the qualified ``ns:key`` (memoized: hot keys repeat)."""
        vk = self._vkeys.get(qkey)
        if vk is None:
            vk = self._vprefix + _enc(qkey[self._qlen :]) + b"}"
            if len(self._vkeys) >= VKEY_CACHE:
                self._vkeys.clear()
            self._vkeys[qkey] = vk
        return vk

    def lock_key(self, qkey: str) -> bytes:
        """``ns:l:{key}`` (same slot as the value)."""
        return self._lprefix + _enc(qkey[self._qlen :]) + b"}"

    def tag_key(self, tag: str) -> bytes:
        """``ns:t:{tag}`` for an unqualified tag."""
        return self._tprefix + _enc(tag) + b"}"

    def _user_key(self, vkey: bytes) -> str:
        return _dec(vkey[self._vplen : -1])

    def _px(self, ttl: float) -> int:
        if math.isinf(ttl):
            ttl = self.redis_ttl
        return max(1, math.ceil(ttl * 1000))

    def _publish(self, kind: NoticeKind, targets: tuple[str, ...]) -> list[tuple[Any, ...]]:
        bus = self.bus
        if bus is None:
            return []
        return [("PUBLISH", self.channel, bus.message(kind, targets, self.clock.time()))]

    def _by_slot(self, keys: Sequence[bytes]) -> list[list[bytes]]:
        slot = self._slot
        if slot is None:
            return [list(keys)] if keys else []
        groups: dict[int, list[bytes]] = {}
        for k in keys:
            groups.setdefault(slot(k), []).append(k)
        return list(groups.values())

    def _unlinks(self, keys: Sequence[bytes]) -> list[tuple[Any, ...]]:
        cmds: list[tuple[Any, ...]] = []
        size = self.batch_size
        for group in self._by_slot(keys):
            for i in range(0, len(group), size):
                cmds.append(("UNLINK", *group[i : i + size]))
        return cmds

    # -- reads ----------------------------------------------------------------------

    def stored(self, raw: object, wall: float | None = None) -> StoredValue | None:
        """A ``GET`` reply as a :class:`StoredValue` (None: absent or expired).

        ``wall`` is the cache clock's ``time()`` (read here if not given). A
        reply that is not an envelope becomes a StoredValue carrying the
        error, which the cache counts as corrupt.
        """
        if raw is None:
            return None
        if raw.__class__ is not bytes:
            return StoredValue(b"", 0.0, (), _not_bytes(raw))
        if len(raw) >= HEADER_SIZE:  # the common envelope (no tags), inline
            magic, deadline, n = HEAD.unpack_from(raw)
            if magic == MAGIC and n == 0:
                ttl = deadline / 1000.0 - (self.clock.time() if wall is None else wall)
                if ttl <= 0:
                    return None
                return tuple.__new__(StoredValue, (raw[HEADER_SIZE:], ttl, (), None))
        try:
            deadline, region, payload = decode(raw)
            ttl = deadline / 1000.0 - (self.clock.time() if wall is None else wall)
            if ttl <= 0:
                return None
            if region:
                q = self._qtag
                return StoredValue(payload, ttl, tuple(q + t for t in decode_tags(region)))
            return StoredValue(payload, ttl)
        except PayloadError as exc:
            return StoredValue(b"", 0.0, (), exc)

    def get_many(self, qkeys: Sequence[str]) -> Plan_[Sequence[StoredValue | None]]:
        """One ``MGET`` (one per slot on a cluster) for ``qkeys``."""
        known = self._vkeys.get
        value_key = self.value_key
        vkeys = [known(k) or value_key(k) for k in qkeys]
        if self._slot is None:
            (reply,) = yield Batch([("MGET", *vkeys)])
            if _is_error(reply):
                raise reply
            return self._stored_many(reply)
        groups = self._by_slot(vkeys)
        replies = yield Batch([("MGET", *g) for g in groups])
        found: dict[bytes, object] = {}
        for group, reply in zip(groups, replies, strict=True):
            if _is_error(reply):
                raise reply
            found.update(zip(group, reply, strict=True))
        return self._stored_many([found[k] for k in vkeys])

    def _stored_many(self, replies: Sequence[object]) -> Sequence[StoredValue | None]:
        """:meth:`stored` for an ``MGET`` reply.

        This runs once per key of a batch read, so the common batch -- every
        key present, unexpired, untagged -- is checked with C-level ``map``
        calls and returned as a :class:`StoredBatch` (decoded in one pass by
        the cache); anything else goes key by key.
        """
        wall_ms = self.clock.time() * 1000.0
        if replies and None not in replies:
            try:
                heads = list(map(HEAD.unpack_from, replies))  # type: ignore[arg-type]
            except Exception:  # something not an envelope: key by key
                heads = []
            if (
                heads
                and min(map(_MAGIC, heads)) == MAGIC == max(map(_MAGIC, heads))
                and max(map(_TAGS_LEN, heads)) == 0
            ):
                deadlines = list(map(_DEADLINE, heads))
                if min(deadlines) > wall_ms:
                    raws = cast(list[bytes], replies)
                    return StoredBatch(raws, deadlines, wall_ms, 0.001, HEADER_SIZE)
        wall = wall_ms / 1000.0
        stored = self.stored
        return [None if raw is None else stored(raw, wall) for raw in replies]

    # -- writes ---------------------------------------------------------------------

    def set_many(self, writes: Sequence[BackendWrite]) -> Plan_[None]:
        """Write values, tag bookkeeping and the announcement in one round trip.

        Raises:
            L2WriteError: Redis refused part of it (the keys involved were removed).
        """
        ql = self._qlen
        wall_ms = round(self.clock.time() * 1000)
        cmds: list[tuple[Any, ...]] = []
        vkeys: list[bytes] = []
        users: list[str] = []
        new_tags: list[frozenset[str]] = []
        members: dict[str, tuple[list[bytes], int]] = {}
        for w in writes:
            user = w.key[ql:]
            vk = self._vprefix + _enc(user) + b"}"
            tags = tuple(t[ql:] for t in w.tags)
            px = self._px(w.ttl)
            region = encode_tags(tags) if tags else b""
            cmds.append(("EVAL", SET_SCRIPT, 1, vk, encode(w.payload, wall_ms + px, region), px))
            vkeys.append(vk)
            users.append(user)
            new_tags.append(frozenset(tags))
            for tag in tags:
                found = members.get(tag)
                if found is None:
                    members[tag] = ([vk], px)
                else:
                    found[0].append(vk)
                    if px > found[1]:
                        members[tag] = (found[0], px)
        tag_cmds = [
            ("EVAL", TAG_SCRIPT, 1, self.tag_key(tag), px, *ms) for tag, (ms, px) in members.items()
        ]
        announce = tuple(users)
        try:
            replies = yield Batch(cmds + tag_cmds + self._publish("keys", announce))
        except BaseException:
            self.pending.add("keys", users)
            raise
        n = len(writes)
        failed: dict[bytes, str] = {}
        error: BaseException | None = None
        stale: dict[str, list[bytes]] = {}
        for i in range(n):
            reply = replies[i]
            if _is_error(reply):
                failed[vkeys[i]] = users[i]
                error = error or reply
            elif reply == REPAIRED:
                self.corrupt_keys += 1
            elif reply:
                try:
                    old = decode_tags(reply)
                except PayloadError:
                    continue
                for tag in old:
                    if tag not in new_tags[i]:
                        stale.setdefault(tag, []).append(vkeys[i])
        for j, (_, (ms, _)) in enumerate(members.items()):
            reply = replies[n + j]
            if _is_error(reply):
                error = error or reply
                for vk in ms:
                    failed[vk] = self._user_key(vk)
            elif reply == REPAIRED:
                self.corrupt_keys += 1
        published = len(replies) == n + len(members) or not _is_error(replies[-1])
        if not (failed or stale or not published):
            return
        unlinks = self._unlinks(list(failed))
        follow = unlinks + [("ZREM", self.tag_key(tag), *vks) for tag, vks in stale.items()]
        if failed or not published:
            follow += self._publish("keys", tuple(failed.values()) if published else announce)
        try:
            replies2 = yield Batch(follow)
        except BaseException:
            self.pending.add("keys", failed.values())
            raise
        if _first_error(replies2[: len(unlinks)]) is not None:
            self.pending.add("keys", failed.values())
        if error is not None:
            raise L2WriteError(f"Redis refused a write: {error}") from error

    def delete_many(self, qkeys: Sequence[str], *, record: bool = True) -> Plan_[int]:
        """Delete values (taking them out of their tags); returns how many existed."""
        ql = self._qlen
        users = [k[ql:] for k in qkeys]
        vkeys = [self._vprefix + _enc(u) + b"}" for u in users]
        cmds: list[tuple[Any, ...]] = [("EVAL", DEL_SCRIPT, 1, vk) for vk in vkeys]
        try:
            replies = yield Batch(cmds + self._publish("keys", tuple(users)))
        except BaseException:
            if record:
                self.pending.add("keys", users)
            raise
        existed = 0
        stale: dict[str, list[bytes]] = {}
        error: BaseException | None = None
        for vk, user, reply in zip(vkeys, users, replies, strict=False):
            if _is_error(reply):
                error = error or reply
                if record:
                    self.pending.add("keys", (user,))
                continue
            if reply is None:
                continue
            if reply == REPAIRED:  # a foreign value, removed: not an entry of ours
                self.corrupt_keys += 1
                continue
            existed += 1
            if reply:
                try:
                    for tag in decode_tags(reply):
                        stale.setdefault(tag, []).append(vk)
                except PayloadError:
                    pass
        if stale:
            # only over-invalidation is at stake if this fails: ignore its errors
            with contextlib.suppress(Exception):
                yield Batch([("ZREM", self.tag_key(t), *vks) for t, vks in stale.items()])
        if error is not None:
            raise L2WriteError(f"Redis refused a delete: {error}") from error
        return existed

    def unfill(self, fills: Sequence[tuple[str, str]]) -> Plan_[int]:
        """Take back loaded values an invalidation raced: each qualified key is
        deleted only if Redis still holds the payload with that digest -- read,
        compared here, then deleted by a compare-and-delete script, so a newer
        write by anyone is never lost -- and the deletions are announced."""
        ql = self._qlen
        users = [k[ql:] for k, _ in fills]
        vkeys = [self.value_key(k) for k, _ in fills]
        try:
            replies = yield Batch([("GET", vk) for vk in vkeys])
            cas: list[tuple[Any, ...]] = []
            gone: list[str] = []
            for user, vk, (_, digest), raw in zip(users, vkeys, fills, replies, strict=True):
                if raw.__class__ is not bytes:
                    continue
                try:
                    _, _, payload = decode(raw)
                except PayloadError:
                    continue
                if payload_digest(payload) == digest:
                    cas.append(("EVAL", CAS_DEL_SCRIPT, 1, vk, raw))
                    gone.append(user)
            if not cas:
                return 0
            replies = yield Batch(cas + self._publish("keys", tuple(gone)))
        except BaseException:
            self.pending.add("keys", users)  # unsure: delete them for good later
            raise
        return sum(1 for r in replies[: len(cas)] if r == 1)

    # -- bulk invalidation ----------------------------------------------------------

    def invalidate_tags(self, qtags: Sequence[str], *, record: bool = True) -> Plan_[int]:
        """Delete every value carrying one of the tags, in batches; returns how many."""
        ql = self._qlen
        tags = [t[ql:] for t in qtags]
        try:
            return (yield from self._drain_tags(tags))
        except BaseException:
            if record:
                self.pending.add("tags", tags)
            raise

    def _drain_tags(self, tags: list[str]) -> Plan_[int]:
        moves: list[tuple[Any, ...]] = []
        drains: list[bytes] = []
        for tag in tags:
            tk = self.tag_key(tag)
            dk = tk + b":drain"
            moves.append(("EVAL", MOVE_SCRIPT, 2, tk, dk))
            drains.append(dk)
        replies = yield Batch(moves)
        err = _first_error(replies)
        if err is not None:
            raise err
        # drain key -> members left (as of the move; another invalidation of the
        # same tag may pop some of them too, never add to a drain it is not in)
        live: dict[bytes, int] = {}
        lost: list[str] = []  # tags whose set was foreign: their members are unknown
        for tag, dk, (card, fixed) in zip(tags, drains, replies, strict=True):
            self.corrupt_keys += int(fixed)
            if fixed:
                lost.append(tag)
            if card:
                live[dk] = int(card)
        size = self.batch_size
        count = (yield from self._scan_tagged(lost)) if lost else 0
        if self._slot is None:  # one server: drain and delete inside Redis
            while live:
                replies = yield Batch([("EVAL", DRAIN_SCRIPT, 1, dk, size) for dk in live])
                err = _first_error(replies)
                if err is not None:
                    raise err
                still: dict[bytes, int] = {}
                for (dk, left), (popped, unlinked) in zip(live.items(), replies, strict=True):
                    count += unlinked
                    if popped >= size and left > popped:
                        still[dk] = left - popped
                live = still
            announce = self._publish("tags", tuple(tags))
            if announce:
                yield Batch(announce)
            return count
        doomed: list[bytes] = []
        while live:
            unlinks = self._unlinks(doomed)
            pops = [("EVAL", POP_SCRIPT, 1, dk, size) for dk in live]
            replies = yield Batch(unlinks + pops)
            err = _first_error(replies)
            if err is not None:
                raise err
            count += sum(replies[: len(unlinks)])
            doomed = []
            still = {}
            for (dk, left), popped in zip(live.items(), replies[len(unlinks) :], strict=True):
                doomed.extend(popped)
                if len(popped) >= size and left > len(popped):
                    still[dk] = left - len(popped)
            live = still
        final = self._unlinks(doomed)
        replies = yield Batch(final + self._publish("tags", tuple(tags)))
        err = _first_error(replies[: len(final)])
        if err is not None:
            raise err
        return count + int(sum(replies[: len(final)]))

    def invalidate_pattern(self, qpattern: str, *, record: bool = True) -> Plan_[int]:
        """``SCAN MATCH`` + ``UNLINK`` over every primary; returns how many values."""
        pattern = qpattern[self._qlen_pattern(qpattern) :]
        try:
            n = yield from self._scan_unlink(self._vprefix + _enc(pattern) + b"}")
            announce = self._publish("pattern", (pattern,))
            if announce:
                yield Batch(announce)
        except BaseException:
            if record:
                self.pending.add("pattern", (pattern,))
            raise
        return n

    def _scan_tagged(self, tags: list[str]) -> Plan_[int]:
        """``SCAN`` every value of the namespace and delete those whose envelope
        carries one of ``tags`` (rare: only after a tag set was found foreign)."""
        nodes = (yield PRIMARIES) if self._slot is not None else [None]
        match = _enc(self._qpattern) + b"v:{*"
        wanted = [_enc(t) for t in tags]
        count = 0
        for node in nodes:
            cursor = 0
            while True:
                scan = ("SCAN", cursor, "MATCH", match, "COUNT", self.scan_count)
                (reply,) = yield Batch([scan], node=node)
                if _is_error(reply):
                    raise reply
                cursor, found = _scan_reply(reply)
                groups = self._by_slot(found)
                if groups:
                    cmds = [("EVAL", TAGGED_SCRIPT, len(g), *g, *wanted) for g in groups]
                    replies = yield Batch(cmds)
                    err = _first_error(replies)
                    if err is not None:
                        raise err
                    count += sum(replies)
                if cursor == 0:
                    break
        return count

    def _qlen_pattern(self, qpattern: str) -> int:
        # patterns arrive as escape_glob(namespace) + ":" + pattern
        return len(self._qpattern) if qpattern.startswith(self._qpattern) else 0

    def clear(self, *, record: bool = True) -> Plan_[int]:
        """Delete every key of the namespace (values, tags, drains, locks)."""
        ns = _enc(self.namespace)
        try:
            n = yield from self._scan_unlink(ns + b":[vtl]:{*")
            announce = self._publish("clear", ())
            if announce:
                yield Batch(announce)
        except BaseException:
            if record:
                self.pending.add("clear", ())
            raise
        return n

    def _scan_unlink(self, match: bytes) -> Plan_[int]:
        nodes = (yield PRIMARIES) if self._slot is not None else [None]
        count = 0
        for node in nodes:
            cursor: int = 0
            doomed: list[bytes] = []
            while True:
                scan = ("SCAN", cursor, "MATCH", match, "COUNT", self.scan_count)
                if node is None:  # one server: the UNLINK rides with the next SCAN
                    unlinks = self._unlinks(doomed)
                    replies = yield Batch([*unlinks, scan])
                    err = _first_error(replies)
                    if err is not None:
                        raise err
                    count += sum(replies[:-1])
                    cursor, doomed = _scan_reply(replies[-1])
                else:
                    (reply,) = yield Batch([scan], node=node)
                    if _is_error(reply):
                        raise reply
                    cursor, found = _scan_reply(reply)
                    if found:
                        replies = yield Batch(self._unlinks(found))
                        err = _first_error(replies)
                        if err is not None:
                            raise err
                        count += sum(replies)
                if cursor == 0:
                    break
            if doomed:
                replies = yield Batch(self._unlinks(doomed))
                err = _first_error(replies)
                if err is not None:
                    raise err
                count += sum(replies)
        return count

    # -- the pending journal --------------------------------------------------------

    def replay(self) -> Plan_[list[tuple[NoticeKind, tuple[str, ...]]]]:
        """Replay every pending invalidation; returns what was replayed.

        On failure everything taken is put back (and the error propagates).
        """
        snap = self.pending.take()
        if snap is None:
            return []
        done: list[tuple[NoticeKind, tuple[str, ...]]] = []
        q = self._qtag
        try:
            if snap.clear:
                yield from self.clear(record=False)
                done.append(("clear", ()))
            else:
                if snap.keys:
                    keys = tuple(snap.keys)
                    yield from self.delete_many([q + k for k in keys], record=False)
                    done.append(("keys", keys))
                if snap.tags:
                    tags = tuple(snap.tags)
                    yield from self.invalidate_tags([q + t for t in tags], record=False)
                    done.append(("tags", tags))
                for pattern in snap.patterns:
                    yield from self.invalidate_pattern(self._qpattern + pattern, record=False)
                    done.append(("pattern", (pattern,)))
        except BaseException as exc:
            if self.pending.give_up(snap, exc):
                return done
            self.pending.restore(snap)
            raise
        self.pending.tries = 0
        return done

    # -- distributed single-flight ----------------------------------------------------

    def lock_command(self, qkey: str, token: bytes, ttl: float) -> tuple[Any, ...]:
        """Take ``ns:l:{key}`` for ``ttl`` (``SET NX PX``, repairing a foreign
        value); :meth:`lock_taken` reads the reply."""
        return ("EVAL", LOCK_SCRIPT, 1, self.lock_key(qkey), token, self._px(ttl))

    def lock_taken(self, reply: object) -> bool:
        """Whether :meth:`lock_command`'s reply means the lock is ours (counts repairs)."""
        if reply == REPAIRED:
            self.corrupt_keys += 1
            return True
        return reply == 1

    def wrong_type(self, error: BaseException) -> StoredValue | None:
        """A ``GET`` that failed because the key holds another type: a corrupt
        value (counted by the cache as one, a miss), or None if ``error`` is
        something else (the caller re-raises it)."""
        if not is_wrong_type(error):
            return None
        self.corrupt_keys += 1
        return StoredValue(b"", 0.0, (), CorruptPayloadError(f"not a value of ours: {error}"))

    def unlock_command(self, qkey: str, token: bytes) -> tuple[Any, ...]:
        """Release the lock if it still holds ``token``."""
        return ("EVAL", RELEASE_SCRIPT, 1, self.lock_key(qkey), token)


_MAGIC = itemgetter(0)  # of an envelope header
_DEADLINE = itemgetter(1)
_TAGS_LEN = itemgetter(2)


def payload_digest(payload: bytes) -> str:
    """A fingerprint of a payload (to recognize one's own write in Redis)."""
    return hashlib.sha1(payload, usedforsecurity=False).hexdigest()


def _scan_reply(reply: Any) -> tuple[int, list[bytes]]:
    cursor, keys = reply
    if isinstance(cursor, dict):  # redis-py's cluster SCAN: {node name: cursor}
        cursor = next(iter(cursor.values()), 0)
    return int(cursor), [bytes(k) for k in keys]


def _not_bytes(raw: object) -> PayloadError:
    return CorruptPayloadError(
        f"Redis returned {type(raw).__name__}, not bytes (a client with decode_responses=True?)"
    )
