"""The one place that turns a user's ``redis=`` argument into a client.

Every Redis-backed component accepts ``redis=`` as ``None`` (in-process), a
URL (``redis://``, ``rediss://`` with TLS, AUTH in the URL; passed straight to
redis-py) or a ready client (``redis.Redis``, ``redis.RedisCluster``, their
asyncio twins, or fakeredis). Keys are built with :func:`key` so that every
key of one logical object shares a hash tag and no command spans cluster
slots.
"""

from __future__ import annotations

from typing import Any

from .errors import ConfigError

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_SOCKET_TIMEOUT",
    "is_cluster",
    "key",
    "make_async_client",
    "make_client",
]

#: Connection and socket timeouts (seconds) used when we build the client from a URL.
#: Short on purpose: a dead Redis must not hang a request thread for seconds.
DEFAULT_CONNECT_TIMEOUT = 0.25
DEFAULT_SOCKET_TIMEOUT = 0.25


def key(namespace: str, tag: str, *parts: str) -> str:
    """``namespace:{tag}:part:part``: the braces make Redis Cluster hash only ``tag``."""
    base = f"{namespace}:{{{tag}}}"
    return ":".join((base, *parts)) if parts else base


def _url_or_client(parameter: str, redis: object) -> str | None:
    if isinstance(redis, str):
        if not redis.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                parameter, redis, "a Redis URL starts with redis://, rediss:// or unix://"
            )
        return redis
    return None


def make_client(
    redis: object,
    *,
    parameter: str = "redis",
    socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    cluster: bool = False,
) -> Any:
    """A synchronous client from a URL or an existing client (returned as is)."""
    url = _url_or_client(parameter, redis)
    if url is None:
        if redis is None or not hasattr(redis, "execute_command"):
            raise ConfigError(parameter, redis, "expected a Redis URL or a redis client")
        return redis
    import redis as redis_py

    if cluster:
        return redis_py.RedisCluster.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=connect_timeout
        )
    return redis_py.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        health_check_interval=30,
    )


def make_async_client(
    redis: object,
    *,
    parameter: str = "redis",
    socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    cluster: bool = False,
) -> Any:
    """An asyncio client from a URL or an existing client (returned as is)."""
    url = _url_or_client(parameter, redis)
    if url is None:
        if redis is None or not hasattr(redis, "execute_command"):
            raise ConfigError(parameter, redis, "expected a Redis URL or a redis.asyncio client")
        return redis
    import redis.asyncio as aioredis

    if cluster:
        return aioredis.RedisCluster.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=connect_timeout
        )
    return aioredis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        health_check_interval=30,
    )


def is_cluster(client: object) -> bool:
    """Whether ``client`` is a Redis Cluster client (sync or async)."""
    return type(client).__name__ == "RedisCluster"
