"""Error codes and the one exception of the protocol.

Every failure a peer can cause (bytes that are not a message, a field out of range, an unknown
type) is a `ProtocolError` with a code from `ErrorCode` and a message naming the field and what is
valid. The engine answers it with an error reply carrying the same code; the client raises the
subclasses below for what happens on its side of the socket (timeouts, an engine restart).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """The `code` of an error reply (and of a `ProtocolError`); the wire carries the string."""

    # The message itself (codec): the engine answers these without running anything.
    MALFORMED = "malformed"  # not msgpack, wrong framing, a header or body that is not a map
    TOO_LARGE = "too_large"  # total bytes, frame count, nesting depth or a frame over the limits
    UNSUPPORTED_VERSION = "unsupported_version"  # header protocol version is not this one
    UNKNOWN_TYPE = "unknown_type"  # a message type the catalogue does not declare
    INVALID_FIELD = "invalid_field"  # missing, wrong type, out of range, list too long
    BAD_ARRAY = "bad_array"  # dtype not allowed, shape wrong, bytes do not match the shape
    # The request was well formed but could not be carried out (engine handlers).
    NOT_FOUND = "not_found"  # unknown clip, job, model or checkpoint name
    CONFLICT = "conflict"  # e.g. cancel of a finished job, idempotency key reused for another body
    FORBIDDEN = "forbidden"  # e.g. shutdown from a non-loopback peer
    BUSY = "busy"  # queue full; retry later
    INTERNAL = "internal"  # an engine bug; the message says what failed
    # Made by the client, never sent by the engine.
    TIMEOUT = "timeout"  # no reply within the timeout, after every retry
    ENGINE_RESTARTED = "engine_restarted"  # the reply came from another engine session


class ProtocolError(Exception):
    """A message that breaks the protocol, or an error reply; `code` says which kind.

    `field` is the dotted path of the offending field (``"body.clips[2].joints"``) when there
    is one; `request_id` and `type` are filled in when the header could be read, so the engine
    can address its error reply to the request.
    """

    def __init__(
        self,
        code: ErrorCode | str,
        message: str,
        *,
        field: str | None = None,
        request_id: str | None = None,
        type: str | None = None,
    ) -> None:
        try:
            self.code: ErrorCode | str = ErrorCode(code)
        except ValueError:  # a code from a newer engine: keep the string
            self.code = str(code)
        self.message = message
        self.field = field
        self.request_id = request_id
        self.type = type
        super().__init__(f"[{self.code}] {message}")

    def body(self) -> dict[str, Any]:
        """The body of the error reply that answers this error."""
        out: dict[str, Any] = {"code": str(self.code), "message": self.message[:1000]}
        if self.field is not None:
            out["field"] = self.field[:200]
        return out


class RequestTimeout(ProtocolError):
    """No reply arrived within the timeout (after every allowed retry)."""

    def __init__(self, message: str, *, request_id: str | None = None, type: str | None = None):
        super().__init__(ErrorCode.TIMEOUT, message, request_id=request_id, type=type)


class EngineRestarted(ProtocolError):
    """A reply carried an engine session id other than the one this client knew.

    The engine restarted: jobs it was running are interrupted and clips not yet ranked may be
    gone. `reply` holds the body of the reply that revealed it (the request did succeed).
    """

    def __init__(self, old: str, new: str, reply: dict[str, Any] | None = None) -> None:
        super().__init__(
            ErrorCode.ENGINE_RESTARTED,
            f"the engine restarted: session {old!r} is now {new!r}; call hello and resync",
        )
        self.old_session = old
        self.new_session = new
        self.reply = reply


class RemoteError(ProtocolError):
    """The engine answered with an error reply (status "error" or "cancelled")."""

    def __init__(self, body: dict[str, Any], *, request_id: str, type: str, status: str) -> None:
        super().__init__(
            str(body.get("code", ErrorCode.INTERNAL)),
            str(body.get("message", "")),
            field=body.get("field"),
            request_id=request_id,
            type=type,
        )
        self.status = status
