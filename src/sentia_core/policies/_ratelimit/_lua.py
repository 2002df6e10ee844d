"""The Lua scripts: ``_core``'s admit step, transcribed line for line, run atomically in Redis.

Each decision is ONE script call (``EVALSHA``, falling back to ``EVAL`` when
the server answers ``NOSCRIPT``) touching ONE key, declared in ``KEYS`` and
hash-tagged, so the scripts run unchanged on Redis Cluster. ``now`` comes
from the server (``redis.call('TIME')``), never from the client, so clients
with skewed clocks agree; it is shifted by ``TIME_BASE`` so a double keeps
sub-microsecond resolution. Every write sets a TTL equal to the time after
which the state no longer matters, so idle keys vanish on their own.

The scripts return the raw numbers (verdict, state before, time); the Python
``describe`` step turns them into a decision, the same code the in-memory
backend uses. Numbers travel as ``%.17g`` strings because Redis truncates Lua
numbers to integers in replies, and ``%.17g`` round-trips a double exactly.

A stored value that does not parse (written by something else) is treated as
no state and overwritten by the next allowed hit; a key of the wrong type
makes the script fail, which the caller handles like an unreachable Redis.

``ARGV[5]``, when present, replaces the server time. Only the test suite
sends it (to run the scripts against a ManualClock and compare them with the
in-memory arithmetic); the library never does.
"""

from __future__ import annotations

import hashlib

__all__ = ["GCRA", "GCRA_SHA", "SLIDING_WINDOW", "SLIDING_WINDOW_SHA", "TIME_BASE"]

#: Seconds subtracted from the server's Unix time before the arithmetic.
TIME_BASE = 1_700_000_000

_NOW = f"""
pcall(redis.replicate_commands)
local now
if ARGV[5] then
  now = tonumber(ARGV[5])
else
  local t = redis.call('TIME')
  now = (tonumber(t[1]) - {TIME_BASE}) + tonumber(t[2]) / 1000000
end
"""

#: KEYS[1] = state key; ARGV = interval, tolerance + EPS_TIME, cost, consume ("1"/"0")[, now].
#: Reply: {allowed (1/0), max(tat, now), now}.
GCRA = (
    _NOW
    + """
local interval = tonumber(ARGV[1])
local cost = tonumber(ARGV[3])
local raw = redis.call('GET', KEYS[1])
local tat = raw and tonumber(raw)
if not tat or not (tat >= now) or tat == math.huge then
  tat = now
end
local new_tat = tat + cost * interval
if new_tat - now <= tonumber(ARGV[2]) then
  if ARGV[4] == '1' and new_tat > now then
    redis.call('SET', KEYS[1], string.format('%.17g', new_tat),
               'PX', math.ceil((new_tat - now) * 1000))
  end
  return {1, string.format('%.17g', tat), string.format('%.17g', now)}
end
return {0, string.format('%.17g', tat), string.format('%.17g', now)}
"""
)

#: KEYS[1] = state key; ARGV = period, limit + EPS_COUNT, cost, consume ("1"/"0")[, now].
#: Stored value: "index prev curr". Reply: {allowed (1/0), prev, curr, elapsed}.
SLIDING_WINDOW = (
    _NOW
    + """
local period = tonumber(ARGV[1])
local cost = tonumber(ARGV[3])
local index = math.floor(now / period)
local prev, curr = 0, 0
local raw = redis.call('GET', KEYS[1])
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
local elapsed = now - index * period
local allowed = 0
if prev * (1 - elapsed / period) + curr + cost <= tonumber(ARGV[2]) then
  allowed = 1
  if ARGV[4] == '1' and cost > 0 then
    redis.call('SET', KEYS[1],
               string.format('%.17g %.17g %.17g', index, prev, curr + cost),
               'PX', math.ceil(((index + 2) * period - now) * 1000))
  end
end
return {allowed, string.format('%.17g', prev), string.format('%.17g', curr),
        string.format('%.17g', elapsed)}
"""
)

GCRA_SHA = hashlib.sha1(GCRA.encode(), usedforsecurity=False).hexdigest()
SLIDING_WINDOW_SHA = hashlib.sha1(SLIDING_WINDOW.encode(), usedforsecurity=False).hexdigest()
