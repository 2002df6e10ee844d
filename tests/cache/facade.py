"""A synchronous face on an AsyncTieredCache, so the contract suite runs on it.

The async cache lives on a private event loop in a thread (:class:`LoopThread`);
every call is submitted there and waited for. Decorated functions come back
sync for sync functions and async (awaiting the private loop) for coroutine
functions, exactly as :meth:`TieredCache.cached` would return them.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, TypeVar

from sentia_core.cache import AsyncTieredCache, CacheStats

T = TypeVar("T")


class LoopThread:
    """An event loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def stop(self) -> None:
        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(drain())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class AsyncFacade:
    """TieredCache's sync API over an AsyncTieredCache on a LoopThread."""

    def __init__(self, cache: AsyncTieredCache, runner: LoopThread) -> None:
        self.inner = cache
        self._run = runner.run
        self._loop = runner.loop

    @property
    def namespace(self) -> str:
        return self.inner.namespace

    @property
    def degraded(self) -> bool:
        return self.inner.degraded

    def get(self, key: Any, default: Any = None) -> Any:
        return self._run(self.inner.get(key, default))

    def get_many(self, keys: Iterable[Any]) -> dict[str, Any]:
        return self._run(self.inner.get_many(keys))

    def set(self, key: Any, value: Any, ttl: Any = None, tags: Any = ()) -> None:
        self._run(self.inner.set(key, value, ttl, tags))

    def set_many(self, mapping: Mapping[Any, Any], ttl: Any = None, tags: Any = ()) -> None:
        self._run(self.inner.set_many(mapping, ttl, tags))

    def delete(self, key: Any) -> bool:
        return self._run(self.inner.delete(key))

    def delete_many(self, keys: Iterable[Any]) -> int:
        return self._run(self.inner.delete_many(keys))

    def invalidate_tags(self, *tags: Any) -> int:
        return self._run(self.inner.invalidate_tags(*tags))

    def invalidate_pattern(self, pattern: str) -> int:
        return self._run(self.inner.invalidate_pattern(pattern))

    def clear(self) -> None:
        self._run(self.inner.clear())

    def get_or_set(
        self, key: Any, loader: Callable[[], Any], ttl: Any = None, tags: Any = ()
    ) -> Any:
        return self._run(self.inner.get_or_set(key, loader, ttl, tags))

    def stats(self) -> CacheStats:
        return self.inner.stats()

    def reset_stats(self) -> None:
        self.inner.reset_stats()

    def close(self) -> None:
        self._run(self.inner.aclose())

    def cached(self, ttl: Any = None, **kw: Any) -> Any:
        if callable(ttl) and not isinstance(ttl, (int, float)):
            return self.cached()(ttl)

        def decorate(fn: Callable[..., Any]) -> Any:
            if inspect.iscoroutinefunction(fn):
                inner = self.inner.cached(ttl, **kw)(fn)

                @functools.wraps(fn)
                async def call_async(*args: Any, **kwargs: Any) -> Any:
                    future = asyncio.run_coroutine_threadsafe(inner(*args, **kwargs), self._loop)
                    return await asyncio.wrap_future(future)

                wrapper: Any = call_async
            else:

                @functools.wraps(fn)
                async def as_coroutine(*args: Any, **kwargs: Any) -> Any:
                    return fn(*args, **kwargs)

                inner = self.inner.cached(ttl, **kw)(as_coroutine)

                @functools.wraps(fn)
                def call(*args: Any, **kwargs: Any) -> Any:
                    return self._run(inner(*args, **kwargs))

                wrapper = call
            wrapper.invalidate = lambda *a, **k: self._run(inner.invalidate(*a, **k))
            wrapper.key_for = inner.key_for
            wrapper.cache = self
            return wrapper

        return decorate
