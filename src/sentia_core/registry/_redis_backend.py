"""The Redis backend: leases in Redis, timed by the Redis server's clock.

Theory of operation. Per service, with every key sharing the hash tag
``{service}`` so that each script touches one Redis Cluster slot::

    <ns>:{svc}:leases     sorted set  instance id -> lease deadline (server ms)
    <ns>:{svc}:i:<id>     hash        the instance's fields
    <ns>:{_index}:services sorted set service -> latest lease deadline (server ms)
    <ns>:changes          pub/sub channel; messages are service names

Every write is one Lua script that reads ``redis.call('TIME')``, so the lease
arithmetic uses the server's clock and client clock skew cannot expire anyone
early. Reads only return leases whose deadline is still ahead; ``sweep``
removes expired leases and their hashes atomically, so several registries can
sweep at once and each dead lease is reported by exactly one of them. Writes
publish the service name from inside the script, so a notification is never
lost between the write and the publish. Keyspace notifications are not used:
they fire late (on access or lazily) and are dropped when a subscriber is
disconnected; the periodic refresh in the registry covers missed pub/sub
messages.

Every key either carries a TTL (hashes and the lease set expire three ttls
after their last write) or is swept (the lease set, the service index).

Anything read back is parsed defensively: a hash that does not parse is
skipped and counted in :attr:`RedisBackend.corrupt_records`, never raised.
A key of ours holding another Redis type (a string where the lease set, an
instance hash or the service index belongs) is corrupt data about that key,
never an outage: every script checks the types of its keys first, a read
skips a foreign instance (counted) and serves the others, and a write removes
the foreign value (``foreign`` below) and goes on, counted as well; a lease
set or index found foreign is deleted, and the registrations it held are
rewritten by their owners' next heartbeat (which then re-registers).
"""

from __future__ import annotations

import inspect
import json
import secrets
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sentia_core._redis import key, make_client
from sentia_core.errors import BackendError, BackendUnavailableError, ConfigError

from ._backend import ChangeCallback, Subscription
from ._model import HealthStatus, Instance, frozen_metadata

__all__ = ["RedisBackend", "parse_instance"]

T = TypeVar("T")

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

_FOREIGN = """
local function foreign(k, want)
  local t = redis.call('TYPE', k)['ok']
  if t ~= 'none' and t ~= want then redis.call('DEL', k) return 1 end
  return 0
end
"""

_KEEP = """
local function keep(k, ms)
  local left = redis.call('PTTL', k)
  if left < ms then redis.call('PEXPIRE', k, ms) end
end
"""

# KEYS: leases, hash; ARGV: id, ttl_ms, channel, service, field, value, ...
_REGISTER = (
    _NOW
    + _KEEP
    + _FOREIGN
    + """
local ttl = tonumber(ARGV[2])
local fixed = foreign(KEYS[1], 'zset') + foreign(KEYS[2], 'hash')
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'registered_at', now, 'heartbeat_at', now, unpack(ARGV, 5))
redis.call('PEXPIRE', KEYS[2], ttl * 3)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
keep(KEYS[1], ttl * 3)
redis.call('PUBLISH', ARGV[3], ARGV[4])
return {now, now + ttl, fixed}
"""
)

# KEYS: leases, hash; ARGV: id, ttl_ms -> deadline, or 0 when the lease is gone
# (-1: gone because a foreign value was removed)
_HEARTBEAT = (
    _NOW
    + _KEEP
    + _FOREIGN
    + """
if foreign(KEYS[1], 'zset') + foreign(KEYS[2], 'hash') > 0 then return -1 end
local ttl = tonumber(ARGV[2])
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if (not score) or tonumber(score) <= now or redis.call('EXISTS', KEYS[2]) == 0 then
  return 0
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('HSET', KEYS[2], 'heartbeat_at', now)
redis.call('PEXPIRE', KEYS[2], ttl * 3)
keep(KEYS[1], ttl * 3)
return now + ttl
"""
)

# KEYS: leases, hash; ARGV: id, status, channel, service -> 1 or 0 (not registered)
_SET_STATUS = (
    _NOW
    + _FOREIGN
    + """
if foreign(KEYS[1], 'zset') + foreign(KEYS[2], 'hash') > 0 then return -1 end
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if (not score) or tonumber(score) <= now or redis.call('EXISTS', KEYS[2]) == 0 then
  return 0
end
if redis.call('HGET', KEYS[2], 'status') ~= ARGV[2] then
  redis.call('HSET', KEYS[2], 'status', ARGV[2])
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
return 1
"""
)

# KEYS: leases, hash; ARGV: id, channel, service -> 1 when something was removed
_DEREGISTER = """
local n = 0
if redis.call('TYPE', KEYS[1])['ok'] == 'zset' then n = redis.call('ZREM', KEYS[1], ARGV[1]) end
n = n + redis.call('DEL', KEYS[2])
if n > 0 then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return n
"""

# KEYS: leases; ARGV: hash key prefix -> {id, {field, value, ...}, id, {...}, ...}
# (the hashes share the lease set's hash tag, hence its slot); a foreign value
# gives {id, 0} (the lease set itself: {'', 0}, after deleting it)
_READ = (
    _NOW
    + _FOREIGN
    + """
if foreign(KEYS[1], 'zset') == 1 then return {'', 0} end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
local out = {}
for _, id in ipairs(ids) do
  local k = ARGV[1] .. id
  local t = redis.call('TYPE', k)['ok']
  if t == 'hash' then
    local h = redis.call('HGETALL', k)
    out[#out + 1] = id
    out[#out + 1] = h
  elseif t ~= 'none' then
    out[#out + 1] = id
    out[#out + 1] = 0
  end
end
return out
"""
)

# KEYS: leases; ARGV: hash key prefix, channel, service, limit -> removed ids
_SWEEP = (
    _NOW
    + _FOREIGN
    + """
if foreign(KEYS[1], 'zset') == 1 then return {} end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('DEL', ARGV[1] .. id)
end
if #ids > 0 then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return ids
"""
)

# KEYS: index; ARGV: service, deadline_ms, keep_ms -> 1 (2: a foreign value removed)
_INDEX_TOUCH = (
    _KEEP
    + _FOREIGN
    + """
local fixed = foreign(KEYS[1], 'zset')
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if (not cur) or tonumber(cur) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
keep(KEYS[1], tonumber(ARGV[3]))
return 1 + fixed
"""
)

# KEYS: index -> {now, service, service, ...} after sweeping dead services out
_INDEX_READ = (
    _NOW
    + _FOREIGN
    + """
if foreign(KEYS[1], 'zset') == 1 then return {now, ''} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local names = redis.call('ZRANGE', KEYS[1], 0, -1)
table.insert(names, 1, now)
return names
"""
)

_SWEEP_BATCH = 1000


def _s(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def parse_instance(service: str, instance_id: str, fields: dict[str, str]) -> Instance | None:
    """Build an :class:`Instance` from a stored hash; None when it does not parse.

    Never raises on any input: the hash may have been written by anything.
    """
    try:
        address = fields.get("address", "")
        if not address or not instance_id:
            return None
        weight = int(fields.get("weight", "1"))
        if not 1 <= weight <= 1_000_000:
            return None
        zone = fields.get("zone") or None
        status = HealthStatus(fields.get("status", "healthy"))
        metadata: dict[str, str] = {}
        raw = fields.get("metadata")
        if raw:
            decoded = json.loads(raw)
            if not isinstance(decoded, dict):
                return None
            metadata = {str(k): str(v) for k, v in decoded.items()}
        registered = float(fields.get("registered_at", "0")) / 1000.0
        heartbeat = float(fields.get("heartbeat_at", "0")) / 1000.0
        return Instance(
            service=service,
            id=instance_id,
            address=address,
            weight=weight,
            zone=zone,
            metadata=frozen_metadata(metadata),
            registered_at=registered,
            last_heartbeat=heartbeat,
            status=status,
        )
    except (ValueError, TypeError, RecursionError):
        return None


class _RedisSubscription:
    """Pub/sub feed; ``poll`` runs only on the registry's background thread.

    The connection is opened lazily by the first ``poll`` (a registry that
    never polls holds no pub/sub connection) and re-opened after a failure;
    each (re)subscription reports ``None`` ("reload everything") because
    messages published while unsubscribed are lost.
    """

    def __init__(self, backend: RedisBackend, on_change: ChangeCallback) -> None:
        self._backend = backend
        self._on_change = on_change
        self._wake_channel = f"{backend.channel}:wake:{secrets.token_hex(8)}"
        self._pubsub: Any = None
        self._lock = threading.Lock()

    def _open(self) -> Any:
        pubsub = self._backend.client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(self._backend.channel, self._wake_channel)
        except Exception:
            _close_quietly(pubsub)
            raise
        with self._lock:
            self._pubsub = pubsub
        self._on_change(None)
        return pubsub

    def poll(self, timeout: float) -> None:
        pubsub = self._pubsub
        channel = self._backend.channel
        try:
            if pubsub is None:
                pubsub = self._open()
            msg = pubsub.get_message(timeout=max(0.0, timeout))
            drained = 0
            while msg is not None and drained < 10_000:
                drained += 1
                if msg.get("type") == "message" and _s(msg.get("channel")) == channel:
                    self._on_change(_s(msg.get("data")))
                msg = pubsub.get_message(timeout=0.0)
        except Exception as exc:
            self.close()
            raise _translate(exc) from exc

    def wake(self) -> None:
        try:
            self._backend.client.publish(self._wake_channel, b"")
        except Exception:  # best effort: the poll timeout bounds the wait anyway
            return

    def close(self) -> None:
        with self._lock:
            pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            _close_quietly(pubsub)


def _close_quietly(pubsub: Any) -> None:
    try:
        pubsub.close()
    except Exception:
        return


def _is_wrong_type(exc: BaseException) -> bool:
    return str(exc).startswith("WRONGTYPE")


def _translate(exc: BaseException) -> BackendError:
    try:
        import redis.exceptions as rex

        unavailable: tuple[type[BaseException], ...] = (
            rex.ConnectionError,
            rex.TimeoutError,
            OSError,
        )
    except ImportError:  # pragma: no cover - redis is a dependency
        unavailable = (OSError,)
    if isinstance(exc, BackendError):
        return exc
    if isinstance(exc, unavailable):
        return BackendUnavailableError(f"redis unavailable: {exc}")
    return BackendError(f"redis error: {type(exc).__name__}: {exc}")


class RedisBackend:
    """Instances kept in Redis (or Valkey, or a Redis Cluster), shared by every process.

    Args:
        redis: a ``redis://`` / ``rediss://`` / ``unix://`` URL, or a synchronous
            ``redis.Redis`` / ``redis.RedisCluster`` client (fakeredis works too).
            A client built from a URL is closed by :meth:`close`; a client you
            pass in is left open.
        namespace: prefix of every key and of the pub/sub channel.

    Raises:
        ConfigError: ``redis`` is neither a URL nor a synchronous client, or
            ``namespace`` is empty.
    """

    name = "redis"

    def __init__(self, redis: Any, *, namespace: str = "sentia:registry") -> None:
        if not isinstance(namespace, str) or not namespace:
            raise ConfigError("namespace", namespace, "must be a non-empty string")
        owned = isinstance(redis, str)
        client = make_client(redis)
        if inspect.iscoroutinefunction(getattr(client, "execute_command", None)):
            raise ConfigError(
                "redis", redis, "the registry needs a synchronous client (redis.Redis)"
            )
        self.client = client
        self._owned = owned
        self.namespace = namespace
        self.channel = f"{namespace}:changes"
        self._index = key(namespace, "_index", "services")
        self._lock = threading.Lock()
        #: stored hashes that did not parse (skipped, never raised).
        self.corrupt_records = 0
        reg = client.register_script
        self._register = reg(_REGISTER)
        self._heartbeat = reg(_HEARTBEAT)
        self._set_status = reg(_SET_STATUS)
        self._deregister = reg(_DEREGISTER)
        self._read = reg(_READ)
        self._sweep = reg(_SWEEP)
        self._index_touch = reg(_INDEX_TOUCH)
        self._index_read = reg(_INDEX_READ)

    # keys ------------------------------------------------------------------

    def _leases(self, service: str) -> str:
        return key(self.namespace, service, "leases")

    def _prefix(self, service: str) -> str:
        return key(self.namespace, service, "i") + ":"

    def _run(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except Exception as exc:
            raise _translate(exc) from exc

    # contract --------------------------------------------------------------

    def register(self, instance: Instance, ttl: float) -> Instance:
        ttl_ms = max(1, round(ttl * 1000))
        service, iid = instance.service, instance.id
        fields: list[str] = [
            "service",
            service,
            "id",
            iid,
            "address",
            instance.address,
            "weight",
            str(instance.weight),
            "zone",
            instance.zone or "",
            "status",
            instance.status.value,
            "metadata",
            json.dumps(dict(instance.metadata), separators=(",", ":"), sort_keys=True),
        ]
        leases = self._leases(service)
        now_ms, deadline, fixed = self._run(
            lambda: self._register(
                keys=[leases, self._prefix(service) + iid],
                args=[iid, ttl_ms, self.channel, service, *fields],
            )
        )
        self._corrupt(int(fixed))
        self._touch_index(service, int(deadline), ttl_ms)
        wall = int(now_ms) / 1000.0
        return Instance(
            service=service,
            id=iid,
            address=instance.address,
            weight=instance.weight,
            zone=instance.zone,
            metadata=instance.metadata,
            registered_at=wall,
            last_heartbeat=wall,
            status=instance.status,
        )

    def _touch_index(self, service: str, deadline: int, ttl_ms: int) -> None:
        done = self._run(
            lambda: self._index_touch(keys=[self._index], args=[service, deadline, ttl_ms * 3])
        )
        self._corrupt(int(done == 2))

    def _corrupt(self, n: int) -> None:
        if n:
            with self._lock:
                self.corrupt_records += n

    def heartbeat(self, service: str, instance_id: str, ttl: float) -> bool:
        ttl_ms = max(1, round(ttl * 1000))
        deadline = self._run(
            lambda: self._heartbeat(
                keys=[self._leases(service), self._prefix(service) + instance_id],
                args=[instance_id, ttl_ms],
            )
        )
        if deadline == -1:
            self._corrupt(1)
        if not deadline or deadline == -1:
            return False
        self._touch_index(service, int(deadline), ttl_ms)
        return True

    def set_status(self, service: str, instance_id: str, status: HealthStatus) -> bool:
        done = self._run(
            lambda: self._set_status(
                keys=[self._leases(service), self._prefix(service) + instance_id],
                args=[instance_id, status.value, self.channel, service],
            )
        )
        if done == -1:
            self._corrupt(1)
            return False
        return bool(done)

    def deregister(self, service: str, instance_id: str) -> bool:
        removed = self._run(
            lambda: self._deregister(
                keys=[self._leases(service), self._prefix(service) + instance_id],
                args=[instance_id, self.channel, service],
            )
        )
        return bool(removed)

    def instances(self, service: str) -> list[Instance]:
        raw = self._run(
            lambda: self._read(keys=[self._leases(service)], args=[self._prefix(service)])
        )
        out: list[Instance] = []
        if not isinstance(raw, list):
            return out
        for i in range(0, len(raw) - 1, 2):
            inst = self._parse(service, raw[i], raw[i + 1])
            if inst is None:
                with self._lock:
                    self.corrupt_records += 1
            else:
                out.append(inst)
        return out

    @staticmethod
    def _parse(service: str, raw_id: object, raw_fields: object) -> Instance | None:
        if not isinstance(raw_fields, list):
            return None
        it: Iterable[object] = iter(raw_fields)
        fields = {_s(k): _s(v) for k, v in zip(it, it, strict=False)}
        return parse_instance(service, _s(raw_id), fields)

    def services(self) -> list[str]:
        raw = self._run(lambda: self._index_read(keys=[self._index], args=[]))
        if not isinstance(raw, list) or not raw:
            return []
        now = int(raw[0])
        names = [_s(n) for n in raw[1:]]
        if names == [""]:  # the index held a foreign value (deleted)
            self._corrupt(1)
            return []
        if not names:
            return []

        def count() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            for name in names:
                pipe.zcount(self._leases(name), f"({now}", "+inf")
            return list(pipe.execute(raise_on_error=False))

        live: list[str] = []
        for name, c in zip(names, self._run(count), strict=False):
            if isinstance(c, BaseException):
                if not _is_wrong_type(c):
                    raise _translate(c)
                self._corrupt(1)  # a foreign lease set: that service only
            elif int(c) > 0:
                live.append(name)
        return sorted(live)

    def sweep(self, service: str) -> list[str]:
        removed: list[str] = []
        while True:
            batch = self._run(
                lambda: self._sweep(
                    keys=[self._leases(service)],
                    args=[self._prefix(service), self.channel, service, _SWEEP_BATCH],
                )
            )
            removed.extend(_s(i) for i in batch)
            if len(batch) < _SWEEP_BATCH:
                return removed

    def subscribe(self, on_change: ChangeCallback) -> Subscription:
        return _RedisSubscription(self, on_change)

    def close(self) -> None:
        if self._owned:
            try:
                self.client.close()
            except Exception:
                return

    def __repr__(self) -> str:
        return f"RedisBackend(namespace={self.namespace!r})"
