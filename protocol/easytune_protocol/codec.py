"""Messages <-> ZeroMQ frames. Pure functions; no sockets.

    frames = encode(msg)          # [header, body, *array buffers]  (list of bytes-like)
    msg = decode(frames)          # validated against the catalogue, or ProtocolError

Frame 0 is the msgpack header map, frame 1 the msgpack body map, frames 2.. the raw bytes of the
arrays the body refers to (`arrays.py`), each referenced exactly once. On the PUB socket an event
is preceded by one topic frame, its type in UTF-8 (`encode_event` / `decode_event`), so a SUB can
filter by prefix. The engine's ROUTER sees one more frame in front (the peer identity), which it
strips before `decode` and puts back in front of the reply.

`decode` treats its input as hostile: it checks the frame count and sizes before unpacking,
unpacks with bounded msgpack limits (no ext types), checks nesting depth and that map keys are
strings, the protocol version, the type, then every field. Whatever is wrong, it raises
`ProtocolError` with a code (`errors.ErrorCode`) and, when the header could be read, the request
id and type, so the engine can answer with an error reply. Unknown extra fields are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import msgpack
import numpy as np

from . import arrays as wire_arrays
from .catalogue import ERROR_BODY, EVENTS, ID, REQUESTS, TIME, Check
from .errors import ErrorCode, ProtocolError
from .message import STATUSES, Header, Message
from .schema import Array, Bool, Field, Int, Record, Str, no_arrays
from .version import PROTOCOL_VERSION

MAX_MESSAGE_BYTES = 64 << 20  # all frames together
MAX_FRAMES = 130  # header + body + 128 array buffers
MAX_HEADER_BYTES = 4096
MAX_BODY_BYTES = 4 << 20  # the msgpack body frame (arrays travel in their own frames)
MAX_DEPTH = 10  # nesting of maps and lists in the header or body


def _header(kind: str, *fields: Field) -> Record:
    common = (
        Field("protocol", Str(max_len=16), doc="protocol version; must equal the receiver's"),
        Field("kind", Str(choices=(kind,))),
        Field("type", Str(max_len=64), doc="message type (a request's type, for its reply)"),
        Field("id", ID, doc="unique per message"),
        Field("time", TIME, doc="sender's clock, seconds since the Unix epoch"),
    )
    return Record(fields=(*common, *fields))


HEADERS: dict[str, Record] = {
    "request": _header(
        "request",
        Field("session", ID, doc="client session id, the same for every request of a client"),
        Field("idempotency_key", ID, False, doc="required by state-changing types"),
    ),
    "reply": _header(
        "reply",
        Field("engine_session", ID, doc="changes when the engine restarts"),
        Field("reply_to", Str(max_len=64, min_len=0), doc='request id ("" if unreadable)'),
        Field("status", Str(choices=STATUSES)),
        Field("replayed", Bool(), False, False, doc="answered from the idempotency store"),
    ),
    "event": _header(
        "event",
        Field("engine_session", ID, doc="changes when the engine restarts"),
        Field("seq", Int(1, 2**53), doc="1, 2, ... per engine session; a gap = missed events"),
    ),
}


def body_spec(header: Header) -> tuple[Record, Check | None]:
    """The Record a message's body must match, and its cross-field check."""
    if header.kind == "event":
        spec = EVENTS.get(header.type)
        if spec is None:
            raise ProtocolError(
                ErrorCode.UNKNOWN_TYPE,
                f"unknown event type {header.type!r:.70}; valid: {', '.join(EVENTS)}",
                field="header.type",
            )
        return spec.body, spec.check
    spec = REQUESTS.get(header.type)
    if header.kind == "reply" and header.status != "ok":
        if spec is None and header.type != "error":
            raise _unknown_request(header.type)
        return ERROR_BODY, None
    if spec is None:
        raise _unknown_request(header.type)
    if header.kind == "request":
        return spec.body, spec.check
    assert spec.reply is not None  # every request declares its reply
    return spec.reply, spec.reply_check


def _unknown_request(type_: str) -> ProtocolError:
    return ProtocolError(
        ErrorCode.UNKNOWN_TYPE,
        f"unknown message type {type_!r:.70}; valid: {', '.join(REQUESTS)}",
        field="header.type",
    )


# -- encode --------------------------------------------------------------------------------------


@dataclass
class _Packer:
    """ArrayHandler for encoding: ndarray -> [dtype, shape, frame index], bytes -> buffers."""

    buffers: list[Any] = field(default_factory=list)

    def array(self, value: Any, spec: Array, path: str) -> tuple[np.ndarray, Any]:
        name, shape, data = wire_arrays.to_wire(value, path)
        self.buffers.append(data)
        return value, [name, shape, 1 + len(self.buffers)]


def _header_map(header: Header) -> dict[str, Any]:
    # Only the fields that apply: None and False are left out (absent means the same).
    return {k: v for k, v in asdict(header).items() if v is not None and v is not False}


def encode(msg: Message) -> list[Any]:
    """Frames of a message: [header, body, *buffers]. Validates it first (ProtocolError)."""
    h = msg.header
    hmap = _header_map(h)
    kind_spec = HEADERS.get(h.kind)
    if kind_spec is None:
        raise ProtocolError(ErrorCode.INVALID_FIELD, f"header.kind: {h.kind!r} is not valid")
    checked_header = kind_spec.check(hmap, "header", no_arrays(), {})
    _check_header_rules(Header(**checked_header))
    record, check = body_spec(h)
    packer = _Packer()
    body = record.check(msg.body, "body", packer, {})
    if check is not None:
        check(body)
    body = {k: v for k, v in body.items() if v is not None}
    frames = [_pack(hmap), _pack(body), *packer.buffers]
    _check_sizes(frames)
    return frames


def encode_event(msg: Message) -> list[Any]:
    """Frames of an event on the PUB socket: [topic (its type), header, body, *buffers]."""
    if msg.header.kind != "event":
        raise ProtocolError(ErrorCode.INVALID_FIELD, "header.kind: encode_event takes events")
    return [msg.header.type.encode(), *encode(msg)]


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


# -- decode --------------------------------------------------------------------------------------


@dataclass
class _Unpacker:
    """ArrayHandler for decoding: [dtype, shape, frame index] -> read-only ndarray."""

    frames: Sequence[memoryview]
    used: set[int] = field(default_factory=set)

    def array(self, value: Any, spec: Array, path: str) -> tuple[np.ndarray, Any]:
        arr, index = wire_arrays.from_wire(value, self.frames, path)
        if index in self.used:
            raise ProtocolError(
                ErrorCode.BAD_ARRAY, f"{path}: frame {index} is used by two arrays", field=path
            )
        self.used.add(index)
        return arr, arr


def decode(frames: Sequence[Any]) -> Message:
    """The message in `frames` ([header, body, *buffers]), checked against the catalogue."""
    views = _check_frames(frames)
    raw = _unpack(views[0], "header", MAX_HEADER_BYTES)
    if not isinstance(raw, dict):
        raise ProtocolError(ErrorCode.MALFORMED, "header: frame 0 must be a msgpack map")
    rid = raw.get("id") if isinstance(raw.get("id"), str) else None
    rtype = raw.get("type") if isinstance(raw.get("type"), str) else None
    try:
        return _decode(raw, views)
    except ProtocolError as exc:
        exc.request_id = exc.request_id or (rid[:64] if rid else None)
        exc.type = exc.type or (rtype[:64] if rtype else None)
        raise


def decode_event(frames: Sequence[Any]) -> Message:
    """An event from a SUB socket: [topic, header, body, *buffers]; the topic must be its type."""
    if not isinstance(frames, list | tuple) or len(frames) < 3:
        raise ProtocolError(ErrorCode.MALFORMED, "an event needs a topic, header and body frame")
    msg = decode(frames[1:])
    try:
        topic = bytes(memoryview(frames[0])[:65])
    except TypeError:
        raise ProtocolError(ErrorCode.MALFORMED, "the topic frame is not bytes") from None
    if msg.header.kind != "event" or topic != msg.header.type.encode():
        raise ProtocolError(
            ErrorCode.MALFORMED, f"topic {topic!r:.70} does not match event {msg.header.type!r}"
        )
    return msg


def _decode(raw: dict[str, Any], views: list[memoryview]) -> Message:
    version = raw.get("protocol")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"header.protocol: this peer speaks protocol {PROTOCOL_VERSION}, got {version!r:.40}",
            field="header.protocol",
        )
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in HEADERS:
        raise ProtocolError(
            ErrorCode.INVALID_FIELD,
            f"header.kind: must be one of request, reply, event; got {kind!r:.40}",
            field="header.kind",
        )
    header = Header(**HEADERS[kind].check(raw, "header", no_arrays(), {}))
    record, check = body_spec(header)
    _check_header_rules(header)
    body_raw = _unpack(views[1], "body", MAX_BODY_BYTES)
    if not isinstance(body_raw, dict):
        raise ProtocolError(ErrorCode.MALFORMED, "body: frame 1 must be a msgpack map")
    unpacker = _Unpacker(views)
    body = record.check(body_raw, "body", unpacker, {})
    if check is not None:
        check(body)
    unused = sorted(set(range(2, len(views))) - unpacker.used)
    if unused:
        raise ProtocolError(
            ErrorCode.MALFORMED,
            f"frames {unused[:8]} are not referenced by any array of the body",
        )
    return Message(header, body)


def _check_header_rules(header: Header) -> None:
    """Rules that span header fields."""
    spec = REQUESTS.get(header.type)
    if header.kind == "request" and spec is not None and spec.state_changing:
        if header.idempotency_key is None:
            raise ProtocolError(
                ErrorCode.INVALID_FIELD,
                f"header.idempotency_key: required for {header.type} (it changes state); "
                "send the same key on every retry",
                field="header.idempotency_key",
            )


def _check_frames(frames: Sequence[Any]) -> list[memoryview]:
    if not isinstance(frames, list | tuple):
        raise ProtocolError(ErrorCode.MALFORMED, "a message is a list of frames")
    if len(frames) > MAX_FRAMES:
        raise ProtocolError(
            ErrorCode.TOO_LARGE, f"{len(frames)} frames, at most {MAX_FRAMES} per message"
        )
    if len(frames) < 2:
        raise ProtocolError(
            ErrorCode.MALFORMED, f"a message needs a header and a body frame, got {len(frames)}"
        )
    views = []
    for i, f in enumerate(frames):
        try:
            views.append(memoryview(f))
        except TypeError:
            raise ProtocolError(
                ErrorCode.MALFORMED, f"frame {i} is a {type(f).__name__}, not bytes"
            ) from None
    _check_sizes(views)
    return views


def _check_sizes(frames: Sequence[Any]) -> None:
    sizes = [memoryview(f).nbytes for f in frames]
    if len(frames) > MAX_FRAMES:
        raise ProtocolError(
            ErrorCode.TOO_LARGE, f"{len(frames)} frames, at most {MAX_FRAMES} per message"
        )
    if sum(sizes) > MAX_MESSAGE_BYTES:
        raise ProtocolError(
            ErrorCode.TOO_LARGE, f"{sum(sizes)} bytes in all, at most {MAX_MESSAGE_BYTES}"
        )
    for name, size, limit in (
        ("header", sizes[0], MAX_HEADER_BYTES),
        ("body", sizes[1], MAX_BODY_BYTES),
    ):
        if size > limit:
            raise ProtocolError(
                ErrorCode.TOO_LARGE, f"{name} frame has {size} bytes, at most {limit}"
            )


def _no_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack ext type {code} is not allowed")


def _unpack(view: memoryview, what: str, limit: int) -> Any:
    n = view.nbytes
    if n == 0:
        raise ProtocolError(ErrorCode.MALFORMED, f"{what}: empty frame")
    unpacker = msgpack.Unpacker(
        raw=False,
        strict_map_key=True,
        max_buffer_size=min(n, limit),
        max_str_len=n,
        max_bin_len=n,
        max_array_len=n,
        max_map_len=n,
        max_ext_len=0,
        ext_hook=_no_ext,
        use_list=True,
    )
    try:
        unpacker.feed(view)
        obj = unpacker.unpack()
        end = unpacker.tell()
    except msgpack.OutOfData:
        raise ProtocolError(ErrorCode.MALFORMED, f"{what}: truncated msgpack") from None
    except msgpack.StackError:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"{what}: nested too deeply") from None
    except (msgpack.UnpackException, ValueError, TypeError, OverflowError) as exc:
        raise ProtocolError(ErrorCode.MALFORMED, f"{what}: not valid msgpack ({exc})") from None
    if end != n:
        raise ProtocolError(
            ErrorCode.MALFORMED, f"{what}: {n - end} bytes of extra data after the msgpack map"
        )
    _check_tree(obj, what)
    return obj


def _check_tree(obj: Any, what: str) -> None:
    """Nesting depth ≤ MAX_DEPTH and string map keys only (iterative: no recursion limit)."""
    stack = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                raise ProtocolError(
                    ErrorCode.TOO_LARGE, f"{what}: nested deeper than {MAX_DEPTH} levels"
                )
            if isinstance(node, dict):
                if not all(isinstance(k, str) for k in node):
                    raise ProtocolError(ErrorCode.MALFORMED, f"{what}: map keys must be strings")
                stack.extend((v, depth + 1) for v in node.values())
            else:
                stack.extend((v, depth + 1) for v in node)
