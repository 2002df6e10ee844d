"""The Redis commands the Redis rate-limit store sends (its least-privilege ACL).

Every decision is one script (EVALSHA, EVAL after a NOSCRIPT); reset deletes
the caller's keys. The scripts' own commands are read from their text. Keys:
``NAMESPACE:*``; no channel.
"""

from __future__ import annotations

from sentia_core._redis import CONNECTION_COMMANDS, lua_commands

__all__ = ["redis_commands"]

_CLIENT = frozenset({"eval", "evalsha", "script|load", "del", "unlink", "get", "time"})


def redis_commands() -> frozenset[str]:
    """Every command a Redis-backed RateLimiter sends."""
    from . import _lua, _redisstore

    return CONNECTION_COMMANDS | _CLIENT | lua_commands(_lua, _redisstore)
