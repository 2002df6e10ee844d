"""Cache keys: what a key may be, and the stable default key of ``@cached``.

Keys are ``str`` and are never coerced: ``get(42)`` raises
:class:`InvalidKeyError` rather than silently meaning ``get("42")`` (which a
later ``get("42")`` would then alias). ``@cached`` builds its keys itself:

    ``module.qualname(arg, arg, name=arg)``

where each argument is written with a *stable* ``repr``: the same on every
run and in every process (no ``id()``, no hash randomization), so that the Redis L2
shares entries across processes. Supported argument types
are ``str``, ``int``, ``float``, ``bool``, ``None``, ``bytes``, ``Decimal``,
``UUID``, ``datetime``/``date``/``time``/``timedelta``, ``Enum`` members and
``tuple``/``list``/``dict``/``set``/``frozenset`` of those (dicts and sets in
sorted order, so ``{"a":1,"b":2}`` and ``{"b":2,"a":1}`` share a key). Any
other type raises :class:`InvalidKeyError` asking for ``key=``. For methods
(first parameter ``self`` or ``cls``) the instance is left out of the key:
every instance shares the entries, as in dogpile.cache. An argument part
longer than 200 characters is replaced by ``#`` and a 128-bit BLAKE2b digest,
so keys stay short.
"""

from __future__ import annotations

import enum
import hashlib
import inspect
import re
import string
import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sentia_core.errors import ConfigError

from ._errors import InvalidKeyError

__all__ = [
    "KeyFunction",
    "check_key",
    "check_tags",
    "function_key",
    "function_tags",
    "is_method",
    "key_bytes",
]

MAX_ARG_PART = 200

KeyFunction = Callable[[tuple[Any, ...], dict[str, Any]], str]

_REPR_TYPES = (Decimal, uuid.UUID, datetime, date, time, timedelta)


def check_key(key: object) -> str:
    """``key`` if it is a ``str``, else :class:`InvalidKeyError`."""
    if isinstance(key, str):
        return key
    raise InvalidKeyError(key)


def key_bytes(key: str) -> int:
    """UTF-8 length of ``key``: its share of the L1 byte accounting."""
    return len(key) if key.isascii() else len(key.encode("utf-8", "surrogatepass"))


def check_tags(tags: object) -> tuple[str, ...]:
    """Tags as a tuple of non-empty strings (a lone ``str`` is refused: ``("x",)``, not ``"x"``)."""
    if not tags:
        return ()
    if isinstance(tags, (str, bytes)):
        raise ConfigError("tags", tags, "tags are a sequence of names; write tags=(name,)")
    if not isinstance(tags, Iterable):
        raise ConfigError("tags", tags, "tags are a sequence of non-empty strings")
    out = tuple(tags)
    for tag in out:
        if not isinstance(tag, str) or not tag:
            raise ConfigError("tags", tags, "every tag is a non-empty string")
    return out


def _arg(v: Any) -> str:
    t = type(v)
    if t is str or t is int or t is float or t is bool or v is None or t is bytes:
        return repr(v)
    if t is tuple:
        inner = ",".join(map(_arg, v))
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if t is list:
        return "[" + ",".join(map(_arg, v)) + "]"
    if t is dict:
        return "{" + ",".join(sorted(f"{_arg(k)}:{_arg(x)}" for k, x in v.items())) + "}"
    if t is set or t is frozenset:
        return t.__name__ + "{" + ",".join(sorted(map(_arg, v))) + "}"
    if t in _REPR_TYPES:
        return repr(v)
    if isinstance(v, enum.Enum):
        return f"{t.__qualname__}.{v.name}"
    raise InvalidKeyError(v)


def _digest(part: str) -> str:
    raw = part.encode("utf-8", "surrogatepass")
    return "#" + hashlib.blake2b(raw, digest_size=16).hexdigest()


def is_method(fn: Callable[..., Any]) -> bool:
    """A function defined in a class whose first parameter is ``self`` or ``cls``."""
    parts = getattr(fn, "__qualname__", "").split(".")
    if len(parts) < 2 or parts[-2] == "<locals>":
        return False
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return False
    return bool(params) and params[0] in ("self", "cls")


def function_key(
    fn: Callable[..., Any], key: str | Callable[..., str] | None, skip_first: bool
) -> KeyFunction:
    """The key builder for ``@cached``: ``(args, kwargs) -> str``.

    ``key`` may be ``None`` (the stable default above), a callable receiving
    the call's arguments (without ``self``/``cls``) and returning a ``str``, or a
    ``str.format`` template over the parameter names (``"product:{product_id}"``).
    """
    if callable(key):
        custom = key

        def from_callable(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
            if skip_first:
                args = args[1:]
            return check_key(custom(*args, **kwargs))

        return from_callable
    if isinstance(key, str):
        template = key
        sig = inspect.signature(fn)
        if skip_first:
            params = list(sig.parameters.values())[1:]
            sig = sig.replace(parameters=params)
        _check_template(template, sig)

        def from_template(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
            if skip_first:
                args = args[1:]
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            return template.format(**bound.arguments)

        return from_template
    if key is not None:
        raise ConfigError("key", key, "key is None, a format string or a callable")

    prefix = f"{fn.__module__}.{fn.__qualname__}("
    first = 1 if skip_first else 0

    def default(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        n = len(args) - first
        if n == 1 and not kwargs:  # the common case, inline: f(42), obj.f("sku")
            a = args[first]
            t = type(a)
            part = repr(a) if t is int or t is str else _arg(a)
        else:
            if first:
                args = args[1:]
            part = ",".join(map(_arg, args))
            if kwargs:
                named = ",".join(f"{k}={_arg(kwargs[k])}" for k in sorted(kwargs))
                part = f"{part},{named}" if part else named
        if len(part) > MAX_ARG_PART:
            part = _digest(part)
        return f"{prefix}{part})"

    return default


def _check_template(template: str, sig: inspect.Signature) -> None:
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ConfigError("key", template, f"not a valid format string: {exc}") from exc
    for field in fields:
        name = re.split(r"[.\[]", field, maxsplit=1)[0]
        if not name or name.isdigit():
            raise ConfigError("key", template, "use parameter names: {product_id}, not {} or {0}")
        if name not in sig.parameters:
            raise ConfigError("key", template, f"the function has no parameter {name!r}")


def function_tags(
    tags: Iterable[str] | Callable[..., Iterable[str]], skip_first: bool
) -> Callable[[tuple[Any, ...], dict[str, Any]], tuple[str, ...]]:
    """Tags for ``@cached``: fixed, or computed from the arguments (without ``self``)."""
    if callable(tags):
        fn = tags

        def dynamic(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, ...]:
            if skip_first:
                args = args[1:]
            return check_tags(fn(*args, **kwargs))

        return dynamic
    fixed = check_tags(tags)
    return lambda args, kwargs: fixed
