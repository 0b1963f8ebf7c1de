"""easytune_protocol: the wire protocol shared by the engine and the Blender add-on.

Pure Python (msgpack, numpy; pyzmq only in `client`), so it imports inside Blender's Python.
Reading order: `version`, `errors`, `schema` (field types), `catalogue` (every message, declared
once), `message` (headers and constructors), `arrays` and `codec` (frames), `client`
(`EngineClient`). protocol/PROTOCOL.md documents the wire format for other implementations.
"""

from .catalogue import EVENTS, REQUESTS, MessageSpec
from .codec import decode, decode_event, encode, encode_event
from .errors import EngineRestarted, ErrorCode, ProtocolError, RemoteError, RequestTimeout
from .message import Header, Message, error_reply, event, new_id, reply, request
from .version import PROTOCOL_VERSION

__all__ = [
    "EVENTS",
    "PROTOCOL_VERSION",
    "REQUESTS",
    "EngineRestarted",
    "ErrorCode",
    "Header",
    "Message",
    "MessageSpec",
    "ProtocolError",
    "RemoteError",
    "RequestTimeout",
    "decode",
    "decode_event",
    "encode",
    "encode_event",
    "error_reply",
    "event",
    "new_id",
    "reply",
    "request",
]
