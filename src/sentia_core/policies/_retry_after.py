"""Reading a server's "retry after" hint safely.

The hint comes from outside (an exception attribute, an HTTP header), so it is
treated as hostile: anything that is not a sane number of seconds is ignored
(the back-off strategy decides instead), negatives become 0, and nothing here
raises into the caller.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

__all__ = ["hint_seconds", "parse_retry_after", "retry_after_attribute"]

# An HTTP header longer than this is not a Retry-After value; do not parse it.
_MAX_HEADER_LEN = 64


def hint_seconds(value: object) -> float | None:
    """``value`` as seconds (int, float or ``timedelta``), or None if unusable.

    NaN and non-numbers give None; negatives give 0.0; infinity is kept (the
    caller caps it).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        seconds = value
    elif isinstance(value, int):
        seconds = float(value) if -(2**53) < value < 2**53 else math.copysign(math.inf, value)
    elif isinstance(value, timedelta):
        seconds = value.total_seconds()
    else:
        return None
    if math.isnan(seconds):
        return None
    return seconds if seconds > 0.0 else 0.0


def retry_after_attribute(outcome: object) -> float | None:
    """The default hint reader: ``outcome.retry_after`` if it is a usable number.

    Works for :class:`~sentia_core.errors.RateLimitExceeded`, for your own
    exceptions, and for result objects alike. A property that raises is
    treated as "no hint".
    """
    try:
        value = getattr(outcome, "retry_after", None)
    except Exception:
        return None
    return None if value is None else hint_seconds(value)


def parse_retry_after(value: str | bytes | None, *, now: float | None = None) -> float | None:
    """Parse an HTTP ``Retry-After`` header (RFC 9110 section 10.2.3) into seconds.

    Args:
        value: the header value: delta-seconds (``"120"``) or an HTTP-date
            (``"Wed, 21 Oct 2015 07:28:00 GMT"``); bytes are decoded as ASCII.
        now: the current wall-clock time (seconds since the epoch) to measure
            an HTTP-date against; defaults to the system time.

    Returns:
        Seconds to wait (>= 0), or None when the value is missing or malformed.
        A date in the past gives 0.0. Never raises.
    """
    if value is None:
        return None
    if isinstance(value, bytes):
        if len(value) > _MAX_HEADER_LEN:
            return None
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not isinstance(value, str) or len(value) > _MAX_HEADER_LEN:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    if now is None:
        now = datetime.now(timezone.utc).timestamp()
    try:
        seconds = when.timestamp() - now
    except (OverflowError, OSError, ValueError):
        return None
    return seconds if seconds > 0.0 else 0.0
