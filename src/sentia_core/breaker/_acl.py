"""The Redis commands the shared breaker store sends (its least-privilege ACL).

Every operation is one script (EVALSHA; SCRIPT LOAD or EVAL after a
NOSCRIPT); its own commands are read from its text. Keys: ``NAMESPACE:*``; no
channel.
"""

from __future__ import annotations

from sentia_core._redis import CONNECTION_COMMANDS, lua_commands

__all__ = ["redis_commands"]

_CLIENT = frozenset({"eval", "evalsha", "script|load"})


def redis_commands() -> frozenset[str]:
    """Every command a RedisStateStore sends."""
    from . import _store

    return CONNECTION_COMMANDS | _CLIENT | lua_commands(_store)
