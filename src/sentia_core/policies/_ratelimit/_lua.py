"""The Lua scripts: ``_core``'s admit step, transcribed line for line, run atomically in Redis.

Each decision is ONE script call (``EVALSHA``, falling back to ``EVAL`` when
the server answers ``NOSCRIPT``) touching ONE key, declared in ``KEYS`` and
hash-tagged, so the scripts run unchanged on Redis Cluster. ``now`` comes
from the server (``redis.call('TIME')``), never from the client, so clients
with skewed clocks agree; it is shifted by ``TIME_BASE`` so a double keeps
sub-microsecond resolution. Every write sets a TTL equal to the time after
which the state no longer matters, so idle keys vanish on their own.

Each tier gets its own copy of a template with its constants (emission
interval and tolerance, or period and limit) written in as numeric literals
(``repr`` of the very floats the in-memory core uses, which Lua reads back
exactly), so a call carries a single argument::

    EVALSHA <sha> 1 <key> <n>      n >= 0: a hit of cost n; n < 0: a peek of cost -n-1

The reply is one bulk string of numbers (``"1 <tat> <now>"``; ``%.17g``
round-trips a double exactly), which is cheaper for a client to parse than an
array, and which the Python ``describe`` step turns into a decision, the same
code the in-memory backend uses. A stored number is written as a Lua number,
which Redis itself formats with full precision.

A stored value that does not parse (written by something else) is treated as
no state and overwritten by the next allowed hit. A key that cannot be ours --
another Redis type, or a string without a TTL (every write here sets one, and
a foreign number without one could deny its caller forever) -- is deleted
first and the decision made as for no state; the reply then starts with
``R`` so that the client counts the repair (``corrupt_keys``). One poisoned
key is corrupt data about one caller, never a Redis failure.

``ARGV[2]``, when present, replaces the server time. Only the test suite sends
it (to run the scripts on a ManualClock and compare them with the in-memory
arithmetic); the library never does.

Requires Redis >= 5 (or Valkey), where scripts are replicated by effects, so
reading ``TIME`` before a write is allowed.
"""

from __future__ import annotations

import hashlib

__all__ = ["TIME_BASE", "gcra_script", "script_sha", "sliding_window_script"]

#: Seconds subtracted from the server's Unix time before the arithmetic.
TIME_BASE = 1_700_000_000

_NOW = f"""\
local now
if ARGV[2] then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = (tonumber(t[1]) - {TIME_BASE}) + tonumber(t[2]) / 1000000
end
local fixed = ''
local raw = redis.pcall('GET', KEYS[1])
if type(raw) == 'table' or (raw and redis.call('PTTL', KEYS[1]) == -1) then
  redis.call('DEL', KEYS[1])  -- another type, or no TTL: not ours
  fixed = 'R'
  raw = false
end
local n = tonumber(ARGV[1])
local cost = n
if n < 0 then
  cost = -n - 1
end
"""

# {interval} and {tolerance} are GcraCore.interval and GcraCore.tol_eps.
# Reply: "<allowed 1/0> <max(tat, now)> <now>".
_GCRA = (
    _NOW
    + """\
local tat = tonumber(raw)
if not tat or not (tat >= now) or tat == math.huge then
  tat = now
end
local new_tat = tat + cost * {interval}
if new_tat - now <= {tolerance} then
  if n > 0 and new_tat > now then
    redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) * 1000))
  end
  return fixed .. string.format('1 %.17g %.17g', tat, now)
end
return fixed .. string.format('0 %.17g %.17g', tat, now)
"""
)

# {period} and {limit} are WindowCore.period and WindowCore.limit_eps.
# Stored value: "<window index> <previous count> <current count>".
# Reply: "<allowed 1/0> <previous count> <current count> <seconds into the window>".
_SLIDING_WINDOW = (
    _NOW
    + """\
local index = math.floor(now / {period})
local prev, curr = 0, 0
if raw then
  local s, p, c = string.match(raw, '^(%S+) (%S+) (%S+)$')
  if s then
    s, p, c = tonumber(s), tonumber(p), tonumber(c)
    if s and p and c and p >= 0 and c >= 0 and p < math.huge and c < math.huge then
      if s == index then
        prev, curr = p, c
      elseif s == index - 1 then
        prev = c
      end
    end
  end
end
local elapsed = now - index * {period}
local allowed = 0
if prev * (1 - elapsed / {period}) + curr + cost <= {limit} then
  allowed = 1
  if n > 0 then
    redis.call('SET', KEYS[1], string.format('%d %.17g %.17g', index, prev, curr + cost),
               'PX', math.ceil(((index + 2) * {period} - now) * 1000))
  end
end
return fixed .. string.format('%d %.17g %.17g %.17g', allowed, prev, curr, elapsed)
"""
)


def _literal(value: float) -> str:
    text = repr(float(value))
    if text in ("inf", "-inf", "nan"):  # pragma: no cover - Rate validation forbids these
        raise ValueError(f"cannot write {value!r} into a script")
    return text


def gcra_script(interval: float, tolerance: float) -> str:
    """The GCRA script for one tier (constants written in exactly)."""
    return _GCRA.format(interval=_literal(interval), tolerance=_literal(tolerance))


def sliding_window_script(period: float, limit: float) -> str:
    """The sliding-window script for one tier (constants written in exactly)."""
    return _SLIDING_WINDOW.format(period=_literal(period), limit=_literal(limit))


def script_sha(script: str) -> str:
    """The SHA1 Redis names a script by."""
    return hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()
