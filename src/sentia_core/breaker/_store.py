"""Breaker state shared across processes: the store protocol and the Redis store.

Theory of operation: with a store, the *shared* state is the truth and each
process mirrors it. One Lua script (:data:`LUA_SCRIPT`) runs every store
operation atomically on the Redis server, reading time with
``redis.call('TIME')`` so that the clocks of the client machines never matter.
Its transitions come from the same table as the in-process core
(``_state.TRANSITIONS`` is rendered into the script), and it keeps the shared
sliding window (a byte ring for a count window, one hash bucket per second for
a time window), the consecutive-failure count, the half-open permits (a
sorted set scored by expiry, so a lost permit is reclaimed) and the trip
count for reset-timeout growth.

Operations (``StoreRequest.op``):

* ``acquire``: move OPEN to HALF_OPEN when due and hand out a trial permit if
  one is free. Processes call it only when their mirror is not CLOSED.
* ``record``: the outcome of a call; stale generations and unknown permits
  are dropped, exactly as in the in-process core.
* ``manual``: ``force_open``, ``disable``, ``reset`` for every process at once.
* ``read``: the current state (used to refresh a mirror).

Keys (hash-tagged on the breaker's name, so one Redis Cluster slot holds
them): ``{ns}:{breaker:NAME}:state`` (one '|'-separated string: one GET and
at most one SET per operation), ``...:window`` (string or hash),
``...:permits`` (sorted set). All expire after ``key_ttl`` seconds without use.
Every process sharing a breaker must use the same configuration: each
operation carries the caller's thresholds.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from sentia_core._redis import is_cluster, key, make_async_client, make_client
from sentia_core._validate import check_name, check_positive
from sentia_core.errors import ConfigError

from ._config import BreakerConfig
from ._state import TRANSITIONS, BreakerState

__all__ = [
    "LUA_SCRIPT",
    "RedisStateStore",
    "StateStore",
    "StoreReply",
    "StoreRequest",
]


@dataclass(frozen=True, slots=True)
class StoreRequest:
    """One operation on the shared state.

    Attributes:
        op: ``"acquire"``, ``"record"``, ``"manual"`` or ``"read"``.
        outcome: for ``record``: -1 ignored, else bits 1 = failure, 2 = slow.
        generation: for ``record``: the shared generation the call was admitted in.
        permit: for ``record``: the trial permit id (0 = not a trial).
        trigger: for ``manual``: ``"force_open"``, ``"disable"`` or ``"reset"``.
    """

    op: Literal["acquire", "record", "manual", "read"]
    outcome: int = 0
    generation: int = 0
    permit: int = 0
    trigger: str = ""


@dataclass(frozen=True, slots=True)
class StoreReply:
    """The shared state after an operation.

    Attributes:
        state: the shared state.
        generation: the shared transition count.
        retry_after: seconds until an OPEN breaker admits a trial (0.0 otherwise).
        permit: the trial permit granted by ``acquire`` (0 = none).
        calls, failures, slow_calls, consecutive_failures: the shared window.
        times_opened: shared count of trips.
        reason: why the last transition happened.
        changed_at: server time (seconds since the epoch) of the last transition.
    """

    state: BreakerState
    generation: int
    retry_after: float
    permit: int
    calls: int
    failures: int
    slow_calls: int
    consecutive_failures: int
    times_opened: int
    reason: str
    changed_at: float


@runtime_checkable
class StateStore(Protocol):
    """Where a breaker shares its state (implemented by :class:`RedisStateStore`).

    ``execute`` may raise anything: the breaker counts the error, says
    ``shared_state="unavailable"`` in its metrics, decides locally, and tries
    the store again after ``retry_interval`` seconds.
    """

    #: seconds to run locally after a store error before trying the store again.
    retry_interval: float
    #: seconds between refreshes of a mirror that is OPEN, FORCED_OPEN or DISABLED.
    sync_interval: float

    def execute(self, config: BreakerConfig, request: StoreRequest) -> StoreReply:
        """Run ``request`` for the breaker ``config.name``; returns the shared state."""
        ...

    async def execute_async(self, config: BreakerConfig, request: StoreRequest) -> StoreReply:
        """The asyncio twin of :meth:`execute`."""
        ...


def _lua_transitions() -> str:
    pairs = ", ".join(
        f'["{state.value}:{trigger.value}"] = "{target.value}"'
        for (state, trigger), target in TRANSITIONS.items()
    )
    return "{" + pairs + "}"


#: The script; ``__TRANSITIONS__`` is replaced by the table from ``_state.py``.
_LUA_TEMPLATE = r"""
local VALID = {closed = true, open = true, half_open = true, forced_open = true, disabled = true}
local function num(v, d)
  local n = tonumber(v)
  if n == nil or n ~= n then return d end
  return n
end
local H, W, P = KEYS[1], KEYS[2], KEYS[3]
-- ARGV: op, outcome-or-trigger, generation, permit, now-override (ms, '' = Redis TIME),
-- then the configuration packed in one '|'-separated string.
local op = ARGV[1]
local c = {}
for item in string.gmatch(ARGV[6] or '', '([^|]*)|?') do c[#c + 1] = item end
local wtype, wsize, minimum = c[1], num(c[2], 1), num(c[3], 1)
local rate, consec_max, slow_rate = num(c[4], -1), num(c[5], -1), num(c[6], -1)
local reset_ms, mult, max_ms = num(c[7], 60000), num(c[8], 1), num(c[9], 600000)
local ho_max, ok_needed, ho_ms = num(c[10], 1), num(c[11], 1), num(c[12], 60000)
local ttl_ms = num(c[13], 86400000)
if wsize < 1 then wsize = 1 end
local w_touched, p_touched = false, false
-- Time is read only when an operation needs it (a healthy success does not).
local now_ms = nil
local function now()
  if now_ms == nil then
    if ARGV[5] ~= nil and ARGV[5] ~= '' then
      now_ms = num(ARGV[5], 0)
    else
      local t = redis.call('TIME')
      now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
  end
  return now_ms
end
local function nowsec() return math.floor(now() / 1000) end

-- The state is one string (one GET, one SET): state|gen|open_until|trips|opened|consec|
-- calls|fail|slow|pos|head|trial_ok|changed_at|next_permit|reason
local raw = redis.pcall('GET', H)
local h_foreign = false
if type(raw) ~= 'string' then
  if type(raw) == 'table' then  -- a foreign value: replace it
    redis.call('DEL', H)
    h_foreign = true
  end
  raw = ''
end
local f = {}
do
  local start = 1
  for i = 1, 14 do
    local stop = string.find(raw, '|', start, true)
    if stop == nil then break end
    f[i] = string.sub(raw, start, stop - 1)
    start = stop + 1
  end
  f[15] = string.sub(raw, start)
end
local state = f[1] or 'closed'
if not VALID[state] then state = 'closed' end
local gen, open_until, trips, opened = num(f[2], 0), num(f[3], 0), num(f[4], 0), num(f[5], 0)
local consec, calls, fail, slow = num(f[6], 0), num(f[7], 0), num(f[8], 0), num(f[9], 0)
local pos, head, trial_ok = num(f[10], 0), num(f[11], -1), num(f[12], 0)
local changed_at, next_permit, reason = num(f[13], 0), num(f[14], 0), f[15] or ''
if gen < 0 or trips < 0 or consec < 0 or pos < 0 or next_permit < 0 then
  gen, trips, consec, pos, next_permit = 0, 0, 0, 0, 0
end
if open_until < 0 or open_until > 1e15 then open_until = 0 end  -- not a time: due now
if changed_at < 0 or changed_at > 1e15 then changed_at = 0 end
if calls < 0 or fail < 0 or slow < 0 or calls > 2^40 then
  calls, fail, slow, pos, head = 0, 0, 0, 0, -1
  redis.call('DEL', W)
end

-- A window or permit key holding another type (someone else's data, or a
-- process with another window_type) is corrupt: it is deleted the first time
-- the operation touches it, its counts restart, and the reply says 'R' so the
-- client counts it. Never an error: one bad key must not make every process
-- sharing the breaker fall back to local decisions.
local fixed = h_foreign
local function foreign(k, want)
  local t = redis.call('TYPE', k)['ok']
  if t ~= 'none' and t ~= want then
    redis.call('DEL', k)
    fixed = true
    return true
  end
  return false
end
local w_checked, p_checked = false, false
local function wcheck()
  if w_checked then return end
  w_checked = true
  local want = 'hash'
  if wtype == 'count' then want = 'string' end
  if foreign(W, want) then calls, fail, slow, pos, head = 0, 0, 0, 0, -1 end
end
local function pcheck()
  if p_checked then return end
  p_checked = true
  foreign(P, 'zset')
end

local function clear_window()
  redis.call('DEL', W)
  calls, fail, slow, pos, head, consec = 0, 0, 0, 0, -1, 0
end

local function move(trigger, why)
  local T = __TRANSITIONS__  -- built only when a transition happens
  local nxt = T[state .. ':' .. trigger]
  if nxt == nil then
    return error('sentia: no transition from ' .. state .. ' on ' .. trigger)
  end
  state = nxt
  gen = gen + 1
  trial_ok = 0
  redis.call('DEL', P)
  if nxt == 'closed' then
    clear_window()
    trips = 0
  end
  reason = why
  changed_at = now()
end

local function trip(trigger, why)
  trips = trips + 1
  opened = opened + 1
  local timeout = reset_ms
  if mult > 1 and trips > 1 then
    timeout = math.min(reset_ms * mult ^ (trips - 1), max_ms)
  end
  open_until = math.floor(now() + timeout)
  move(trigger, why .. '; open for ' .. string.format('%g', timeout / 1000) .. 's')
end

local function advance(sec)
  wcheck()
  if sec <= head then return end
  if head >= 0 then
    if sec - head >= wsize then
      redis.call('DEL', W)
      calls, fail, slow = 0, 0, 0
    else
      for s = math.max(head + 1, sec - wsize + 1), sec do
        local i = s % wsize
        local b = redis.call('HMGET', W, 'c' .. i, 'f' .. i, 's' .. i)
        if b[1] then
          calls = calls - num(b[1], 0)
          fail = fail - num(b[2], 0)
          slow = slow - num(b[3], 0)
          redis.call('HDEL', W, 'c' .. i, 'f' .. i, 's' .. i)
        end
      end
    end
  end
  head = sec
end

local function record(outcome)
  wcheck()
  local bf, bs = outcome % 2, math.floor(outcome / 2) % 2
  if wtype == 'count' then
    if pos >= wsize then pos = 0 end
    if calls >= wsize then
      local old = num(redis.call('GETRANGE', W, pos, pos), 0)
      fail = fail - old % 2
      slow = slow - math.floor(old / 2) % 2
      calls = wsize
    else
      calls = calls + 1
    end
    redis.call('SETRANGE', W, pos, tostring(outcome))
    -- TTLs are refreshed once per lap of the ring, not on every call
    if pos == 0 or calls < wsize then w_touched = true end
    pos = (pos + 1) % wsize
  else
    local before = head
    advance(nowsec())
    local i = nowsec() % wsize
    redis.call('HINCRBY', W, 'c' .. i, 1)
    if head ~= before then w_touched = true end  -- once per second
    if bf == 1 then redis.call('HINCRBY', W, 'f' .. i, 1) end
    if bs == 1 then redis.call('HINCRBY', W, 's' .. i, 1) end
    calls = calls + 1
  end
  fail = fail + bf
  slow = slow + bs
  if bf == 1 then consec = consec + 1 else consec = 0 end
end

local function evaluate()
  if consec_max > 0 and consec >= consec_max then
    return trip('trip', consec .. ' consecutive failures')
  end
  if wtype == 'time' then advance(nowsec()) end
  if calls < minimum or calls <= 0 then return end
  if rate > 0 and fail / calls >= rate then
    local why = string.format('failure rate %.2f >= %g over %d calls', fail / calls, rate, calls)
    return trip('trip', why)
  end
  if slow_rate > 0 and slow / calls >= slow_rate then
    local why = string.format('slow-call rate %.2f >= %g over %d calls',
      slow / calls, slow_rate, calls)
    return trip('trip', why)
  end
end

local permit = 0
if op == 'acquire' then
  if state == 'open' and now() >= open_until then
    move('reset_timeout_elapsed', 'reset_timeout elapsed')
  end
  if state == 'half_open' then
    pcheck()
    redis.call('ZREMRANGEBYSCORE', P, '-inf', now())
    if redis.call('ZCARD', P) < ho_max then
      next_permit = next_permit + 1
      permit = next_permit
      redis.call('ZADD', P, now() + ho_ms, permit)
      p_touched = true
    end
  end
elseif op == 'record' then
  local outcome, dgen, dpermit = num(ARGV[2], -1), num(ARGV[3], -1), num(ARGV[4], 0)
  if dpermit > 0 then
    pcheck()
    redis.call('ZREMRANGEBYSCORE', P, '-inf', now())
    local removed = redis.call('ZREM', P, dpermit)
    if removed == 1 and dgen == gen and state == 'half_open' and outcome >= 0 then
      if outcome > 0 then
        local what = 'failed'
        if outcome % 2 == 0 then what = 'was slow' end
        trip('trial_failed', 'trial call ' .. what)
      else
        trial_ok = trial_ok + 1
        if trial_ok >= ok_needed then
          move('trials_succeeded', trial_ok .. ' trial calls succeeded')
        end
      end
    end
  elseif dgen == gen and state == 'closed' and outcome >= 0 and outcome <= 3 then
    local clean = wtype == 'count' and calls >= wsize and fail == 0 and slow == 0 and consec == 0
    if not (clean and outcome == 0) then
      -- (a success into a full window of successes changes nothing at all)
      record(outcome)
      if outcome > 0 then evaluate() end
    end
  end
elseif op == 'manual' then
  local trigger = ARGV[2]
  if trigger == 'reset' then trips = 0 end
  move(trigger, trigger .. '()')
elseif op == 'read' then
  if wtype == 'time' and head >= 0 then advance(nowsec()) end
else
  return error('sentia: unknown op ' .. tostring(op))
end

local out = table.concat({state, gen, open_until, trips, opened, consec, calls, fail, slow, pos,
  head, trial_ok, changed_at, next_permit, reason}, '|')
if out ~= raw then
  redis.call('SET', H, out, 'PX', ttl_ms)
elseif op ~= 'record' then
  -- The TTL is refreshed whenever the state changes or is consulted; a record
  -- that changed nothing (a success into a clean window) leaves it alone.
  redis.call('PEXPIRE', H, ttl_ms)
end
if w_touched then redis.call('PEXPIRE', W, ttl_ms) end
if p_touched then redis.call('PEXPIRE', P, ttl_ms) end
local retry = 0
if state == 'open' then retry = math.max(0, open_until - now()) end
-- One string, not an array: the client parses one bulk reply instead of eleven.
local mark = ''
if fixed then mark = 'R' end
return mark .. table.concat({state, gen, string.format('%.0f', retry), permit, calls, fail, slow,
  consec, opened, string.format('%.0f', changed_at), reason}, '|')
"""

#: The Lua script every store operation runs (with the transition table filled in).
LUA_SCRIPT = _LUA_TEMPLATE.replace("__TRANSITIONS__", _lua_transitions())


_STATES = {state.value.encode(): state for state in BreakerState}
_REPAIRED = (b"R", "R")


def parse_reply(raw: Any) -> StoreReply:
    """Turn the script's reply (``state|gen|retry_ms|permit|calls|failures|slow|
    consecutive|opened|changed_ms|reason``) into a :class:`StoreReply`.

    Raises:
        ValueError: the reply is not what the script returns (a corrupt or
            foreign reply); the breaker treats that like a store error.
    """
    if isinstance(raw, str):
        raw = raw.encode()
    if not isinstance(raw, bytes):
        raise ValueError(f"unexpected breaker store reply: {raw!r:.200}")
    parts = raw.split(b"|", 10)
    if len(parts) != 11:
        raise ValueError(f"unexpected breaker store reply: {raw!r:.200}")
    state = _STATES.get(parts[0])
    if state is None:
        raise ValueError(f"unknown state in breaker store reply: {raw!r:.200}")
    try:
        ints = list(map(int, parts[1:10]))
    except ValueError as exc:
        raise ValueError(f"malformed breaker store reply: {raw!r:.200}") from exc
    if min(ints) < 0:
        raise ValueError(f"negative field in breaker store reply: {raw!r:.200}")
    generation, retry_ms, permit, calls, failures, slow, consec, opened, changed_ms = ints
    return StoreReply(
        state=state,
        generation=generation,
        retry_after=retry_ms / 1000.0,
        permit=permit,
        calls=calls,
        failures=failures,
        slow_calls=slow,
        consecutive_failures=consec,
        times_opened=opened,
        reason=parts[10].decode("utf-8", "replace")[:200],
        changed_at=changed_ms / 1000.0,
    )


def _optional(value: float | int | None) -> str:
    return "" if value is None else repr(value)


class RedisStateStore:
    """Shares breaker state through Redis (or Valkey, or a Redis Cluster).

    Args:
        redis: a Redis URL (``redis://``, ``rediss://``, ``unix://``) or a
            synchronous client (``redis.Redis``, ``redis.RedisCluster``, fakeredis).
        async_redis: an asyncio client for ``call_async``/``async with``; by
            default one is made per event loop from the URL, or, when a sync
            client was given, the sync client runs in a worker thread.
        namespace: the key prefix.
        retry_interval: seconds a breaker runs locally after a store error
            before trying Redis again (> 0).
        sync_interval: seconds between refreshes of a mirror that is OPEN,
            FORCED_OPEN or DISABLED, so an operator's ``reset()`` in one
            process reaches the others (> 0).
        key_ttl: seconds after which unused keys expire (default: one day, or
            twice ``max_reset_timeout`` if that is longer).
        clock: for tests only: use this clock's ``time()`` instead of the
            Redis server's ``TIME``.

    Raises:
        ConfigError: a bad URL or client, or a bad interval.
    """

    def __init__(
        self,
        redis: object = None,
        *,
        async_redis: object = None,
        namespace: str = "sentia",
        retry_interval: float = 5.0,
        sync_interval: float = 1.0,
        key_ttl: float | None = None,
        clock: Any = None,
    ) -> None:
        if redis is None and async_redis is None:
            raise ConfigError("redis", redis, "give a Redis URL, a client, or async_redis")
        self.namespace = check_name("namespace", namespace)
        self.retry_interval = check_positive("retry_interval", retry_interval)
        self.sync_interval = check_positive("sync_interval", sync_interval)
        self.key_ttl = None if key_ttl is None else check_positive("key_ttl", key_ttl)
        if clock is not None and not callable(getattr(clock, "time", None)):
            raise ConfigError("clock", clock, "must have a time() method")
        self._clock = clock
        self._url: str | None = redis if isinstance(redis, str) else None
        self._client: Any = None
        if redis is not None:
            self._client = make_client(redis, parameter="redis")
        self._async_client: Any = None
        self._async_script: Any = None
        if async_redis is not None:
            self._async_client = make_async_client(async_redis, parameter="async_redis")
            self._async_script = self._async_client.register_script(LUA_SCRIPT)
        self._loop_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[Any, Any]
        ] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._statics: dict[int, tuple[BreakerConfig, list[str], str]] = {}
        self._script: Any = None
        #: window or permit keys found holding another Redis type (deleted)
        self.corrupt_keys = 0
        if self._client is not None:
            self._script = self._client.register_script(LUA_SCRIPT)

    def keys(self, name: str) -> tuple[str, str, str]:
        """The three keys of breaker ``name`` (state hash, window, permits)."""
        base = key(self.namespace, f"breaker:{name}")
        return f"{base}:state", f"{base}:window", f"{base}:permits"

    def _static(self, config: BreakerConfig) -> tuple[list[str], str]:
        """The keys and the configuration arguments of ``config`` (cached per config)."""
        cached = self._statics.get(id(config))
        if cached is not None and cached[0] is config:
            return cached[1], cached[2]
        ttl = self.key_ttl or max(86400.0, 2 * config.max_reset_timeout)
        slow_rate = None
        if config.slow_call_duration is not None:
            slow_rate = config.slow_call_rate_threshold
        static = "|".join(
            [
                config.window_type,
                str(config.window_size),
                str(config.minimum_calls),
                _optional(config.failure_rate_threshold),
                _optional(config.consecutive_failures),
                _optional(slow_rate),
                str(int(config.reset_timeout * 1000)),
                repr(config.reset_timeout_multiplier),
                str(int(config.max_reset_timeout * 1000)),
                str(config.half_open_max_calls),
                str(config.success_threshold),
                str(int(config.half_open_timeout * 1000)),
                str(int(ttl * 1000)),
            ]
        )
        keys = list(self.keys(config.name))
        self._statics[id(config)] = (config, keys, static)
        return keys, static

    def _args(self, config: BreakerConfig, request: StoreRequest) -> tuple[list[str], list[Any]]:
        keys, static = self._static(config)
        second: Any = request.trigger if request.op == "manual" else request.outcome
        now = "" if self._clock is None else int(self._clock.time() * 1000)
        return keys, [request.op, second, request.generation, request.permit, now, static]

    @property
    def synchronous(self) -> bool:
        """Whether :meth:`execute` can run (a sync client or URL was given)."""
        return self._script is not None

    def execute(self, config: BreakerConfig, request: StoreRequest) -> StoreReply:
        """Run one operation with the sync client (see :class:`StateStore`)."""
        if self._script is None:
            raise RuntimeError("this RedisStateStore has no synchronous client")
        keys, args = self._args(config, request)
        return parse_reply(self._repaired(self._script(keys=keys, args=args)))

    def _repaired(self, raw: Any) -> Any:
        """Count (and strip) the script's mark of a foreign key it removed."""
        if isinstance(raw, (bytes, str)) and raw[:1] in _REPAIRED:
            with self._lock:
                self.corrupt_keys += 1
            return raw[1:]
        return raw

    def _loop_script(self) -> Any:
        """The async script object for the running loop (None: use the sync client)."""
        if self._async_script is not None:
            return self._async_script
        if self._url is None:
            return None
        loop = asyncio.get_running_loop()
        with self._lock:
            pair = self._loop_clients.get(loop)
            if pair is None:
                client = make_async_client(self._url, cluster=is_cluster(self._client))
                pair = (client, client.register_script(LUA_SCRIPT))
                self._loop_clients[loop] = pair
        return pair[1]

    async def execute_async(self, config: BreakerConfig, request: StoreRequest) -> StoreReply:
        """Run one operation with an asyncio client (or the sync one in a thread)."""
        script = self._loop_script()
        if script is None:
            return await asyncio.to_thread(self.execute, config, request)
        keys, args = self._args(config, request)
        return parse_reply(self._repaired(await script(keys=keys, args=args)))

    def close(self) -> None:
        """Close the clients this store made from a URL."""
        if self._url is not None and self._client is not None:
            self._client.close()

    async def aclose(self) -> None:
        """Close the asyncio clients this store made (call from their event loop)."""
        loop = asyncio.get_running_loop()
        pair = self._loop_clients.pop(loop, None)
        if pair is not None:
            await pair[0].aclose()
        self.close()

    def __repr__(self) -> str:
        where = self._url or type(self._client or self._async_client).__name__
        return f"RedisStateStore({where!r}, namespace={self.namespace!r})"
