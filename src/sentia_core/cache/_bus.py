"""Cross-process L1 invalidation: the messages, the sequence check, liveness. No I/O.

Theory of operation
-------------------

Every cache with a Redis L2 publishes, on one pub/sub channel per namespace,
a message for each write and invalidation it makes, *after* the Redis change
(in the same pipeline, so Redis runs them in that order): ``keys`` (deleted
or overwritten), ``tags``, ``pattern`` or ``clear``. Every cache subscribed to
the channel drops the matching entries from its own L1 (its own messages are
skipped). A reader that fetched the old value from Redis just before the
change cannot install it afterwards: applying a message bumps the core's
epoch, and a fill whose read predates the epoch is not kept (``_core.py``).

*Lost messages.* Redis pub/sub delivers in order on a connection and only
drops messages by dropping the connection, so the listener treats any
disconnection as "everything may have been missed": the L1 is cleared when
the loss is noticed, and again when the subscription is back. On top of that
each publisher numbers its messages (``p`` its random id, ``s`` 1, 2, 3...).
Two threads of one publisher may reach Redis in either order, so a hole in
the numbers is only a *gap* once it stayed open for ``grace`` seconds (or
the jump is too large to be reordering): then the L1 is cleared.

*A silent channel.* A hung server (SIGSTOP) or a dead network leaves the
socket open. The listener pings the subscription every ``heartbeat``
seconds; if nothing (a message or the pong) arrived for ``heartbeat +
timeout`` seconds the channel is declared down: the L1 is cleared, and until
the subscription is confirmed again every L1 entry is kept at most
``disconnected_ttl`` seconds. Hence the documented bound: an entry
invalidated in another process is served by this one for at most the
propagation delay while the channel is up, and otherwise at most
``heartbeat + timeout + disconnected_ttl`` (plus one listener tick).

Messages are JSON (keys may be any ``str``, lone surrogates included) and
parsed defensively: anyone who can publish on the channel can only make
caches drop entries, never store or run anything. A message that is not
exactly what :meth:`Bus.message` builds (wrong types, a sequence number or
timestamp out of range, a publisher id longer than ``MAX_PUBLISHER``, a
pattern that does not compile or is longer than ``MAX_PATTERN_BYTES``, more
than ``MAX_MESSAGE`` bytes) is counted in ``malformed`` and ignored: it
neither drops the subscription nor clears the L1. A delay above
``MAX_DELAY`` seconds (a sender whose clock is off) is not taken into
``last_delay``.
"""

from __future__ import annotations

import itertools
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal, cast

from ._glob import InvalidPatternError, compile_glob

__all__ = ["Bus", "Notice", "NoticeKind"]

#: What a message invalidates.
NoticeKind = Literal["keys", "tags", "pattern", "clear"]
_KINDS = frozenset(("keys", "tags", "pattern", "clear"))

#: A jump in one publisher's numbers larger than this is a gap at once.
MAX_REORDER = 256

#: The largest message parsed (bytes).
MAX_MESSAGE = 64 * 1024 * 1024
#: Sequence numbers and timestamps (ms) beyond this are malformed.
MAX_INT = 2**63 - 1
#: Publisher ids longer than this are malformed (ours are 16 characters).
MAX_PUBLISHER = 64
#: A delivery delay above this (seconds) is a skewed clock, not a delay.
MAX_DELAY = 86400.0


@dataclass(frozen=True, slots=True)
class Notice:
    """One decoded invalidation message from another process.

    Attributes:
        kind: ``"keys"``, ``"tags"``, ``"pattern"`` or ``"clear"``.
        targets: the keys, the tags, the pattern (one item), or nothing.
        publisher: the sending cache's random id.
        seq: its sequence number.
        sent_at: the sender's wall-clock time (seconds) when it built the message.
    """

    kind: NoticeKind
    targets: tuple[str, ...]
    publisher: str
    seq: int
    sent_at: float


class _Publisher:
    __slots__ = ("high", "missing")

    def __init__(self, high: int) -> None:
        self.high = high
        #: seq -> when its absence was first noticed
        self.missing: dict[int, float] = {}


class Bus:
    """Builds this cache's messages and judges the ones it receives.

    Args:
        publisher_id: this cache's id (random; its own messages are skipped).
        heartbeat: seconds between pings of the subscription.
        timeout: seconds a ping may take (the socket timeout).
        grace: seconds a hole in a publisher's numbers may stay open.
        max_publishers: publishers remembered (least recently heard forgotten).
    """

    def __init__(
        self,
        publisher_id: str,
        *,
        heartbeat: float,
        timeout: float,
        grace: float,
        max_publishers: int = 4096,
    ) -> None:
        self.publisher_id = publisher_id
        self.heartbeat = heartbeat
        self.timeout = timeout
        self.grace = grace
        self._max_publishers = max_publishers
        self._seq = itertools.count(1)
        self._publishers: OrderedDict[str, _Publisher] = OrderedDict()
        #: whether the subscription is confirmed (written by the listener only)
        self.up = False
        self.last_alive = 0.0
        self.last_ping = 0.0
        # counters (the listener is the only writer of the receive side)
        self.sent = 0
        self.received = 0
        self.applied = 0
        self.malformed = 0
        self.gaps = 0
        self.reconnects = 0
        self.downs = 0
        self.last_delay: float | None = None

    # -- sending -----------------------------------------------------------------

    def message(self, kind: NoticeKind, targets: tuple[str, ...], wall: float) -> bytes:
        """The bytes to publish for an invalidation of ``targets`` (thread-safe)."""
        seq = next(self._seq)  # one C call: atomic under the GIL
        self.sent = max(self.sent, seq)  # a lost race only delays the count by one
        body = {
            "v": 1,
            "p": self.publisher_id,
            "s": seq,
            "k": kind,
            "d": list(targets),
            "t": round(wall * 1000),
        }
        return json.dumps(body, separators=(",", ":")).encode("ascii")

    # -- receiving ---------------------------------------------------------------

    def receive(self, data: object, now: float, wall: float) -> tuple[Notice | None, bool]:
        """Judge one message: ``(notice to apply or None, whether to clear the L1)``.

        Own messages and malformed ones give ``(None, False)`` (malformed ones
        are counted). A message that reveals a definite gap gives ``(notice,
        True)``: clear the L1 (the notice is then moot).
        """
        self.received += 1
        try:
            notice = _parse(data)
        except Exception:  # a case _parse did not foresee: still only malformed
            notice = None
        if notice is None:
            self.malformed += 1
            return None, False
        if notice.publisher == self.publisher_id:
            return None, False
        self.applied += 1
        delay = wall - notice.sent_at
        if delay <= MAX_DELAY:
            self.last_delay = max(0.0, delay)
        return notice, self._track(notice.publisher, notice.seq, now)

    def _track(self, publisher: str, seq: int, now: float) -> bool:
        pubs = self._publishers
        state = pubs.get(publisher)
        if state is None:
            pubs[publisher] = _Publisher(seq)
            if len(pubs) > self._max_publishers:
                pubs.popitem(last=False)
            return False
        pubs.move_to_end(publisher)
        high = state.high
        if seq == high + 1:
            state.high = seq
            return False
        if seq > high + 1:
            if seq - high > MAX_REORDER:
                state.high = seq
                state.missing.clear()
                self.gaps += 1
                return True
            for s in range(high + 1, seq):
                state.missing[s] = now
            state.high = seq
            return False
        state.missing.pop(seq, None)  # a late one filling its hole (or a duplicate)
        return False

    def overdue(self, now: float) -> bool:
        """True (once) if some hole stayed open longer than ``grace``: clear the L1."""
        found = False
        limit = now - self.grace
        for state in self._publishers.values():
            if state.missing and min(state.missing.values()) <= limit:
                state.missing.clear()
                found = True
        if found:
            self.gaps += 1
        return found

    # -- liveness ----------------------------------------------------------------

    def subscribed(self, now: float) -> bool:
        """The subscription is confirmed; returns True if it is a *re*connection."""
        again = self.reconnects > 0 or self.downs > 0
        self.up = True
        self.last_alive = self.last_ping = now
        self.reconnects += 1
        # numbering restarts from whatever each publisher sends next
        self._publishers.clear()
        return again

    def alive(self, now: float) -> None:
        """Something (a message, a pong) arrived on the subscription."""
        self.last_alive = now

    def ping_due(self, now: float) -> bool:
        """Whether to ping the subscription now (and note that it was)."""
        if now - self.last_ping >= self.heartbeat:
            self.last_ping = now
            return True
        return False

    def silent(self, now: float) -> bool:
        """Nothing heard for longer than ``heartbeat + timeout``: the channel is down."""
        return now - self.last_alive > self.heartbeat + self.timeout

    def down(self) -> bool:
        """The subscription is lost; returns True if it was up (clear the L1 once)."""
        was = self.up
        self.up = False
        if was:
            self.downs += 1
        return was

    def snapshot(self) -> dict[str, Any]:
        """Counters, for the cache's stats."""
        return {
            "up": self.up,
            "sent": self.sent,
            "received": self.received,
            "applied": self.applied,
            "malformed": self.malformed,
            "gaps": self.gaps,
            "downs": self.downs,
            "last_delay": self.last_delay,
        }


def _parse(data: object) -> Notice | None:
    if not isinstance(data, (bytes, bytearray, str)) or len(data) > MAX_MESSAGE:
        return None
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError, OverflowError):
        return None
    if not isinstance(body, dict) or body.get("v") != 1:
        return None
    publisher = body.get("p")
    seq = body.get("s")
    kind = body.get("k")
    targets = body.get("d")
    sent = body.get("t")
    if (
        not isinstance(publisher, str)
        or len(publisher) > MAX_PUBLISHER
        or type(seq) is not int
        or not 1 <= seq <= MAX_INT
        or type(kind) is not str
        or kind not in _KINDS
        or not isinstance(targets, list)
        or not all(isinstance(t, str) for t in targets)
        or type(sent) is not int
        or not 0 <= sent <= MAX_INT
    ):
        return None
    if kind == "pattern":
        if len(targets) != 1:
            return None
        try:
            compile_glob(targets[0])
        except InvalidPatternError:
            return None
    return Notice(cast(NoticeKind, kind), tuple(targets), publisher, seq, sent / 1000.0)
