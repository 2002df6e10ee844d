"""Stage doubles that write to a shared log, so tests can read the pipeline's order."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sentia_core.errors import CircuitOpenError
from sentia_core.policies import Bulkhead, Retry, Timeout


class FakeBreaker:
    """A breaker that is open or closed on command and logs around the call."""

    def __init__(self, log: list[str], *, is_open: bool = False) -> None:
        self.log = log
        self.is_open = is_open

    @property
    def name(self) -> str:
        return "fake-breaker"

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        self.log.append("breaker>")
        if self.is_open:
            raise CircuitOpenError(self.name, 30.0)
        try:
            return fn(*args, **kwargs)
        finally:
            self.log.append("<breaker")

    async def call_async(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        self.log.append("breaker>")
        if self.is_open:
            raise CircuitOpenError(self.name, 30.0)
        try:
            return await fn(*args, **kwargs)
        finally:
            self.log.append("<breaker")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: float


class FakeLimiter:
    """Answers from a script of (allowed, retry_after); allows once the script is used up."""

    def __init__(self, log: list[str], *script: tuple[bool, float]) -> None:
        self.log = log
        self.script = deque(script)

    def hit(self, tier: str, key: str = "", cost: int = 1) -> Decision:
        self.log.append(f"rate:{tier}:{key}:{cost}")
        allowed, retry_after = self.script.popleft() if self.script else (True, 0.0)
        return Decision(allowed, retry_after)

    async def ahit(self, tier: str, key: str = "", cost: int = 1) -> Decision:
        await asyncio.sleep(0)
        return self.hit(tier, key, cost)


def _logged(log: list[str], label: str, wrapped: Callable[..., Any], original: Any) -> Any:
    if asyncio.iscoroutinefunction(original):

        async def async_logged(*args: Any, **kwargs: Any) -> Any:
            log.append(f"{label}>")
            try:
                return await wrapped(*args, **kwargs)
            finally:
                log.append(f"<{label}")

        return async_logged

    def logged(*args: Any, **kwargs: Any) -> Any:
        log.append(f"{label}>")
        try:
            return wrapped(*args, **kwargs)
        finally:
            log.append(f"<{label}")

    return logged


class LoggingRetry(Retry):
    def __init__(self, log: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.log = log

    def __call__(self, fn: Any) -> Any:  # type: ignore[override]
        return _logged(self.log, "retry", super().__call__(fn), fn)


class LoggingBulkhead(Bulkhead):
    def __init__(self, log: list[str], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log = log

    def __call__(self, fn: Any) -> Any:  # type: ignore[override]
        return _logged(self.log, "bulkhead", super().__call__(fn), fn)


class LoggingTimeout(Timeout):
    def __init__(self, log: list[str], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log = log

    def call(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.log.append("timeout>")
        try:
            return super().call(fn, *args, **kwargs)
        finally:
            self.log.append("<timeout")

    async def call_async(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.log.append("timeout>")
        try:
            return await super().call_async(fn, *args, **kwargs)
        finally:
            self.log.append("<timeout")
