"""Messages as values: a `Header` and a body dict, with constructors for each kind.

Building a message, encoding it (`codec.encode`) and sending it (`client`) are separate steps;
nothing here touches a socket or the wire format.

    req = request("generate", {"prompt": "a person waves", "candidates": 4}, session="s1")
    rep = reply(req, {...}, engine_session="e1")          # status "ok", reply_to = req id
    err = error_reply(req.header, ProtocolError(...), engine_session="e1")
    ev = event("job_progress", {...}, engine_session="e1", seq=7)
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from .catalogue import REQUESTS
from .errors import ProtocolError
from .version import PROTOCOL_VERSION

Kind = Literal["request", "reply", "event"]
Status = Literal["ok", "error", "cancelled"]
STATUSES: tuple[str, ...] = ("ok", "error", "cancelled")


def new_id() -> str:
    """A fresh message id / session id / idempotency key: 32 hex digits (uuid4)."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Header:
    """The first frame of every message. Fields that do not apply to a kind are None."""

    kind: Kind
    type: str
    id: str  # unique per message (the request id, for a request)
    time: float  # sender's clock, seconds since the epoch
    protocol: str = PROTOCOL_VERSION
    session: str | None = None  # request: the client session id
    idempotency_key: str | None = None  # request: required when the type changes state
    engine_session: str | None = None  # reply, event: the engine session id
    reply_to: str | None = None  # reply: the id of the request answered ("" if unreadable)
    status: Status | None = None  # reply
    replayed: bool = False  # reply: answered from the idempotency store (a retry)
    seq: int | None = None  # event: 1, 2, ... per engine session; a gap means missed events


@dataclass(frozen=True)
class Message:
    header: Header
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return self.header.type


def request(
    type: str,
    body: dict[str, Any] | None = None,
    *,
    session: str,
    idempotency_key: str | None = None,
    id: str | None = None,
) -> Message:
    """A request; state-changing types get a fresh idempotency key unless one is given."""
    spec = REQUESTS.get(type)
    if idempotency_key is None and spec is not None and spec.state_changing:
        idempotency_key = new_id()
    header = Header(
        "request",
        type,
        id or new_id(),
        time.time(),
        session=session,
        idempotency_key=idempotency_key,
    )
    return Message(header, dict(body or {}))


def reply(
    req: Message | Header,
    body: dict[str, Any],
    *,
    engine_session: str,
    status: Status = "ok",
    replayed: bool = False,
) -> Message:
    """The reply to a request (its type and id)."""
    h = req.header if isinstance(req, Message) else req
    header = Header(
        "reply",
        h.type,
        new_id(),
        time.time(),
        engine_session=engine_session,
        reply_to=h.id,
        status=status,
        replayed=replayed,
    )
    return Message(header, body)


def error_reply(
    error: ProtocolError,
    *,
    engine_session: str,
    req: Message | Header | None = None,
    status: Status = "error",
) -> Message:
    """The error reply to a request, or to a message whose header could not be read.

    Without `req`, the request id and type come from the error (set by the codec when it read
    that much of the header); a type the catalogue does not know is answered as type "error".
    """
    h = req.header if isinstance(req, Message) else req
    type_ = h.type if h is not None else error.type
    header = Header(
        "reply",
        type_ if type_ in REQUESTS else "error",
        new_id(),
        time.time(),
        engine_session=engine_session,
        reply_to=h.id if h is not None else (error.request_id or ""),
        status=status,
    )
    return Message(header, error.body())


def event(type: str, body: dict[str, Any], *, engine_session: str, seq: int) -> Message:
    """An event published on the engine's PUB socket."""
    header = Header("event", type, new_id(), time.time(), engine_session=engine_session, seq=seq)
    return Message(header, body)
