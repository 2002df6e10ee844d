"""The codec: exact round trips, refusal at encode time, and defensive decoding."""

from __future__ import annotations

import contextlib
import enum
import hashlib
import hmac
import io
import math
import pickle
import threading
from decimal import Decimal
from typing import Any

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from sentia_core.cache import (
    Codec,
    CorruptPayloadError,
    PayloadError,
    PickleSerializer,
    UntrustedPayloadError,
)
from sentia_core.errors import ConfigError, SerializationError

from .strategies import same, values

SECRET = b"a-secret-of-at-least-16-bytes"

JSON = Codec()
SIGNED_JSON = Codec(secret=SECRET)
PICKLE = Codec("pickle", secret=SECRET)


class TestRoundTrip:
    @given(values)
    def test_json_round_trips_exactly(self, value: Any) -> None:
        assert same(JSON.loads(JSON.dumps(value)), value)

    @given(values)
    def test_signed_json_round_trips_exactly(self, value: Any) -> None:
        assert same(SIGNED_JSON.loads(SIGNED_JSON.dumps(value)), value)

    @given(values)
    def test_signed_pickle_round_trips_exactly(self, value: Any) -> None:
        assert same(PICKLE.loads(PICKLE.dumps(value)), value)

    @given(values)
    def test_measure_is_the_serialized_length(self, value: Any) -> None:
        assert JSON.measure(value) == len(JSON.serialize(value)[1])
        assert PICKLE.measure(value) == len(PICKLE.serialize(value)[1])

    def test_nan_and_infinities_survive(self) -> None:
        for value in (math.inf, -math.inf):
            assert JSON.loads(JSON.dumps(value)) == value
        assert math.isnan(JSON.loads(JSON.dumps(math.nan)))
        assert JSON.loads(JSON.dumps(Decimal("NaN"))).is_nan()

    def test_bytes_and_str_are_passed_through_raw(self) -> None:
        assert JSON.dumps(b"\x00raw") == b"\x02\x00raw"
        assert JSON.dumps("text") == b"\x03text"

    def test_a_dict_using_the_tag_key_is_not_mistaken_for_a_tagged_value(self) -> None:
        value = {"\x00": "t", "v": [1, 2]}
        assert JSON.loads(JSON.dumps(value)) == value


class TestRefusedAtEncodeTime:
    class Color(enum.IntEnum):
        RED = 1

    class Name(str):
        pass

    @pytest.mark.parametrize(
        ("value", "type_name"),
        [
            (object(), "builtins.object"),
            (Color.RED, "Color"),
            (Name("x"), "Name"),
            (bytearray(b"x"), "bytearray"),
            ({"k": threading.Lock()}, "lock"),
            ([1, complex(1, 2)], "complex"),
        ],
    )
    def test_unsupported_types_raise_naming_the_type(self, value: Any, type_name: str) -> None:
        with pytest.raises(SerializationError, match=type_name):
            JSON.dumps(value)
        with pytest.raises(TypeError):  # SerializationError is a TypeError too
            JSON.measure(value)

    def test_recursive_values_raise(self) -> None:
        loop: list[Any] = []
        loop.append(loop)
        with pytest.raises(SerializationError):
            JSON.dumps(loop)

    def test_too_deep_values_raise(self) -> None:
        deep: Any = 1
        for _ in range(150):
            deep = [deep]
        with pytest.raises(SerializationError, match="deeper"):
            JSON.dumps(deep)

    def test_unpicklable_values_raise_naming_the_type(self) -> None:
        with pytest.raises(SerializationError, match="lock"):
            PICKLE.dumps(threading.Lock())


class TestCompression:
    def test_bodies_above_the_threshold_are_compressed(self) -> None:
        codec = Codec(compress_threshold=100)
        small = codec.dumps("x" * 100)
        large = codec.dumps("x" * 101)
        assert small[0] & 0x80 == 0
        assert large[0] & 0x80
        assert len(large) < 101
        assert codec.loads(large) == "x" * 101

    def test_incompressible_bodies_stay_plain(self) -> None:
        noise = hashlib.sha512(b"seed").digest() * 1  # 64 random-looking bytes
        codec = Codec(compress_threshold=10)
        assert codec.dumps(noise)[0] & 0x80 == 0

    def test_threshold_none_never_compresses(self) -> None:
        assert Codec(compress_threshold=None).dumps("x" * 10_000)[0] & 0x80 == 0

    def test_plain_and_compressed_payloads_coexist(self) -> None:
        writer = Codec(compress_threshold=None)
        reader = Codec(compress_threshold=0)
        assert reader.loads(writer.dumps({"a": "b" * 2000})) == {"a": "b" * 2000}
        assert writer.loads(reader.dumps({"a": "b" * 2000})) == {"a": "b" * 2000}


def _zstd(data: bytes, *, with_size: bool = True) -> bytes:
    cctx = zstandard.ZstdCompressor(write_content_size=with_size)
    if with_size:
        return cctx.compress(data)
    out = io.BytesIO()
    with cctx.stream_writer(out, closefd=False) as writer:
        writer.write(data)
    return out.getvalue()


class TestHostilePayloads:
    def test_a_zstd_bomb_is_refused_before_inflating(self) -> None:
        codec = Codec(max_decompressed_size=1024 * 1024)
        bomb = bytes([0x80 | 3]) + _zstd(b"\x00" * (200 * 1024 * 1024))
        assert len(bomb) < 100_000
        with pytest.raises(CorruptPayloadError, match="max_decompressed_size"):
            codec.loads(bomb)

    def test_a_frame_that_hides_its_size_is_refused(self) -> None:
        frame = _zstd(b"y" * 5000, with_size=False)
        assert zstandard.frame_content_size(frame) == -1
        with pytest.raises(CorruptPayloadError, match="declare"):
            JSON.loads(bytes([0x80 | 3]) + frame)

    def test_a_small_frame_decoding_to_millions_of_values_is_refused(self) -> None:
        # issue 12, item 5: under max_decompressed_size, but 3M JSON values
        from sentia_core.cache._codec import MAX_DECODED_ITEMS

        body = b"[" + b"0," * (3 * MAX_DECODED_ITEMS) + b"0]"
        bomb = bytes([0x80 | 1]) + _zstd(body)
        assert len(bomb) < 10_000 and len(body) < JSON.max_decompressed_size
        with pytest.raises(CorruptPayloadError, match="max_items"):
            JSON.loads(bomb)
        with pytest.raises(CorruptPayloadError, match="max_items"):
            JSON.loads_many([bomb, JSON.dumps([1])])

    def test_the_decoded_values_bound_is_a_parameter_and_exact_at_its_edge(self) -> None:
        from sentia_core.cache import JsonSerializer

        codec = Codec(JsonSerializer(max_items=100), compress_threshold=None)
        assert codec.loads(codec.dumps(list(range(99)))) == list(range(99))  # 100 values
        with pytest.raises(CorruptPayloadError):
            codec.loads(codec.dumps(list(range(100))))
        assert codec.loads(codec.dumps("x," * 200)) == "x," * 200  # a str is not JSON
        with pytest.raises(ConfigError, match="max_items"):
            JsonSerializer(max_items=0)

    def test_an_empty_payload_in_a_batch_is_corrupt_not_an_index_error(self) -> None:
        # issue 12, item 4: loads_many indexed the header of an empty payload
        envelope = b"E" * 11
        with pytest.raises(CorruptPayloadError):
            JSON.loads_many([envelope + JSON.dumps(1), envelope], offset=11)
        with pytest.raises(CorruptPayloadError):
            JSON.loads_many([b""])

    def test_a_bomb_inside_a_signed_payload_is_still_bounded(self) -> None:
        codec = Codec(secret=SECRET, max_decompressed_size=4096)
        body = _zstd(b"z" * 10_000_000)
        head = bytes([0x80 | 0x40 | 3])
        mac = hmac.new(SECRET, head + body, hashlib.sha256).digest()
        with pytest.raises(CorruptPayloadError):
            codec.loads(head + mac + body)

    @given(st.binary(max_size=200))
    def test_arbitrary_bytes_never_escape_as_anything_but_payload_errors(self, data: bytes) -> None:
        for codec in (JSON, SIGNED_JSON, PICKLE):
            with contextlib.suppress(PayloadError):
                codec.loads(data)

    @given(values, st.data())
    def test_truncated_or_flipped_payloads_fail_cleanly(
        self, value: Any, data: st.DataObject
    ) -> None:
        payload = SIGNED_JSON.dumps(value)
        cut = data.draw(st.integers(1, len(payload) - 1))
        with pytest.raises(UntrustedPayloadError):
            SIGNED_JSON.loads(payload[:cut])
        pos = data.draw(st.integers(0, len(payload) - 1))
        bit = data.draw(st.integers(0, 7))
        flipped = bytearray(payload)
        flipped[pos] ^= 1 << bit
        with pytest.raises(UntrustedPayloadError):
            SIGNED_JSON.loads(bytes(flipped))

    @given(values, st.data())
    def test_unsigned_corruption_is_a_payload_error_or_a_value(
        self, value: Any, data: st.DataObject
    ) -> None:
        payload = bytearray(JSON.dumps(value))
        pos = data.draw(st.integers(0, len(payload) - 1))
        payload[pos] = data.draw(st.integers(0, 255))
        with contextlib.suppress(PayloadError):
            JSON.loads(bytes(payload))

    @pytest.mark.parametrize(
        "body",
        [
            b'{"\\u0000":"nope","v":1}',
            b'{"\\u0000":"t","v":1}',
            b'{"\\u0000":"dt","v":"not a date"}',
            b'{"\\u0000":"map","v":[[[1],2]]}',
            b'{"\\u0000":"b","v":"!!"}',
            b'{"\\u0000":"td","v":[1.5,0,0]}',
            b"[" * 100_000,
            b"1" * 10_000,
            b"\xff\xfe",
        ],
    )
    def test_hostile_json_is_corrupt_not_a_crash(self, body: bytes) -> None:
        with pytest.raises(CorruptPayloadError):
            JSON.loads(b"\x01" + body)

    def test_unknown_formats_and_empty_payloads_are_corrupt(self) -> None:
        with pytest.raises(CorruptPayloadError):
            JSON.loads(b"")
        with pytest.raises(CorruptPayloadError, match="format"):
            JSON.loads(b"\x3f{}")


_PWNED: list[str] = []


def _record(message: str) -> None:
    _PWNED.append(message)


class _Exploit:
    def __reduce__(self) -> tuple[Any, ...]:
        return (_record, ("code ran",))


class TestPickleIsNeverLoadedUnverified:
    def setup_method(self) -> None:
        _PWNED.clear()

    def test_a_pickle_payload_reaching_a_json_cache_is_refused(self) -> None:
        evil = b"\x04" + pickle.dumps(_Exploit())
        with pytest.raises(UntrustedPayloadError, match="pickle"):
            JSON.loads(evil)
        assert _PWNED == []

    def test_an_unsigned_pickle_payload_is_refused(self) -> None:
        evil = b"\x04" + pickle.dumps(_Exploit())
        with pytest.raises(UntrustedPayloadError, match="unsigned"):
            PICKLE.loads(evil)
        assert _PWNED == []

    def test_a_pickle_signed_with_another_secret_is_refused(self) -> None:
        other = Codec("pickle", secret=b"someone-elses-secret!")
        with pytest.raises(UntrustedPayloadError, match="bad signature"):
            PICKLE.loads(other.dumps(_Exploit()))
        assert _PWNED == []

    def test_a_correctly_signed_pickle_is_loaded(self) -> None:
        PICKLE.loads(PICKLE.dumps(_Exploit()))
        assert _PWNED == ["code ran"]

    def test_a_signed_payload_reaching_a_codec_without_secret_is_refused(self) -> None:
        with pytest.raises(UntrustedPayloadError):
            JSON.loads(SIGNED_JSON.dumps("x"))


class TestSecretRotation:
    def test_old_secrets_verify_but_never_sign(self) -> None:
        old = Codec(secret=b"old-secret-0123456789")
        new = Codec(secret=b"new-secret-0123456789", old_secrets=[b"old-secret-0123456789"])
        assert new.loads(old.dumps({"a": 1})) == {"a": 1}
        with pytest.raises(UntrustedPayloadError):
            old.loads(new.dumps("v"))

    def test_dropping_an_old_secret_rejects_its_payloads(self) -> None:
        old = Codec(secret=b"old-secret-0123456789")
        newest = Codec(secret=b"newest-secret-0123456789")
        with pytest.raises(UntrustedPayloadError):
            newest.loads(old.dumps("v"))

    def test_str_secrets_are_utf8(self) -> None:
        a = Codec(secret="é-secret-0123456789")
        b = Codec(secret="é-secret-0123456789".encode())
        assert b.loads(a.dumps(1)) == 1


class TestConfiguration:
    def test_pickle_without_a_secret_is_refused(self) -> None:
        with pytest.raises(ConfigError) as err:
            Codec("pickle")
        assert err.value.parameter == "secret"

    @pytest.mark.parametrize(
        ("kwargs", "parameter"),
        [
            ({"serializer": "yaml"}, "serializer"),
            ({"secret": b"short"}, "secret"),
            ({"secret": 123}, "secret"),
            ({"old_secrets": [b"x" * 20]}, "old_secrets"),
            ({"secret": SECRET, "old_secrets": b"x" * 20}, "old_secrets"),
            ({"compress_threshold": -1}, "compress_threshold"),
            ({"compress_threshold": 1.5}, "compress_threshold"),
            ({"compress_level": 0}, "compress_level"),
            ({"compress_level": 23}, "compress_level"),
            ({"max_decompressed_size": 0}, "max_decompressed_size"),
        ],
    )
    def test_bad_arguments_name_the_parameter(self, kwargs: dict[str, Any], parameter: str) -> None:
        with pytest.raises(ConfigError) as err:
            Codec(**kwargs)
        assert err.value.parameter == parameter

    def test_a_secret_is_never_echoed_in_errors(self) -> None:
        with pytest.raises(ConfigError) as err:
            Codec(secret=b"tiny-secret")
        assert "tiny" not in str(err.value)

    def test_custom_serializers_plug_in_with_their_own_format(self) -> None:
        class Upper:
            format_id = 20
            safe = True

            def dumps(self, value: Any) -> bytes:
                if not isinstance(value, list):
                    raise TypeError("lists only")
                return ",".join(map(str, value)).encode()

            def loads(self, data: bytes) -> Any:
                return [int(x) for x in data.decode().split(",")]

        codec = Codec(Upper())
        assert codec.dumps([1, 2])[0] == 20
        assert codec.loads(codec.dumps([1, 2])) == [1, 2]
        assert codec.loads(codec.dumps("raw str")) == "raw str"
        with pytest.raises(SerializationError, match="lists only"):
            codec.dumps({"a": 1})
        with pytest.raises(CorruptPayloadError):
            codec.loads(b"\x14x,y")
        with pytest.raises(CorruptPayloadError, match="format"):
            codec.loads(JSON.dumps([1]))

    def test_custom_serializers_need_a_user_format_id(self) -> None:
        class Bad:
            format_id = 1
            safe = True

            def dumps(self, value: Any) -> bytes:
                return b""

            def loads(self, data: bytes) -> Any:
                return None

        with pytest.raises(ConfigError, match="16..63"):
            Codec(Bad())

    def test_an_unsafe_custom_serializer_needs_a_secret(self) -> None:
        class Unsafe(PickleSerializer):
            pass

        with pytest.raises(ConfigError):
            Codec(Unsafe())
