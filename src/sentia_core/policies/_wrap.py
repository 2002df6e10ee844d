"""One decorator body for strategies whose wrapper only forwards to ``call`` / ``call_async``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import update_wrapper
from typing import Any

from ._retry import is_coroutine_callable

__all__ = ["decorate"]


def decorate(
    what: str,
    fn: Callable[..., Any],
    call: Callable[..., Any],
    call_async: Callable[..., Awaitable[Any]],
) -> Callable[..., Any]:
    """``fn`` wrapped so each call goes through ``call(fn, ...)`` (or ``call_async``).

    Raises:
        TypeError: ``fn`` is not callable (``what`` names the decorator).
    """
    if not callable(fn):
        raise TypeError(f"{what} decorates a callable, got {fn!r}")
    wrapper: Callable[..., Any]
    if is_coroutine_callable(fn):

        async def wrapped_async(*args: Any, **kwargs: Any) -> Any:
            return await call_async(fn, *args, **kwargs)

        wrapper = wrapped_async
    else:

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            return call(fn, *args, **kwargs)

        wrapper = wrapped
    return update_wrapper(wrapper, fn)
