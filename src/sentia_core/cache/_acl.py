"""The Redis commands a cache with an L2 sends (its least-privilege ACL).

Client side: value reads and writes, the SCAN of ``invalidate_pattern``, the
scripts (EVAL/EVALSHA), and the invalidation channel (PUBLISH, SUBSCRIBE and
PING on the subscriber connection). The scripts' own commands are read from
their text. Keys: ``NAMESPACE:*``; channel: ``NAMESPACE:invalidate``.
"""

from __future__ import annotations

from sentia_core._redis import CONNECTION_COMMANDS, lua_commands

__all__ = ["redis_commands"]

_CLIENT = frozenset(
    {
        "get", "mget", "set", "unlink", "scan", "eval", "evalsha", "script|load",
        "publish", "subscribe", "unsubscribe", "ping",
    }
)  # fmt: skip


def redis_commands() -> frozenset[str]:
    """Every command a TieredCache / AsyncTieredCache sends to its L2."""
    from . import _l2, _redis_backend

    return CONNECTION_COMMANDS | _CLIENT | lua_commands(_l2, _redis_backend)
