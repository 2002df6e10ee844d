"""The envelope around a payload stored in Redis: its deadline and its tags.

Theory of operation. Redis holds, under each value key, the codec's payload
prefixed by a small header::

    offset  size  field
    0       1     0xE5, the envelope version (a codec header never starts so)
    1       8     deadline: milliseconds since the epoch, big-endian signed,
                  on the *writer's* cache clock (``clock.time()``)
    9       2     T, the length of the tags region, big-endian unsigned
    11      T     the tags: each a big-endian u16 length and its UTF-8 bytes
    11+T    ...   the payload, exactly as :meth:`Codec.dumps` built it

Why the deadline travels with the value: a reader learns the remaining TTL
from the same ``GET`` (or ``MGET``) that brought the value, so an L2 hit is
one plain command -- no ``PTTL``, no script -- and a cache built on a
:class:`~sentia_core.testing.ManualClock` expires its Redis entries on that
clock too. Redis still gets a real ``PX`` TTL, so nothing outlives it.
Readers on other hosts compare the deadline with their own wall clock: clock
skew between hosts shifts expiry by the skew (NTP keeps it to milliseconds).

Why the tags travel with the value: a process that fills its L1 from Redis
learns the entry's tags, so a tag invalidation announced by another process
finds it; and the write script reads the *old* value's tags (bytes 9..10,
then the region) to take the key out of tag sets it no longer belongs to.

The header is not signed (the payload is, when the codec has a secret): a
forged header can only change when an entry expires or which invalidations
drop it, never what value is returned. Anything that does not parse is a
corrupt payload: counted, served as a miss, never an exception.
"""

from __future__ import annotations

import struct

from ._errors import CorruptPayloadError

__all__ = [
    "HEAD",
    "HEADER_SIZE",
    "MAGIC",
    "MAX_TAGS_REGION",
    "decode",
    "decode_tags",
    "encode",
    "encode_tags",
]

MAGIC = 0xE5
HEAD = struct.Struct(">BqH")
HEADER_SIZE = HEAD.size  # 11
MAX_TAGS_REGION = 0xFFFF
_U16 = struct.Struct(">H")


def encode_tags(tags: tuple[str, ...]) -> bytes:
    """The tags region for ``tags`` (``b""`` for none).

    Raises:
        ValueError: a tag longer than 65,535 UTF-8 bytes, or a region that
            would be (the caller turns it into a ConfigError naming ``tags``).
    """
    if not tags:
        return b""
    parts: list[bytes] = []
    for tag in tags:
        raw = tag.encode("utf-8", "surrogatepass")
        if len(raw) > 0xFFFF:
            raise ValueError("a tag is longer than 65,535 bytes")
        parts.append(_U16.pack(len(raw)))
        parts.append(raw)
    region = b"".join(parts)
    if len(region) > MAX_TAGS_REGION:
        raise ValueError("the tags of one entry take more than 65,535 bytes")
    return region


def encode(payload: bytes, deadline_ms: int, tags_region: bytes = b"") -> bytes:
    """The envelope holding ``payload`` until ``deadline_ms`` with ``tags_region``."""
    return HEAD.pack(MAGIC, deadline_ms, len(tags_region)) + tags_region + payload


def decode(raw: bytes) -> tuple[int, bytes, bytes]:
    """``(deadline_ms, tags_region, payload)`` of an envelope.

    Raises:
        CorruptPayloadError: ``raw`` is not an envelope (too short, unknown
            version, tags region past the end).
    """
    if len(raw) < HEADER_SIZE:
        raise CorruptPayloadError("envelope: too short")
    magic, deadline, n = HEAD.unpack_from(raw)
    if magic != MAGIC:
        raise CorruptPayloadError(f"envelope: unknown version 0x{magic:02x}")
    if n == 0:
        return deadline, b"", raw[HEADER_SIZE:]
    end = HEADER_SIZE + n
    if end > len(raw):
        raise CorruptPayloadError("envelope: tags region past the end")
    return deadline, raw[HEADER_SIZE:end], raw[end:]


def decode_tags(region: bytes) -> tuple[str, ...]:
    """The tags of a tags region.

    Raises:
        CorruptPayloadError: a length runs past the end, or bytes that are not UTF-8.
    """
    if not region:
        return ()
    tags: list[str] = []
    i = 0
    end = len(region)
    try:
        while i < end:
            if i + 2 > end:
                raise CorruptPayloadError("envelope: truncated tag length")
            (n,) = _U16.unpack_from(region, i)
            i += 2
            if i + n > end:
                raise CorruptPayloadError("envelope: tag past the end")
            tags.append(region[i : i + n].decode("utf-8", "surrogatepass"))
            i += n
    except UnicodeDecodeError as exc:
        raise CorruptPayloadError(f"envelope: tag is not UTF-8 ({exc.reason})") from None
    return tuple(tags)
