"""The least-privilege Redis ACL of an application, generated from the components.

Each Redis-backed component declares the commands it sends in its own
``_acl.py`` (client-side commands listed by hand, the commands inside its Lua
scripts read from the scripts); this module joins them with the key and
channel patterns of one application namespace. ``sentia redis-acl`` prints the
result, and tests/test_redis_acl.py runs every component against a real
redis-server where that user is the only one, checking that nothing outside
the list is ever sent.

Key patterns: everything the facade builds lives under ``NAMESPACE:`` (rate
limits, registry, shared breakers) or ``NAMESPACE.`` (caches, named
``NAMESPACE.cache.NAME``); channels the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from .errors import ConfigError

__all__ = ["COMPONENTS", "acl_rule", "component_commands"]


def _cache() -> frozenset[str]:
    from .cache._acl import redis_commands

    return redis_commands()


def _registry() -> frozenset[str]:
    from .registry._acl import redis_commands

    return redis_commands()


def _limiter() -> frozenset[str]:
    from .policies._ratelimit._acl import redis_commands

    return redis_commands()


def _breaker() -> frozenset[str]:
    from .breaker._acl import redis_commands

    return redis_commands()


#: Every Redis-backed component, by the name ``--component`` takes.
COMPONENTS: dict[str, Callable[[], frozenset[str]]] = {
    "breaker": _breaker,
    "cache": _cache,
    "limiter": _limiter,
    "registry": _registry,
}


def component_commands(components: Iterable[str] | None = None) -> dict[str, frozenset[str]]:
    """The commands each component sends (all components by default).

    Raises:
        ConfigError: an unknown component name.
    """
    names = list(COMPONENTS) if components is None else list(components)
    out = {}
    for name in names:
        if name not in COMPONENTS:
            known = ", ".join(sorted(COMPONENTS))
            raise ConfigError("component", name, f"unknown component (known: {known})")
        out[name] = COMPONENTS[name]()
    return out


def acl_rule(
    namespace: str,
    *,
    user: str = "sentia",
    password: str | None = None,
    components: Iterable[str] | None = None,
) -> str:
    """The ``ACL SETUSER`` line for an application using ``namespace``.

    Args:
        namespace: the application's ``namespace`` setting.
        user: the Redis user name.
        password: the user's password; only its SHA-256 is written (``#...``).
            None writes the placeholder ``>CHANGE-ME``.
        components: restrict to these components (default: all).

    Raises:
        ConfigError: a namespace or user that is not a plain name, an unknown component.
    """
    from .config import load

    load({"namespace": namespace})  # the same rules as the setting
    if not user or not all(c.isalnum() or c in "_.-" for c in user):
        raise ConfigError("user", user, "must be letters, digits or _.-")
    commands = set().union(*component_commands(components).values())
    secret = (
        ">CHANGE-ME" if password is None else "#" + hashlib.sha256(password.encode()).hexdigest()
    )
    parts = [
        "ACL SETUSER", user, "reset", "on", secret,
        f"~{namespace}:*", f"~{namespace}.*",
        "resetchannels", f"&{namespace}:*", f"&{namespace}.*",
        "-@all", *(f"+{c}" for c in sorted(commands)),
    ]  # fmt: skip
    return " ".join(parts)
