"""Errors of the cache subsystem, all under :class:`sentia_core.errors.CacheError`.

``SerializationError`` (a value the codec cannot encode) lives in
``sentia_core.errors``; the payload errors below are raised by
:meth:`Codec.loads` and never reach the caller of ``get``: the cache turns them
into a miss and counts them.
"""

from __future__ import annotations

from sentia_core.errors import CacheError

__all__ = ["CorruptPayloadError", "InvalidKeyError", "PayloadError", "UntrustedPayloadError"]


class InvalidKeyError(CacheError, TypeError):
    """A cache key that is not a ``str`` (keys are never coerced; see docs/cache.md)."""

    def __init__(self, key: object) -> None:
        self.key = key
        super().__init__(
            f"cache keys are str, not {type(key).__name__} ({key!r:.80}); "
            "build the key explicitly, e.g. f'product:{id}'"
        )


class PayloadError(CacheError, ValueError):
    """A stored payload that the codec refused to decode.

    Attributes:
        reason: why, for people (``"bad signature"``, ``"zstd: ..."``).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class CorruptPayloadError(PayloadError):
    """The payload is damaged, truncated, of an unknown format or too large to inflate."""


class UntrustedPayloadError(PayloadError):
    """The payload's signature is missing or wrong; it was not deserialized."""
