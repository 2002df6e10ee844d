"""The Redis value envelope, the invalidation messages and the replay journal (no I/O)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentia_core.cache import CorruptPayloadError
from sentia_core.cache._bus import MAX_REORDER, Bus
from sentia_core.cache._envelope import HEADER_SIZE, decode, decode_tags, encode, encode_tags
from sentia_core.cache._l2 import Pending


class TestEnvelope:
    @given(
        payload=st.binary(max_size=200),
        deadline=st.integers(min_value=-(2**63), max_value=2**63 - 1),
        tags=st.lists(st.text(min_size=1, max_size=30), max_size=5),
    )
    def test_an_envelope_round_trips(self, payload: bytes, deadline: int, tags: list[str]) -> None:
        region = encode_tags(tuple(tags))
        assert decode(encode(payload, deadline, region)) == (deadline, region, payload)
        assert decode_tags(region) == tuple(tags)

    def test_tags_may_hold_any_string(self) -> None:
        tags = ("日本", "\udcff", "a\x00b", "x" * 1000)
        assert decode_tags(encode_tags(tags)) == tags

    @pytest.mark.parametrize(
        "raw",
        [
            b"",
            b"\xe5" + b"\x00" * 9,  # one byte short of a header
            b"\x01" + b"\x00" * 12,  # unknown version
            encode(b"p", 0)[:9] + b"\x00\x09" + b"abc",  # tags past the end
        ],
    )
    def test_anything_else_is_corrupt(self, raw: bytes) -> None:
        with pytest.raises(CorruptPayloadError):
            decode(raw)

    @pytest.mark.parametrize("region", [b"\x00", b"\x00\x05ab", b"\x00\x02\xff\xfe"])
    def test_a_damaged_tags_region_is_corrupt(self, region: bytes) -> None:
        with pytest.raises(CorruptPayloadError):
            decode_tags(region)

    def test_tags_that_do_not_fit_are_refused(self) -> None:
        with pytest.raises(ValueError, match="65,535"):
            encode_tags(("x" * 70_000,))
        with pytest.raises(ValueError, match="65,535"):
            encode_tags(tuple("y" * 1000 for _ in range(70)))

    def test_the_header_is_eleven_bytes(self) -> None:
        assert HEADER_SIZE == 11
        assert len(encode(b"", 0)) == 11


def _bus(publisher: str = "me", **kw: float) -> Bus:
    return Bus(publisher, heartbeat=kw.get("heartbeat", 1.0), timeout=0.25, grace=1.0)


def _msg(publisher: str, seq: int, kind: str = "keys", targets: list[str] | None = None) -> bytes:
    body = {"v": 1, "p": publisher, "s": seq, "k": kind, "d": targets or ["k"], "t": 1000}
    return json.dumps(body).encode()


def _raw(**fields: object) -> bytes:
    body: dict[str, object] = {"v": 1, "p": "x", "s": 1, "k": "keys", "d": [], "t": 1}
    body.update(fields)
    return json.dumps(body).encode()


class TestMessages:
    def test_a_message_reaches_another_cache_as_a_notice(self) -> None:
        sender, receiver = _bus("a"), _bus("b")
        data = sender.message("tags", ("products", "p:1"), wall=100.0)
        notice, gap = receiver.receive(data, now=0.0, wall=100.002)
        assert notice is not None
        assert (notice.kind, notice.targets, notice.publisher, notice.seq) == (
            "tags",
            ("products", "p:1"),
            "a",
            1,
        )
        assert not gap
        assert receiver.last_delay == pytest.approx(0.002, abs=1e-3)

    def test_keys_survive_the_trip_whatever_they_contain(self) -> None:
        keys = ("\udcff", "日本", 'a"b', "")
        notice, _ = _bus("b").receive(_bus("a").message("keys", keys, 1.0), 0.0, 1.0)
        assert notice is not None
        assert notice.targets == keys

    def test_own_messages_are_skipped(self) -> None:
        bus = _bus("me")
        assert bus.receive(bus.message("clear", (), 1.0), 0.0, 1.0) == (None, False)

    @pytest.mark.parametrize(
        "data",
        [
            b"not json",
            b"[]",
            b'{"v": 2}',
            _raw(s=0),
            _raw(k="drop"),
            _raw(d=[1]),
            _raw(k="pattern", d=["a", "b"]),
            _raw(p=5),
            _raw(t=1.5),
            # issue 12, item 3: absurd but valid JSON
            _raw(t=10**400),
            _raw(s=10**400),
            _raw(t=-5),
            _raw(t="1"),
            _raw(t=True),
            _raw(s=True),
            b'{"v": 1, "p": "x", "s": 1, "k": "keys", "d": [], "t": NaN}',
            b'{"v": 1, "p": "x", "s": 1, "k": "keys", "d": [], "t": Infinity}',
            _raw(p="x" * 65),
            _raw(k="pattern", d=["*a" * 600]),
            _raw(k="pattern", d=["a[b"]),
            _raw(d="keys"),
            _raw(k=[]),  # unhashable: raised TypeError out of the listener
            _raw(k={}),
            b"[" * 100_000 + b"]" * 100_000,
            b"\xff\xfe",
            12345,
            None,
        ],
    )
    def test_malformed_messages_are_counted_and_ignored(self, data: object) -> None:
        bus = _bus()
        bus.receive(_msg("x", 1), 0.0, 1.0)
        before = bus.last_delay
        assert bus.receive(data, 0.0, 0.0) == (None, False)
        assert bus.malformed == 1
        assert bus.last_delay == before
        # the sequence state is untouched: the next message in order is no gap
        assert bus.receive(_msg("x", 2), 0.0, 1.0)[1] is False

    def test_a_sender_with_a_skewed_clock_does_not_corrupt_last_delay(self) -> None:
        bus = _bus()
        notice, gap = bus.receive(_raw(t=0), 0.0, wall=1.7e9)
        assert notice is not None and not gap  # still applied: it only drops entries
        assert bus.last_delay is None


class TestSequenceNumbers:
    def test_messages_in_order_never_clear(self) -> None:
        bus = _bus()
        for seq in range(1, 50):
            assert bus.receive(_msg("p", seq), now=seq, wall=0.0)[1] is False
        assert not bus.overdue(now=1000.0)

    def test_the_first_message_heard_from_a_publisher_sets_its_baseline(self) -> None:
        bus = _bus()
        assert bus.receive(_msg("p", 41), 0.0, 0.0)[1] is False
        assert bus.receive(_msg("p", 42), 0.0, 0.0)[1] is False
        assert not bus.overdue(100.0)

    def test_a_hole_filled_within_grace_is_reordering_not_loss(self) -> None:
        bus = _bus()
        bus.receive(_msg("p", 1), 0.0, 0.0)
        bus.receive(_msg("p", 3), 0.0, 0.0)
        assert not bus.overdue(0.5)
        bus.receive(_msg("p", 2), 0.6, 0.0)
        assert not bus.overdue(5.0)
        assert bus.gaps == 0

    def test_a_hole_still_open_after_grace_is_a_gap_reported_once(self) -> None:
        bus = _bus()
        bus.receive(_msg("p", 1), 0.0, 0.0)
        bus.receive(_msg("p", 3), 0.0, 0.0)
        assert not bus.overdue(0.99)
        assert bus.overdue(1.0)
        assert not bus.overdue(2.0)
        assert bus.gaps == 1

    def test_a_jump_too_large_to_be_reordering_is_a_gap_at_once(self) -> None:
        bus = _bus()
        bus.receive(_msg("p", 1), 0.0, 0.0)
        notice, gap = bus.receive(_msg("p", 2 + MAX_REORDER), 0.0, 0.0)
        assert gap
        assert notice is not None

    def test_publishers_are_tracked_separately(self) -> None:
        bus = _bus()
        for seq in (1, 2, 3):
            bus.receive(_msg("a", seq), 0.0, 0.0)
            bus.receive(_msg("b", seq + 10), 0.0, 0.0)
        assert not bus.overdue(100.0)

    def test_a_new_subscription_forgets_every_publisher(self) -> None:
        bus = _bus()
        bus.receive(_msg("p", 1), 0.0, 0.0)
        bus.receive(_msg("p", 3), 0.0, 0.0)
        bus.subscribed(0.5)
        assert not bus.overdue(10.0)

    @given(st.permutations(list(range(2, 30))))
    def test_any_reordering_of_a_complete_sequence_is_no_gap(self, order: list[int]) -> None:
        bus = _bus()
        bus.receive(_msg("p", 1), 0.0, 0.0)  # baseline
        for seq in order:
            bus.receive(_msg("p", seq), 0.1, 0.0)
        assert not bus.overdue(5.0)  # every hole was filled, however late
        assert bus.gaps == 0

    @given(st.integers(min_value=2, max_value=29), st.permutations(list(range(1, 31))))
    def test_a_lost_message_is_a_gap_once_grace_passes(self, lost: int, order: list[int]) -> None:
        bus = _bus()
        bus.receive(_msg("p", 1), 0.0, 0.0)  # baseline
        for seq in order:
            if seq not in (1, lost):
                bus.receive(_msg("p", seq), 0.1, 0.0)
        assert bus.overdue(5.0)


class TestLiveness:
    def test_a_quiet_but_pinging_channel_is_up(self) -> None:
        bus = _bus(heartbeat=1.0)
        bus.subscribed(0.0)
        assert not bus.ping_due(0.5)
        assert bus.ping_due(1.0)
        bus.alive(1.01)  # the pong
        assert not bus.silent(2.0)

    def test_no_pong_within_heartbeat_plus_timeout_is_down(self) -> None:
        bus = _bus(heartbeat=1.0)
        bus.subscribed(0.0)
        assert not bus.silent(1.25)
        assert bus.silent(1.26)

    def test_down_is_reported_once_and_a_resubscription_is_a_reconnection(self) -> None:
        bus = _bus()
        assert bus.subscribed(0.0) is False
        assert bus.down() is True
        assert bus.down() is False
        assert bus.up is False
        assert bus.subscribed(5.0) is True
        assert (bus.up, bus.downs) == (True, 1)


class TestPendingJournal:
    def test_taking_empties_it_and_restoring_puts_it_back(self) -> None:
        pending = Pending(limit=100)
        assert not pending.waiting
        pending.add("keys", ["a", "b"])
        pending.add("tags", ["t"])
        pending.add("pattern", ["u:*"])
        assert pending.waiting
        assert pending.size() == 4
        snap = pending.take()
        assert snap is not None
        assert not pending.waiting
        assert pending.take() is None
        pending.restore(snap)
        assert pending.size() == 4

    def test_past_its_limit_it_becomes_one_clear(self) -> None:
        pending = Pending(limit=10)
        pending.add("keys", [f"k{i}" for i in range(11)])
        snap = pending.take()
        assert snap is not None
        assert snap.clear
        assert not snap.keys
        pending.add("clear", ())
        pending.add("keys", ["more"])  # a clear subsumes everything after it too
        assert pending.size() == 1


class TestStoredBatch:
    def test_a_batch_builds_its_stored_values_only_when_indexed(self) -> None:
        from sentia_core.cache import StoredBatch, StoredValue

        batch = StoredBatch([b"a", b"b"], [3000.0, 5000.0], now=1000.0, scale=0.001)
        assert batch.payloads == [b"a", b"b"]
        assert batch._items is None
        assert len(batch) == 2
        assert batch[1] == StoredValue(b"b", 4.0)
        assert list(batch) == [StoredValue(b"a", 2.0), StoredValue(b"b", 4.0)]
        assert batch[:1] == [StoredValue(b"a", 2.0)]

    @given(st.lists(st.one_of(st.binary(), st.text(), st.integers(), st.none()), max_size=8))
    def test_a_batch_decodes_like_its_items_one_by_one(self, values: list[object]) -> None:
        from sentia_core.cache import Codec

        for codec in (Codec("json"), Codec("json", secret="batch-secret-0123456789")):
            raws = [b"HEADER" + codec.dumps(v) for v in values]
            one_by_one = [codec.loads(r[6:]) for r in raws]
            assert codec.loads_many(raws, 6) == one_by_one == values

    def test_a_bad_payload_in_a_uniform_batch_is_corrupt(self) -> None:
        from sentia_core.cache import Codec, CorruptPayloadError

        codec = Codec("json")
        raws = [codec.dumps({"a": 1}), b"\x01{not json"]
        with pytest.raises(CorruptPayloadError):
            codec.loads_many(raws)
