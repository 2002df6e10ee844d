"""The Redis commands the Redis registry backend sends (its least-privilege ACL).

Client side: the scripts, the pipelined reads of instances and the index, and
the change channel (PUBLISH on the wake channel, SUBSCRIBE). The scripts' own
commands are read from their text. Keys and channels: ``NAMESPACE:*``.
"""

from __future__ import annotations

from sentia_core._redis import CONNECTION_COMMANDS, lua_commands

__all__ = ["redis_commands"]

_CLIENT = frozenset(
    {
        "eval", "evalsha", "script|load", "hgetall", "zrange", "zrangebyscore", "zcount",
        "zscore", "pttl", "publish", "subscribe", "unsubscribe", "ping",
    }
)  # fmt: skip


def redis_commands() -> frozenset[str]:
    """Every command a Redis-backed ServiceRegistry sends."""
    from . import _redis_backend

    return CONNECTION_COMMANDS | _CLIENT | lua_commands(_redis_backend)
