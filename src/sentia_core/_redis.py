"""The one place that turns a user's ``redis=`` argument into a client.

Every Redis-backed component accepts ``redis=`` as ``None`` (in-process), a
URL (``redis://``, ``rediss://`` with TLS, AUTH in the URL; passed straight to
redis-py) or a ready client (``redis.Redis``, ``redis.RedisCluster``, their
asyncio twins, or fakeredis). Keys are built with :func:`key` so that every
key of one logical object shares a hash tag and no command spans cluster
slots.
"""

from __future__ import annotations

import functools
import re
from types import ModuleType
from typing import Any

from .errors import ConfigError

__all__ = [
    "CONNECTION_COMMANDS",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_SOCKET_TIMEOUT",
    "is_cluster",
    "key",
    "lua_commands",
    "make_async_client",
    "make_client",
]

#: Connection and socket timeouts (seconds) used when we build the client from a URL.
#: Short on purpose: a dead Redis must not hang a request thread for seconds.
DEFAULT_CONNECT_TIMEOUT = 0.25
DEFAULT_SOCKET_TIMEOUT = 0.25


#: What redis-py itself sends on every connection (the handshake, the optional
#: SELECT of a database number, health-check pings). Part of every component's
#: Redis ACL (see ``sentia redis-acl``). Clients built from a URL do not send
#: ``CLIENT SETINFO`` (``lib_name=None``): one command less to grant, and no
#: refused command in the ACL LOG of a server that would deny it.
CONNECTION_COMMANDS = frozenset({"auth", "hello", "select", "ping"})

_LUA_CALL = re.compile(r"redis\.p?call\(\s*['\"]([A-Za-z|]+)['\"]")


def lua_commands(*modules: ModuleType) -> frozenset[str]:
    """The Redis commands the Lua scripts held in ``modules``' string constants call.

    Redis checks a script's ``redis.call`` commands against the caller's ACL,
    so they belong in the component's least-privilege list; read from the
    scripts themselves, the list cannot fall behind them.
    """
    found: set[str] = set()
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, str) and "redis." in value:
                found.update(m.lower() for m in _LUA_CALL.findall(value))
    return frozenset(found)


def key(namespace: str, tag: str, *parts: str) -> str:
    """``namespace:{tag}:part:part``: the braces make Redis Cluster hash only ``tag``."""
    base = f"{namespace}:{{{tag}}}"
    return ":".join((base, *parts)) if parts else base


@functools.cache
def _no_setinfo() -> dict[str, Any]:
    """The keyword that stops redis-py sending CLIENT SETINFO (it changed in redis-py 8)."""
    import inspect

    from redis.connection import AbstractConnection

    params = inspect.signature(AbstractConnection.__init__).parameters
    if "driver_info" in params:
        return {"driver_info": None}
    return {"lib_name": None, "lib_version": None}


def _url_or_client(parameter: str, redis: object) -> str | None:
    if isinstance(redis, str):
        if not redis.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                parameter, redis, "a Redis URL starts with redis://, rediss:// or unix://"
            )
        return redis
    return None


def _build(
    redis: object,
    *,
    asyncio: bool,
    parameter: str,
    socket_timeout: float,
    connect_timeout: float,
    cluster: bool,
) -> Any:
    url = _url_or_client(parameter, redis)
    if url is None:
        if redis is None or not hasattr(redis, "execute_command"):
            kind = "a redis.asyncio client" if asyncio else "a redis client"
            raise ConfigError(parameter, redis, f"expected a Redis URL or {kind}")
        return redis
    if asyncio:
        import redis.asyncio as module
    else:
        import redis as module  # type: ignore[no-redef]
    timeouts: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        **_no_setinfo(),
    }
    if cluster:
        return module.RedisCluster.from_url(url, **timeouts)
    return module.Redis.from_url(url, health_check_interval=30, **timeouts)


def make_client(
    redis: object,
    *,
    parameter: str = "redis",
    socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    cluster: bool = False,
) -> Any:
    """A synchronous client from a URL or an existing client (returned as is)."""
    return _build(
        redis, asyncio=False, parameter=parameter, socket_timeout=socket_timeout,
        connect_timeout=connect_timeout, cluster=cluster,
    )  # fmt: skip


def make_async_client(
    redis: object,
    *,
    parameter: str = "redis",
    socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    cluster: bool = False,
) -> Any:
    """An asyncio client from a URL or an existing client (returned as is)."""
    return _build(
        redis, asyncio=True, parameter=parameter, socket_timeout=socket_timeout,
        connect_timeout=connect_timeout, cluster=cluster,
    )  # fmt: skip


def is_cluster(client: object) -> bool:
    """Whether ``client`` is a Redis Cluster client (sync or async)."""
    return type(client).__name__ == "RedisCluster"
