"""Helpers for the Redis L2 tests: a client that counts round trips, polling."""

from __future__ import annotations

from collections import Counter
from typing import Any


class CountingPipeline:
    def __init__(self, owner: CountingRedis, inner: Any) -> None:
        self._owner = owner
        self._inner = inner
        self._names: list[str] = []

    def execute_command(self, *args: Any, **kw: Any) -> CountingPipeline:
        self._names.append(str(args[0]).upper())
        self._inner.execute_command(*args, **kw)
        return self

    def execute(self, raise_on_error: bool = True) -> Any:
        self._owner.round_trips += 1
        self._owner.commands.update(self._names)
        self._owner.batches.append(list(self._names))
        return self._inner.execute(raise_on_error=raise_on_error)


class CountingRedis:
    """Wraps a sync redis client; counts round trips and commands by name."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.round_trips = 0
        self.commands: Counter[str] = Counter()
        self.batches: list[list[str]] = []

    def execute_command(self, *args: Any, **kw: Any) -> Any:
        name = str(args[0]).upper()
        self.round_trips += 1
        self.commands[name] += 1
        self.batches.append([name])
        return self._inner.execute_command(*args, **kw)

    def pipeline(self, transaction: bool = True) -> CountingPipeline:
        return CountingPipeline(self, self._inner.pipeline(transaction=transaction))

    def reset(self) -> None:
        self.round_trips = 0
        self.commands.clear()
        self.batches.clear()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
