"""Turning values into bytes and back: serialize, compress, sign.

Theory of operation. A *payload* is what a byte-oriented layer (an L1 that
stores payloads, the Redis L2) holds::

    +--------+----------------------+------------------------------+
    | header | HMAC-SHA256 (32 B)   | body (maybe zstd-compressed) |
    +--------+----------------------+------------------------------+
      1 byte   only if header & 0x40

The header byte says how to read the rest: bit 7 (``0x80``) the body is a zstd
frame, bit 6 (``0x40``) a signature follows, bits 0-5 the *format*: ``1`` the
tagged-JSON serializer, ``2`` raw ``bytes``, ``3`` raw UTF-8 ``str``, ``4``
pickle, ``16..63`` user serializers. So compressed and plain, signed and
unsigned, entries written by older and newer configurations coexist.

Decoding is defensive because a shared store is shared with whoever can write
to it. In order: the signature is checked first (when a secret is configured
every payload must carry a valid one, from the current secret or one of the
``old_secrets``; a payload whose format is pickle is refused unless the codec
itself is configured for signed pickle) -- nothing unverified is ever
decompressed or deserialized; then the zstd frame must declare its content
size and that size must be at most ``max_decompressed_size`` (a crafted frame
cannot make us allocate more); only then is the body deserialized. Every
failure is a :class:`PayloadError`; the cache turns it into a miss and counts
it.

The default serializer is *tagged JSON*: JSON-native values pass as they are;
tuples, bytes, sets, dicts with non-``str`` keys, datetime/date/time/timedelta,
Decimal and UUID become small objects ``{"\\u0000": tag, "v": ...}`` that
decode back to the same type. Types are checked exactly (``type(v) is str``),
so a ``str`` subclass or an ``IntEnum`` is refused at ``set`` time with a
:class:`~sentia_core.errors.SerializationError` naming the type instead of
silently coming back as a plain ``str`` or ``int``.

*Your own types* (the codec extension): ``JsonSerializer(types=[User, ...])``
registers classes by exact type. Dataclasses, pydantic models and attrs
classes need nothing more (:meth:`TypeCodec.of` reads their fields); any
other class takes a :class:`TypeCodec` with an ``encode`` to JSON-able data
and a ``decode`` back. A registered value is written as ``{"\\u0000":
"x:<tag>", "v": <fields>}``; reading builds only registered classes, from
their fields (no import, no code named by the payload: nothing like pickle),
and a payload naming an unregistered tag, or fields the class refuses, is
corrupt (a miss).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import pickle
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal, Protocol, runtime_checkable

import zstandard

from sentia_core._validate import check_int
from sentia_core.errors import ConfigError, SerializationError

from ._errors import CorruptPayloadError, UntrustedPayloadError

__all__ = [
    "FORMAT_BYTES",
    "FORMAT_JSON",
    "FORMAT_PICKLE",
    "FORMAT_STR",
    "MAX_DECODED_ITEMS",
    "Codec",
    "JsonSerializer",
    "PickleSerializer",
    "Serializer",
    "TypeCodec",
]

FORMAT_JSON = 1
FORMAT_BYTES = 2
FORMAT_STR = 3
FORMAT_PICKLE = 4
_USER_FORMATS = range(16, 64)

_COMPRESSED = 0x80
_SIGNED = 0x40
_FORMAT_MASK = 0x3F
_MAC_LEN = 32

#: Nesting deeper than this is refused at encode time (and is corrupt at decode).
MAX_DEPTH = 100

DEFAULT_MAX_DECOMPRESSED_SIZE = 64 * 1024 * 1024
_SMALL_INT = 10**18


@runtime_checkable
class Serializer(Protocol):
    """Turns values into bytes and back (the body of a payload).

    Attributes:
        format_id: the format number written in the payload header: 16..63
            for your own serializers (1..15 are sentia_core's).
        safe: ``True`` if :meth:`loads` is harmless on bytes an attacker wrote
            (JSON is; pickle is not). An unsafe serializer needs a ``secret``.
    """

    format_id: int
    safe: bool

    def dumps(self, value: Any) -> bytes:
        """Encode ``value``; raise ``TypeError`` (or SerializationError) if it cannot."""
        ...

    def loads(self, data: bytes) -> Any:
        """Decode what :meth:`dumps` produced; raise any ``Exception`` on bad input."""
        ...


# -- tagged JSON --------------------------------------------------------------

_TAG = "\x00"


def _unsupported(value: object) -> SerializationError:
    t = type(value)
    return SerializationError(
        f"cannot encode a value of type {t.__module__}.{t.__qualname__} with the JSON "
        "serializer (it handles str, int, float, bool, None, list, tuple, dict, set, "
        "frozenset, bytes, datetime, date, time, timedelta, Decimal and UUID); "
        "convert it first or configure serializer='pickle' with a secret"
    )


def _encode(v: Any, depth: int, types: Any = None) -> Any:
    t = type(v)
    if t is str or t is int or t is float or t is bool or v is None:
        return v
    if depth >= MAX_DEPTH:
        raise SerializationError(f"value nested deeper than {MAX_DEPTH} levels")
    d = depth + 1
    if t is list:
        return [_encode(x, d, types) for x in v]
    if t is dict:
        for k in v:
            if type(k) is not str or k == _TAG:
                return {
                    _TAG: "map",
                    "v": [[_encode(k, d, types), _encode(x, d, types)] for k, x in v.items()],
                }
        return {k: _encode(x, d, types) for k, x in v.items()}
    if t is tuple:
        return {_TAG: "t", "v": [_encode(x, d, types) for x in v]}
    if t is bytes:
        return {_TAG: "b", "v": base64.b64encode(v).decode("ascii")}
    if t is datetime:
        return {_TAG: "dt", "v": v.isoformat()}
    if t is date:
        return {_TAG: "d", "v": v.isoformat()}
    if t is time:
        return {_TAG: "tm", "v": v.isoformat()}
    if t is timedelta:
        return {_TAG: "td", "v": [v.days, v.seconds, v.microseconds]}
    if t is Decimal:
        return {_TAG: "dec", "v": str(v)}
    if t is uuid.UUID:
        return {_TAG: "uuid", "v": str(v)}
    if t is set:
        return {_TAG: "set", "v": [_encode(x, d, types) for x in v]}
    if t is frozenset:
        return {_TAG: "fset", "v": [_encode(x, d, types) for x in v]}
    if types is not None:
        codec = types.get(t)
        if codec is not None:
            return {_TAG: codec.key, "v": _encode(codec.encode(v), d, types)}
    raise _unsupported(v)


_NATIVE = frozenset({str, int, float, bool, type(None)})


def _is_plain(v: Any, depth: int) -> bool:
    """True if ``v`` is JSON as it stands: the C encoder can take it unchanged.

    A read-only walk with the scalar checks inlined, so the common value (a
    dict of scalars and lists) costs no copy and no call per element.
    """
    if depth >= MAX_DEPTH:
        return False
    t = type(v)
    if t is dict:
        for k, x in v.items():
            if type(k) is not str or k == _TAG:
                return False
            if type(x) not in _NATIVE and not _is_plain(x, depth + 1):
                return False
        return True
    if t is list:
        for x in v:  # noqa: SIM110 - a plain loop beats all() over a generator here
            if type(x) not in _NATIVE and not _is_plain(x, depth + 1):
                return False
        return True
    return t in _NATIVE


def _timedelta(v: Any) -> timedelta:
    days, seconds, micros = v
    if not all(type(x) is int for x in v):
        raise ValueError("timedelta fields must be integers")
    return timedelta(days=days, seconds=seconds, microseconds=micros)


def _b64(v: Any) -> bytes:
    if type(v) is not str:
        raise ValueError("bytes must be base64 text")
    return base64.b64decode(v.encode("ascii"), validate=True)


def _str(v: Any) -> str:
    if type(v) is not str:
        raise ValueError("expected a string")
    return v


_DECODERS: dict[str, Any] = {
    "t": tuple,
    "map": dict,
    "b": _b64,
    "dt": lambda v: datetime.fromisoformat(_str(v)),
    "d": lambda v: date.fromisoformat(_str(v)),
    "tm": lambda v: time.fromisoformat(_str(v)),
    "td": _timedelta,
    "dec": lambda v: Decimal(_str(v)),
    "uuid": lambda v: uuid.UUID(_str(v)),
    "set": set,
    "fset": frozenset,
}
_LIST_TAGS = frozenset({"t", "map", "td", "set", "fset"})


def _hook(obj: dict[str, Any]) -> Any:
    if _TAG not in obj:
        return obj
    tag = obj[_TAG]
    decoder = _DECODERS.get(tag) if type(tag) is str else None
    if decoder is None or len(obj) != 2 or "v" not in obj:
        raise ValueError(f"unknown tagged object {tag!r}")
    v = obj["v"]
    if tag in _LIST_TAGS and type(v) is not list:
        raise ValueError(f"tag {tag!r} needs a list")
    return decoder(v)


def _refuse(value: Any) -> Any:
    raise _unsupported(value)


def _json_encoder() -> Callable[[Any], str]:
    """Compact ASCII JSON, built once: ``JSONEncoder.encode`` builds a new C
    encoder on every call, which costs more than encoding a small dict."""
    from json import encoder

    plain = json.JSONEncoder(
        ensure_ascii=True, check_circular=False, allow_nan=True, separators=(",", ":")
    ).encode
    make = getattr(encoder, "c_make_encoder", None)  # CPython's C accelerator
    if make is None:  # no C accelerator: the pure-Python encoder
        return plain
    chunks = make(
        None, _refuse, encoder.encode_basestring_ascii, None, ":", ",", False, False, True
    )

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    return encode


@dataclasses.dataclass(frozen=True, slots=True)
class TypeCodec:
    """How :class:`JsonSerializer` writes and reads one class of your own.

    Attributes:
        cls: the class (matched exactly: a subclass needs its own entry).
        tag: its name inside payloads; every process reading them must
            register the same tag. Default: ``module.QualName``.
        encode: ``(obj) -> data`` made of types the serializer handles.
        decode: ``(data) -> obj``; raising means the payload is corrupt.
    """

    cls: type
    tag: str
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]

    @property
    def key(self) -> str:
        """The tag as written in the payload."""
        return "x:" + self.tag

    @classmethod
    def of(cls, target: type, tag: str | None = None) -> TypeCodec:
        """A codec for a dataclass, a pydantic model or an attrs class (by its fields).

        Raises:
            ConfigError: ``target`` is none of these (give a TypeCodec instead).
        """
        if not isinstance(target, type):
            raise ConfigError("types", target, "expected a class or a TypeCodec")
        name = tag or f"{target.__module__}.{target.__qualname__}"
        if dataclasses.is_dataclass(target):
            names = tuple(f.name for f in dataclasses.fields(target) if f.init)
            return cls(target, name, lambda o: {n: getattr(o, n) for n in names},
                       _from_fields(target))  # fmt: skip
        dump = getattr(target, "model_dump", None)
        validate = getattr(target, "model_validate", None)
        if callable(dump) and callable(validate):  # pydantic v2
            return cls(target, name, lambda o: o.model_dump(mode="python"), validate)
        attrs_fields = getattr(target, "__attrs_attrs__", None)
        if attrs_fields is not None:
            names = tuple(a.name for a in attrs_fields if a.init)
            return cls(target, name, lambda o: {n: getattr(o, n) for n in names},
                       _from_fields(target))  # fmt: skip
        raise ConfigError(
            "types",
            target,
            "not a dataclass, pydantic model or attrs class: pass a TypeCodec(cls, tag, "
            "encode, decode)",
        )


def _from_fields(target: type) -> Callable[[Any], Any]:
    def decode(v: Any) -> Any:
        if type(v) is not dict:
            raise ValueError(f"{target.__qualname__} needs a table of fields")
        return target(**v)

    return decode


#: The most JSON values one payload may decode to (see :class:`JsonSerializer`).
MAX_DECODED_ITEMS = 1_000_000


def _json_items(data: bytes) -> int:
    """An upper bound on the JSON values in ``data``: every value but the first
    follows a ``,`` or opens an array or object (separators inside strings
    count too, so this errs high)."""
    return data.count(b",") + data.count(b"[") + data.count(b"{") + 1


class JsonSerializer:
    """The safe default: tagged JSON (see the module docstring for the types).

    Args:
        types: your own classes (dataclasses, pydantic models, attrs classes)
            or :class:`TypeCodec` entries, written and read by their fields.
        max_items: the most JSON values one body may hold (an upper bound
            counted from its ``,``, ``[`` and ``{`` before decoding, and only
            for bodies longer than ``max_items`` bytes, so small bodies pay
            nothing). A small zstd frame can inflate to tens of MiB of
            ``[0,0,...]``, which decodes to hundreds of MiB of objects: this
            bounds that work. A body above it fails to decode (a corrupt
            payload: a counted miss).

    Raises:
        ConfigError: an entry is neither, or two share a class or a tag; a
            bad ``max_items``.
    """

    format_id = FORMAT_JSON
    safe = True

    __slots__ = ("_by_tag", "_decoder", "_encoder", "_max_items", "_types")

    def __init__(
        self, types: Iterable[type | TypeCodec] = (), *, max_items: int = MAX_DECODED_ITEMS
    ) -> None:
        self._encoder = _json_encoder()
        self._max_items = check_int("max_items", max_items, minimum=1)
        registry: dict[type, TypeCodec] = {}
        by_tag: dict[str, TypeCodec] = {}
        for entry in types:
            codec = entry if isinstance(entry, TypeCodec) else TypeCodec.of(entry)
            if codec.cls in registry or codec.key in by_tag:
                raise ConfigError("types", codec.cls, "registered twice (class or tag)")
            registry[codec.cls] = codec
            by_tag[codec.key] = codec
        self._types = registry or None
        self._by_tag = by_tag
        hook = _hook
        if by_tag:

            def hook(obj: dict[str, Any]) -> Any:
                tag = obj.get(_TAG)
                if type(tag) is str and tag.startswith("x:"):
                    codec = by_tag.get(tag)
                    if codec is None or len(obj) != 2 or "v" not in obj:
                        raise ValueError(f"unknown tagged object {tag!r}")
                    return codec.decode(obj["v"])
                return _hook(obj)

        self._decoder = json.JSONDecoder(object_hook=hook).decode

    @property
    def types(self) -> tuple[TypeCodec, ...]:
        """The registered type codecs."""
        return tuple(self._by_tag.values())

    def dumps(self, value: Any) -> bytes:
        return self.text(value).encode("ascii")

    def text(self, value: Any) -> str:
        """The JSON text (ASCII) of ``value``; its length is the body's length."""
        try:
            return self._encoder(value if _is_plain(value, 0) else _encode(value, 0, self._types))
        except SerializationError:
            raise
        except RecursionError as exc:
            raise SerializationError("value is recursive or nested too deeply") from exc
        except (ValueError, TypeError, OverflowError) as exc:
            raise SerializationError(f"cannot encode value: {exc}") from exc

    def loads(self, data: bytes) -> Any:
        limit = self._max_items
        if len(data) > limit and _json_items(data) > limit:
            raise ValueError(f"more than {limit} JSON values (max_items)")
        return self._decoder(data.decode("ascii"))

    def __repr__(self) -> str:
        if self._by_tag:
            return f"JsonSerializer(types=[{', '.join(c.tag for c in self._by_tag.values())}])"
        return "JsonSerializer()"


_APPROX_MAX_OBJECTS = 10_000


def _approx_size(value: Any) -> int:
    """Shallow sizes summed over ``value``'s object graph (cycles counted once, bounded)."""
    import sys

    seen: set[int] = set()
    stack: list[tuple[Any, int]] = [(value, 0)]
    total = 0
    while stack and len(seen) < _APPROX_MAX_OBJECTS:
        obj, depth = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        try:
            total += sys.getsizeof(obj)
        except Exception:  # an object whose __sizeof__ misbehaves
            total += 64
        if depth >= MAX_DEPTH or isinstance(obj, (str, bytes, int, float, type)):
            continue
        d = depth + 1
        if isinstance(obj, dict):
            stack.extend((x, d) for kv in obj.items() for x in kv)
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend((x, d) for x in obj)
        else:
            attrs = getattr(obj, "__dict__", None)
            if isinstance(attrs, dict):
                stack.append((attrs, d))
            for name in getattr(type(obj), "__slots__", ()):
                if isinstance(name, str) and hasattr(obj, name):
                    stack.append((getattr(obj, name), d))
    return total


class PickleSerializer:
    """pickle (protocol 5). Unsafe on untrusted bytes: the codec requires a secret."""

    format_id = FORMAT_PICKLE
    safe = False

    __slots__ = ()

    def dumps(self, value: Any) -> bytes:
        try:
            return pickle.dumps(value, protocol=5)
        except Exception as exc:
            t = type(value)
            raise SerializationError(
                f"cannot pickle a value of type {t.__module__}.{t.__qualname__}: {exc}"
            ) from exc

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)  # reached only after the HMAC check

    def __repr__(self) -> str:
        return "PickleSerializer()"


# -- the codec ----------------------------------------------------------------


def _secret_bytes(parameter: str, secret: object, *, minimum: int) -> bytes:
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if not isinstance(secret, bytes):
        raise ConfigError(parameter, secret, "a secret is bytes or str")
    if len(secret) < minimum:
        raise ConfigError(parameter, "<redacted>", f"a secret needs at least {minimum} bytes")
    return secret


class _Zstd(threading.local):
    """One compressor/decompressor per thread (zstandard objects are not thread-safe)."""

    def __init__(self, level: int) -> None:
        self.compress = zstandard.ZstdCompressor(level=level, write_content_size=True).compress
        self.decompress = zstandard.ZstdDecompressor().decompress


class Codec:
    """Serializes, compresses and signs cache values; decodes them defensively.

    Args:
        serializer: ``"json"`` (default, safe tagged JSON), ``"pickle"`` (needs
            ``secret``) or a :class:`Serializer`.
        secret: HMAC-SHA256 key (at least 16 bytes; ``str`` is UTF-8 encoded).
            When given, every payload is signed and every payload read must
            carry a valid signature. Required for pickle and other unsafe
            serializers.
        old_secrets: previous secrets, accepted when verifying (never used to
            sign), so that a secret can be rotated without a flag day.
        compress_threshold: bodies longer than this many bytes are zstd
            compressed (kept only if smaller); ``None`` disables compression.
        compress_level: zstd level, 1..22.
        max_decompressed_size: largest body a compressed payload may inflate
            to, in bytes; a frame declaring more (or none) is corrupt.

    Raises:
        ConfigError: on any invalid argument, naming it.
    """

    __slots__ = (
        "_allowed",
        "_json",
        "_json_text",
        "_level",
        "_macs",
        "_max_size",
        "_serializer",
        "_signer",
        "_threshold",
        "_zstd",
    )

    def __init__(
        self,
        serializer: Literal["json", "pickle"] | Serializer = "json",
        *,
        secret: bytes | str | None = None,
        old_secrets: Sequence[bytes | str] = (),
        compress_threshold: int | None = 1024,
        compress_level: int = 3,
        max_decompressed_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE,
    ) -> None:
        if serializer == "json":
            ser: Serializer = JsonSerializer()
        elif serializer == "pickle":
            ser = PickleSerializer()
        elif isinstance(serializer, Serializer) and not isinstance(serializer, str):
            fid = serializer.format_id
            builtin = isinstance(serializer, (JsonSerializer, PickleSerializer))
            if not builtin and (isinstance(fid, bool) or fid not in _USER_FORMATS):
                raise ConfigError("serializer", serializer, "format_id must be in 16..63")
            ser = serializer
        else:
            raise ConfigError(
                "serializer", serializer, "expected 'json', 'pickle' or a Serializer object"
            )
        self._serializer = ser
        self._json = type(ser) is JsonSerializer
        self._json_text = ser.text if isinstance(ser, JsonSerializer) else str
        if secret is None:
            if old_secrets:
                raise ConfigError("old_secrets", "<redacted>", "old_secrets need a secret")
            if not ser.safe:
                raise ConfigError(
                    "secret",
                    None,
                    f"{type(ser).__name__} can execute code when loading; it is only "
                    "allowed with a secret (payloads are then signed with HMAC-SHA256)",
                )
            self._signer = None
            self._macs: tuple[Any, ...] = ()
        else:
            key = _secret_bytes("secret", secret, minimum=16)
            if isinstance(old_secrets, (str, bytes)):
                raise ConfigError("old_secrets", "<redacted>", "a list of secrets, not one")
            olds = [_secret_bytes("old_secrets", s, minimum=1) for s in old_secrets]
            self._signer = hmac.new(key, digestmod=hashlib.sha256)
            self._macs = tuple(hmac.new(k, digestmod=hashlib.sha256) for k in (key, *olds))
        if compress_threshold is not None:
            compress_threshold = check_int("compress_threshold", compress_threshold, minimum=0)
        self._threshold = compress_threshold
        self._level = check_int("compress_level", compress_level, minimum=1)
        if self._level > 22:
            raise ConfigError("compress_level", compress_level, "zstd levels go up to 22")
        self._max_size = check_int("max_decompressed_size", max_decompressed_size, minimum=1)
        self._zstd = _Zstd(self._level)
        self._allowed = frozenset({FORMAT_BYTES, FORMAT_STR, ser.format_id})

    # -- encoding ------------------------------------------------------------

    @property
    def serializer(self) -> Serializer:
        """The serializer in use."""
        return self._serializer

    @property
    def signed(self) -> bool:
        """Whether payloads are signed (a secret is configured)."""
        return self._signer is not None

    @property
    def compress_threshold(self) -> int | None:
        """Bodies longer than this (bytes) are compressed; ``None``: never."""
        return self._threshold

    @property
    def max_decompressed_size(self) -> int:
        """The largest body a payload may inflate to (bytes)."""
        return self._max_size

    def serialize(self, value: Any) -> tuple[int, bytes]:
        """``(format, body)`` for ``value``: raw for ``bytes`` and ``str``, else the serializer.

        Raises:
            SerializationError: naming the type the serializer cannot encode.
        """
        t = type(value)
        if t is bytes:
            return FORMAT_BYTES, value
        if t is str:
            return FORMAT_STR, value.encode("utf-8", "surrogatepass")
        try:
            return self._serializer.format_id, self._serializer.dumps(value)
        except SerializationError:
            raise
        except Exception as exc:
            raise SerializationError(
                f"cannot encode a value of type {t.__module__}.{t.__qualname__}: {exc}"
            ) from exc

    def measure(self, value: Any) -> int:
        """The length in bytes of ``value``'s body (validates it like :meth:`serialize`)."""
        t = type(value)
        if t is str:
            return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
        if t is bytes:
            return len(value)
        if self._json:  # what JSON writes for these, without building it
            if t is int and -_SMALL_INT < value < _SMALL_INT:
                return len(repr(value))
            if value is None or t is bool:
                return 5 if value is False else 4
            return len(self._json_text(value))
        return len(self.serialize(value)[1])

    def measure_object(self, value: Any) -> int:
        """Bytes to charge an L1 that holds ``value`` itself (objects, no L2).

        What :meth:`measure` says when the serializer can encode it; for any
        other object (the L1 holds a reference, as ``cachetools`` does) an
        estimate: ``sys.getsizeof`` of the object and of what it holds,
        walked to a bounded depth and count.
        """
        try:
            return self.measure(value)
        except SerializationError:
            return _approx_size(value)

    def frame(self, fmt: int, body: bytes) -> bytes:
        """The payload for a serialized body: compress above the threshold, header, sign."""
        header = fmt
        threshold = self._threshold
        if threshold is not None and len(body) > threshold:
            packed = self._zstd.compress(body)
            if len(packed) < len(body):
                body = packed
                header |= _COMPRESSED
        signer = self._signer
        if signer is None:
            return bytes((header,)) + body
        header |= _SIGNED
        head = bytes((header,))
        mac = signer.copy()
        mac.update(head)
        mac.update(body)
        return head + mac.digest() + body

    def dumps(self, value: Any) -> bytes:
        """``frame(*serialize(value))``: the payload for ``value``."""
        return self.frame(*self.serialize(value))

    # -- decoding ------------------------------------------------------------

    def loads(self, payload: bytes, *, verify: bool = True) -> Any:
        """Decode a payload written by :meth:`dumps` (possibly by another process).

        Args:
            payload: the bytes.
            verify: check the signature (default). The cache passes False only
                for payloads it built itself and kept in its own memory.

        Raises:
            UntrustedPayloadError: missing or wrong signature, or a pickle payload
                reaching a codec that is not configured for signed pickle.
            CorruptPayloadError: anything else wrong (format, zstd, size, body).
        """
        if type(payload) is not bytes:
            try:
                payload = bytes(payload)
            except Exception as exc:
                raise CorruptPayloadError(f"payload is {type(payload).__name__}") from exc
        if not payload:
            raise CorruptPayloadError("empty payload")
        header = payload[0]
        fmt = header & _FORMAT_MASK
        if header & _SIGNED:
            if self._signer is None:
                raise UntrustedPayloadError("signed payload but this codec has no secret")
            if len(payload) < 1 + _MAC_LEN:
                raise UntrustedPayloadError("truncated signature")
            body = payload[1 + _MAC_LEN :]
            if verify and not self._verify(payload[:1], payload[1 : 1 + _MAC_LEN], body):
                raise UntrustedPayloadError("bad signature")
        else:
            if self._signer is not None:
                raise UntrustedPayloadError("unsigned payload")
            body = payload[1:]
        if fmt not in self._allowed:
            if fmt == FORMAT_PICKLE:
                raise UntrustedPayloadError("pickle payload refused (serializer is not pickle)")
            raise CorruptPayloadError(f"unknown payload format {fmt}")
        if header & _COMPRESSED:
            body = self._inflate(body)
        if fmt == FORMAT_BYTES:
            return body
        try:
            if fmt == FORMAT_STR:
                return body.decode("utf-8", "surrogatepass")
            return self._serializer.loads(body)
        except Exception as exc:
            raise CorruptPayloadError(f"cannot decode body: {type(exc).__name__}: {exc}") from exc

    def loads_many(self, raws: Sequence[bytes], offset: int = 0) -> list[Any]:
        """Decode a batch: each payload starts at ``offset`` of its ``raws`` item.

        The same result as ``[loads(r[offset:]) for r in raws]``; a batch of
        unsigned, uncompressed payloads of one format (the common batch read)
        is decoded without a call per item.

        Raises:
            PayloadError: as :meth:`loads`, for the first bad payload.
        """
        if self._signer is None and raws:
            try:
                heads = {r[offset] for r in raws}
            except IndexError:  # an empty payload: corrupt, reported item by item below
                heads = set()
            if len(heads) == 1:
                header = heads.pop()
                start = offset + 1
                if header == FORMAT_BYTES:
                    return [r[start:] for r in raws]
                if header == FORMAT_JSON and header in self._allowed:
                    decode = self._serializer.loads
                    try:
                        return [decode(r[start:]) for r in raws]
                    except Exception as exc:
                        raise CorruptPayloadError(
                            f"cannot decode body: {type(exc).__name__}: {exc}"
                        ) from exc
        loads = self.loads
        return [loads(r[offset:] if offset else r) for r in raws]

    def _verify(self, head: bytes, mac: bytes, body: bytes) -> bool:
        for base in self._macs:
            h = base.copy()
            h.update(head)
            h.update(body)
            if hmac.compare_digest(h.digest(), mac):
                return True
        return False

    def _inflate(self, body: bytes) -> bytes:
        try:
            size = zstandard.frame_content_size(body)
        except zstandard.ZstdError as exc:
            raise CorruptPayloadError(f"zstd: {exc}") from exc
        if size < 0:
            raise CorruptPayloadError("zstd frame does not declare its size")
        if size > self._max_size:
            raise CorruptPayloadError(
                f"zstd frame inflates to {size} bytes, above max_decompressed_size {self._max_size}"
            )
        try:
            out: bytes = self._zstd.decompress(body, max_output_size=self._max_size)
        except zstandard.ZstdError as exc:
            raise CorruptPayloadError(f"zstd: {exc}") from exc
        if len(out) != size:
            raise CorruptPayloadError("zstd frame size mismatch")
        return out

    def __repr__(self) -> str:
        return (
            f"Codec(serializer={self._serializer!r}, signed={self.signed}, "
            f"compress_threshold={self._threshold})"
        )
