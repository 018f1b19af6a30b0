"""Hand-rolled protobuf wire encoding for the hot gNMI messages.

Why not the generated classes: a production-like subscription asks a 64-port
switch for ~2,000 leaves a second, and a lab process carries hundreds of
switches. Building ``Update``/``Path``/``TypedValue`` objects for each leaf
costs microseconds apiece; the bytes of a leaf's path never change, so they are
encoded once and each sample only appends the encoded value. The output is
byte-for-byte a valid ``gnmi.SubscribeResponse``/``GetResponse`` (the tests
parse it back with pygnmi's ``gnmi_pb2``).

Field numbers (gnmi.proto as shipped by pygnmi 0.8.x):
Notification{timestamp=1, prefix=2, update=4}; Update{path=1, val=3};
Path{origin=2, elem=3, target=4}; PathElem{name=1, key=2 (map)};
TypedValue{string_val=1, int_val=2, uint_val=3, bool_val=4, json_val=10,
json_ietf_val=11, double_val=14}; SubscribeResponse{update=1, sync_response=3};
GetResponse{notification=1}.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable, Sequence

_SMALL = [bytes((i,)) for i in range(128)]

# Encoding enum values from gnmi.proto.
JSON = 0
PROTO = 2
JSON_IETF = 4
ENCODING_NAMES = {0: "JSON", 1: "BYTES", 2: "PROTO", 3: "ASCII", 4: "JSON_IETF"}


def varint(value: int) -> bytes:
    """Base-128 varint; negative numbers as 64-bit two's complement (int64 fields)."""
    if 0 <= value < 128:
        return _SMALL[value]
    value &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


LENGTHS = [varint(i) for i in range(1 << 14)]  # varint of every length below 16 KiB, for the hot path


def field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag byte, length, payload."""
    n = len(payload)
    return tag + (_SMALL[n] if n < 128 else varint(n)) + payload


PathElems = Sequence[tuple[str, dict[str, str] | None]]


def encode_path(elems: PathElems, origin: str = "", target: str = "") -> bytes:
    """Encode a ``gnmi.Path`` (elements as (name, keys))."""
    out = []
    if origin:
        out.append(field(b"\x12", origin.encode()))
    for name, keys in elems:
        body = field(b"\x0a", name.encode())
        if keys:
            for key in sorted(keys):
                entry = field(b"\x0a", key.encode()) + field(b"\x12", str(keys[key]).encode())
                body += field(b"\x12", entry)
        out.append(field(b"\x1a", body))
    if target:
        out.append(field(b"\x22", target.encode()))
    return b"".join(out)


def update_head(path_bytes: bytes) -> bytes:
    """The constant start of an ``Update``: its ``path`` field, ready for a value to be appended."""
    return field(b"\x0a", path_bytes)


def encode_update(head: bytes, typed_value: bytes) -> bytes:
    """One ``Notification.update`` entry (field 4) from a path head and ``TypedValue`` bytes."""
    n = len(typed_value)
    update = head + b"\x1a" + (LENGTHS[n] if n < 16384 else varint(n)) + typed_value
    n = len(update)
    return b"\x22" + (LENGTHS[n] if n < 16384 else varint(n)) + update


# --- fixed-width JSON templates --------------------------------------------------------------------
# A whole notification group of numeric leaves (an interface's counters) is encoded by ONE bytes
# %-format: every number is right-aligned in a fixed width, so every length prefix is a constant and
# the group's bytes are a constant template with the values substituted. The padding is JSON
# insignificant whitespace (RFC 8259 section 2), so clients parse exactly the same values.
NUMERIC_WIDTH = {"u64": 20, "uint": 10, "int": 11, "dec": 26}  # uint8..32, int8..32: 10 and 11 digits
# JSON_IETF (RFC 7951 section 6.1): 64-bit integers and decimal64 are JSON strings. Their quoted text is
# built first (see ietf_quoter) and right-aligned in a wider field; the padding stays outside the quotes.
IETF_QUOTED_WIDTH = {"u64": 22, "dec": 28}


def json_template_pieces(
    rels: list[bytes], kinds: list[tuple[str, int]], group_len: int, encoding: int = JSON
) -> tuple[list[tuple[bytes, bytes]], int]:
    """Per numeric leaf, the constant bytes before and after the group's encoded path elements.

    Leaf i of a group whose PathElems encode to ``gb`` (``len(gb) == group_len``) renders as
    ``pre[i] + gb + post[i] % value``. The pieces depend only on the leaves and ``group_len``, so every
    group of the same shape shares them. Also returns the rendered length of all leaves together, which
    detects a value wider than its field.
    """
    pieces, total = [], 0
    tag = b"\x5a" if encoding == JSON_IETF else b"\x52"
    for rel, (kind, fd) in zip(rels, kinds, strict=True):
        if encoding == JSON_IETF and kind in IETF_QUOTED_WIDTH:
            width = IETF_QUOTED_WIDTH[kind]
            spec = b"%" + str(width).encode() + b"b"
        else:
            width = NUMERIC_WIDTH[kind]
            spec = b"%" + str(width).encode() + (b"." + str(fd).encode() + b"f" if kind == "dec" else b"d")
        path_len = group_len + len(rel)
        head_len = 1 + len(varint(path_len)) + path_len
        tv_len = 2 + width  # json_val tag + length byte + text
        update_len = head_len + 1 + len(LENGTHS[tv_len]) + tv_len
        pre = b"\x22" + varint(update_len) + b"\x0a" + varint(path_len)
        post = rel + b"\x1a" + LENGTHS[tv_len] + tag + LENGTHS[width]
        pieces.append((pre.replace(b"%", b"%%"), post.replace(b"%", b"%%") + spec))
        total += 1 + len(varint(update_len)) + update_len
    return pieces, total


_QUOTERS: dict[tuple, Callable[[tuple], tuple] | None] = {}


def ietf_quoter(kinds: list[tuple[str, int]]) -> Callable[[tuple], tuple] | None:
    """For JSON_IETF templates: ``values -> values`` with 64-bit integers and decimals as quoted bytes.

    None when no leaf needs quoting. Compiled once per leaf-kind signature.
    """
    key = tuple(kinds)
    if key in _QUOTERS:
        return _QUOTERS[key]
    items = []
    for i, (kind, fd) in enumerate(kinds):
        if kind == "u64":
            items.append(f"b'\"%d\"' % v[{i}]")
        elif kind == "dec":
            items.append(f"b'\"%.{fd}f\"' % v[{i}]")
        else:
            items.append(f"v[{i}]")
    quoter = None
    if any(kind in IETF_QUOTED_WIDTH for kind, _ in kinds):
        quoter = eval("lambda v: (" + "".join(i + ", " for i in items) + ")", {"__builtins__": {}})
    _QUOTERS[key] = quoter
    return quoter


def encode_notification(timestamp_ns: int, prefix: bytes, updates: Iterable[bytes] | bytes) -> bytes:
    """A ``Notification``; ``updates`` are outputs of :func:`encode_update` (or their concatenation)."""
    body = updates if isinstance(updates, bytes) else b"".join(updates)
    head = b"\x08" + varint(timestamp_ns)
    if prefix:
        head += field(b"\x12", prefix)
    return head + body


def subscribe_update(notification: bytes) -> bytes:
    """``SubscribeResponse{update: notification}``."""
    return field(b"\x0a", notification)


def subscribe_update_parts(timestamp_ns: int, prefix: bytes, updates: list[bytes], size: int) -> bytes:
    """``SubscribeResponse{update: Notification}`` built with a single copy of the (large) update bytes.

    Same bytes as ``subscribe_update(encode_notification(...))``; ``size`` is the total length of ``updates``.
    """
    head = b"\x08" + varint(timestamp_ns)
    if prefix:
        head += field(b"\x12", prefix)
    return b"".join([b"\x0a" + varint(len(head) + size), head, *updates])


SYNC_RESPONSE = b"\x18\x01"  # SubscribeResponse{sync_response: true}


def get_response(notifications: Iterable[bytes]) -> bytes:
    """``GetResponse{notification: [...]}``."""
    return b"".join(field(b"\x0a", n) for n in notifications)


# --- TypedValue encoders -------------------------------------------------------------------------
# Leaf kinds: "u64" (counter64/uint64/timeticks64: JSON number, RFC 7951 string), "uint" (uint8..32),
# "int" (int8..32), "dec" (decimal64 with fraction digits), "str" (string/enumeration), "ident"
# (identityref, always module-qualified), "bool".


def _json_tv(tag: bytes) -> Callable[[bytes], bytes]:
    def wrap(text: bytes) -> bytes:
        return field(tag, text)

    return wrap


_JSON_TV = _json_tv(b"\x52")  # json_val
_IETF_TV = _json_tv(b"\x5a")  # json_ietf_val


def value_encoder(kind: str, fraction_digits: int, encoding: int) -> Callable[[object], bytes]:
    """Return ``value -> TypedValue bytes`` for one leaf kind under one gNMI encoding."""
    if encoding == PROTO:
        if kind in ("u64", "uint"):
            return lambda v: b"\x18" + varint(int(v))
        if kind == "int":
            return lambda v: b"\x10" + varint(int(v))
        if kind == "dec":
            return lambda v: b"\x71" + struct.pack("<d", float(v))
        if kind == "bool":
            return lambda v: b"\x20\x01" if v else b"\x20\x00"
        return lambda v: field(b"\x0a", str(v).encode())
    wrap = _IETF_TV if encoding == JSON_IETF else _JSON_TV
    if kind == "u64":
        if encoding == JSON_IETF:  # RFC 7951 section 6.1: 64-bit integers are JSON strings
            return lambda v: wrap(b'"%d"' % v)
        return lambda v: wrap(b"%d" % v)
    if kind in ("uint", "int"):
        return lambda v: wrap(b"%d" % v)
    if kind == "dec":
        fmt = f"%.{fraction_digits}f".encode()  # bytes %-formatting: the fastest float formatting in CPython
        if encoding == JSON_IETF:  # decimal64 is a JSON string in RFC 7951
            return lambda v: wrap(b'"' + fmt % v + b'"')
        return lambda v: wrap(fmt % v)
    if kind == "bool":
        true, false = wrap(b"true"), wrap(b"false")
        return lambda v: true if v else false
    cache: dict[object, bytes] = {}

    def text(v: object) -> bytes:
        out = cache.get(v)
        if out is None:
            out = wrap(json.dumps(str(v)).encode())
            if len(cache) < 256:
                cache[v] = out
        return out

    return text


def json_value(kind: str, fraction_digits: int, encoding: int, value: object) -> object:
    """A leaf value as a Python object for a JSON subtree (Get of a container)."""
    if kind == "u64":
        return str(value) if encoding == JSON_IETF else int(value)
    if kind in ("uint", "int"):
        return int(value)
    if kind == "dec":
        text = f"{value:.{fraction_digits}f}"
        return text if encoding == JSON_IETF else float(text)
    if kind == "bool":
        return bool(value)
    return str(value)
