"""`EngineClient`: the add-on's side of the socket (pyzmq DEALER, plus an optional SUB).

Never blocks unless asked to: a UI timer calls `send` and `poll_replies(0)`; scripts and tests
can use the blocking `request`.

    client = EngineClient.connect("tcp://127.0.0.1:5555")
    info = client.hello()                               # learns the engine session id
    rid = client.send("generate", {"prompt": "a person waves", "candidates": 4})
    for rep in client.poll_replies():                   # [] until the reply is there
        clips = rep.result()["clips"]                   # raises RemoteError / RequestTimeout
    client.subscribe(info["events"]); client.poll_events()
    client.close()

Off loopback the engine speaks CurveZMQ only; give the client its keys (files made by
`easytune-engine keys generate` / `keys client` on the engine's machine):

    keys = CurveKeys.from_files("server.key", "artist.key_secret")
    client = EngineClient.connect("tcp://studio-gpu:5555", curve=keys)

Timeouts are per attempt. A request that times out is sent again, byte for byte (same message id,
same idempotency key, so the engine answers a state-changing retry from its idempotency store),
up to `retries` times if its type is retry-safe; `generate` is not retried unless asked. A reply
whose engine session id differs from the one the client knew means the engine restarted:
`Reply.engine_restarted` is set, `restarts` counts it, and `request` raises `EngineRestarted`.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import zmq

from .catalogue import REQUESTS
from .codec import MAX_MESSAGE_BYTES, decode, decode_event, encode
from .endpoints import events_endpoint, is_loopback
from .errors import (
    EngineRestarted,
    ErrorCode,
    ProtocolError,
    RemoteError,
    RequestTimeout,
)
from .message import Header, Message, new_id, request

DEFAULT_TIMEOUT = 10.0  # seconds per attempt
DEFAULT_RETRIES = 2


Z85_ALPHABET = (
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
)
CURVE_KEY_CHARS = 40  # a 32-byte CurveZMQ key as Z85 text
CURVE_SOCKET_OPTIONS = ("curve_serverkey", "curve_publickey", "curve_secretkey")  # client side


class CurveKeyError(ValueError):
    """A CurveZMQ key or key file that cannot be used; the message says what is valid."""


def check_curve_key(key: str | bytes, what: str = "key") -> bytes:
    """`key` as CurveZMQ Z85 bytes: 40 characters of the Z85 alphabet (as `zmq.curve_keypair()`
    makes them), each group of 5 worth less than 2**32. Raises CurveKeyError otherwise."""
    try:
        text = key.decode("ascii") if isinstance(key, bytes) else str(key)
    except UnicodeDecodeError:
        raise CurveKeyError(
            f"{what} is not ASCII; a CurveZMQ key is 40 characters of Z85"
        ) from None
    text = text.strip()
    if len(text) != CURVE_KEY_CHARS:
        raise CurveKeyError(
            f"{what} has {len(text)} characters; a CurveZMQ key is {CURVE_KEY_CHARS} characters "
            "of Z85 text (as zmq.curve_keypair() or `easytune-engine keys` make them)"
        )
    bad = sorted({c for c in text if c not in Z85_ALPHABET})
    if bad:
        raise CurveKeyError(
            f"{what} has characters outside Z85 ({''.join(bad)!r}); valid are 0-9 a-z A-Z "
            "and .-:+=^!/*?&<>()[]{}@%$#"
        )
    for i in range(0, CURVE_KEY_CHARS, 5):
        value = 0
        for c in text[i : i + 5]:
            value = value * 85 + Z85_ALPHABET.index(c)
        if value >= 2**32:
            raise CurveKeyError(
                f"{what} is not valid Z85: characters {i + 1}..{i + 5} are worth 2**32 or more "
                "(each group of 5 must be less)"
            )
    return text.encode("ascii")


def check_secret_file(path: str | os.PathLike[str]) -> None:
    """Raise CurveKeyError if the file holding a secret key is readable or writable by anyone but
    its owner (POSIX; Windows has no such mode bits and is not checked)."""
    if os.name == "nt":
        return
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        raise CurveKeyError(
            f"{path} holds a secret key but its mode is {mode:04o} (group/world may read it); "
            f"run `chmod 600 {path}`, and make a new keypair if others may have copied it"
        )


def read_key_file(path: str | os.PathLike[str]) -> tuple[bytes, bytes | None]:
    """(public key, secret key or None) from a key file: the ZeroMQ certificate format that
    `easytune-engine keys` and pyzmq's `zmq.auth.create_certificates` write (`public-key = "..."`,
    `secret-key = "..."`), or a file holding just a 40-character public key. A file with a secret
    key must be owner-only (`check_secret_file`) and its public key must match it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise CurveKeyError(f"{path}: no such key file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CurveKeyError(f"{path}: cannot read it as a key file ({exc})") from None
    found: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#") or "=" not in line:
            continue
        name, value = (part.strip() for part in line.split("=", 1))
        if name in ("public-key", "secret-key"):
            found[name] = value.strip("\"'")
    if not found:
        words = text.split()
        if len(words) != 1:
            raise CurveKeyError(
                f"{path} is not a key file: expected a ZeroMQ certificate "
                '(public-key = "...") or one 40-character Z85 public key'
            )
        found["public-key"] = words[0]
    if "public-key" not in found:
        raise CurveKeyError(f'{path} has a secret-key but no public-key = "..." line')
    public = check_curve_key(found["public-key"], f"the public key in {path}")
    if "secret-key" not in found:
        return public, None
    check_secret_file(path)
    secret = check_curve_key(found["secret-key"], f"the secret key in {path}")
    if zmq.curve_public(secret) != public:
        raise CurveKeyError(f"{path}: its public key does not belong to its secret key")
    return public, secret


@dataclass(frozen=True)
class CurveKeys:
    """CurveZMQ keys, Z85 text (40 characters) as made by `zmq.curve_keypair()`.

    A client sets them as the socket options curve_serverkey (the engine's public key),
    curve_publickey and curve_secretkey (its own keypair, whose public key is on the engine's
    allow-list), on its DEALER and its SUB socket alike.
    """

    server_public: bytes
    public: bytes
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        for name in ("server_public", "public", "secret"):
            value = getattr(self, name)
            if not isinstance(value, bytes):
                raise CurveKeyError(f"CurveKeys.{name} must be bytes (40 characters of Z85 text)")
            object.__setattr__(self, name, check_curve_key(value, f"CurveKeys.{name}"))

    @classmethod
    def from_files(
        cls, server_public_file: str | os.PathLike[str], client_keypair_file: str | os.PathLike[str]
    ) -> CurveKeys:
        """Keys from the files `easytune-engine keys` writes: the engine's public key
        (`server.key` of its keys directory) and this client's keypair (`keys client --out FILE`,
        owner-only). Raises CurveKeyError naming the file and what is wrong."""
        server_public, _ = read_key_file(server_public_file)
        public, secret = read_key_file(client_keypair_file)
        if secret is None:
            raise CurveKeyError(
                f"{client_keypair_file} holds only a public key; the client needs its keypair "
                "(a file with a secret-key line, from `easytune-engine keys client --out FILE`)"
            )
        return cls(server_public, public, secret)


@dataclass(frozen=True)
class Reply:
    """The outcome of one request: an engine reply, or a client-side timeout."""

    request_id: str
    type: str
    status: str  # "ok", "error", "cancelled" (from the engine) or "timeout" (client-made)
    body: dict[str, Any]
    header: Header | None = None  # None for a timeout
    previous_engine_session: str | None = None  # set when this reply revealed a restart

    @property
    def engine_restarted(self) -> bool:
        """The engine session id changed with this reply (the engine restarted)."""
        return self.previous_engine_session is not None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def error(self) -> ProtocolError | None:
        if self.status == "ok":
            return None
        if self.status == "timeout":
            return RequestTimeout(
                str(self.body.get("message", "")), request_id=self.request_id, type=self.type
            )
        return RemoteError(
            self.body, request_id=self.request_id, type=self.type, status=self.status
        )

    def result(self) -> dict[str, Any]:
        """The body of an ok reply; otherwise raises the error (RemoteError, RequestTimeout)."""
        err = self.error()
        if err is not None:
            raise err
        return self.body


@dataclass
class _Pending:
    type: str
    frames: list[Any]
    timeout: float
    retries_left: int
    deadline: float
    attempts: int = 1


@dataclass
class EngineClient:
    """One client session with the engine. Not thread-safe: use it from one thread (the UI's)."""

    socket: zmq.Socket
    context: zmq.Context
    curve: CurveKeys | None = None
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    session: str = field(default_factory=new_id)  # client session id, sent in every header
    engine_session: str | None = None  # learnt from the first reply (normally hello)
    restarts: int = 0  # engine restarts noticed
    dropped: int = 0  # replies that were malformed or answered nothing pending
    events: zmq.Socket | None = None
    endpoint: str | None = None  # the ROUTER endpoint connected to
    _pending: dict[str, _Pending] = field(default_factory=dict, init=False, repr=False)
    _ready: dict[str, Reply] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def connect(
        cls,
        endpoint: str,
        *,
        curve: CurveKeys | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        context: zmq.Context | None = None,
    ) -> EngineClient:
        """A client connected to the engine's ROUTER at `endpoint`.

        Off loopback the engine accepts only CurveZMQ clients, so `curve` is required there.
        """
        if curve is None and not is_loopback(endpoint):
            raise ValueError(
                f"{endpoint} is not a loopback address: the engine accepts only CurveZMQ "
                "clients there; pass curve=CurveKeys(server_public, public, secret)"
            )
        if timeout <= 0 or retries < 0:
            raise ValueError(f"timeout must be > 0 and retries >= 0, got {timeout}, {retries}")
        ctx = context or zmq.Context.instance()
        sock = _socket(ctx, zmq.DEALER, curve)
        sock.connect(endpoint)
        return cls(sock, ctx, curve, timeout, retries, endpoint=endpoint)

    # -- requests ----------------------------------------------------------------------------

    def send(
        self,
        type: str,
        body: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        retries: int | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Validate, encode and queue a request without blocking; returns its request id.

        Raises ProtocolError for an invalid request (nothing is sent) and ProtocolError(BUSY) when
        the send queue is full. State-changing types get a fresh idempotency key unless given one.
        """
        msg = request(type, body, session=self.session, idempotency_key=idempotency_key)
        frames = encode(msg)
        spec = REQUESTS[type]
        if retries is None:
            retries = self.retries if spec.retry_safe else 0
        timeout = self.timeout if timeout is None else timeout
        self._send(frames)
        self._pending[msg.header.id] = _Pending(
            type, frames, timeout, retries, time.monotonic() + timeout
        )
        return msg.header.id

    def poll_replies(self, timeout: float = 0.0) -> list[Reply]:
        """Replies (and timeouts) that are ready, waiting at most `timeout` s for the first."""
        self._pump(timeout)
        ready = list(self._ready.values())
        self._ready.clear()
        return ready

    def request(
        self,
        type: str,
        body: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        retries: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Send and wait for the reply body (blocking). Replies to other requests are kept for
        `poll_replies`. Raises RequestTimeout, RemoteError, or EngineRestarted (after which the
        client knows the new session: call hello and resync)."""
        rid = self.send(
            type, body, timeout=timeout, retries=retries, idempotency_key=idempotency_key
        )
        while rid not in self._ready:
            pending = self._pending.get(rid)
            wait = 0.0 if pending is None else max(0.0, pending.deadline - time.monotonic())
            self._pump(min(wait, 0.1))
        rep = self._ready.pop(rid)
        if rep.engine_restarted and rep.type != "hello":
            old = rep.previous_engine_session or ""
            raise EngineRestarted(old, self.engine_session or "", rep.body)
        return rep.result()

    def hello(self, client: str = "easytune_protocol") -> dict[str, Any]:
        """The engine's hello reply; sets `engine_session`."""
        return self.request("hello", {"client": client})

    @property
    def pending(self) -> int:
        """Requests sent and not yet answered (nor timed out)."""
        return len(self._pending)

    def forget(self, request_id: str) -> None:
        """Stop waiting for a request (its reply, if it comes, is dropped)."""
        self._pending.pop(request_id, None)
        self._ready.pop(request_id, None)

    # -- events ------------------------------------------------------------------------------

    def subscribe(self, endpoint: str, topics: tuple[bytes, ...] = (b"",)) -> None:
        """Connect a SUB socket to the engine's PUB `endpoint` (from hello's `events`).

        `topics` are event-type prefixes, e.g. (b"job_",); the default is every event.
        PUB drops events for slow subscribers: use `seq` gaps and `job_status` to catch up.
        With CurveZMQ keys the SUB socket uses them too (the engine's PUB checks the allow-list).
        """
        endpoint = events_endpoint(endpoint, self.endpoint)
        if self.events is None:
            if self.curve is None and not is_loopback(endpoint):
                raise ValueError(f"{endpoint} is not a loopback address: CurveZMQ keys required")
            self.events = _socket(self.context, zmq.SUB, self.curve)
        for topic in topics:
            self.events.setsockopt(zmq.SUBSCRIBE, topic)
        self.events.connect(endpoint)

    def poll_events(self, timeout: float = 0.0, max_events: int = 1000) -> list[Message]:
        """Events that arrived, waiting at most `timeout` s for the first. Malformed ones are
        dropped (counted in `dropped`)."""
        out: list[Message] = []
        if self.events is None:
            return out
        if not self.events.poll(int(timeout * 1000)):
            return out
        while len(out) < max_events:
            try:
                frames = self.events.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            try:
                out.append(decode_event(frames))
            except ProtocolError:
                self.dropped += 1
        return out

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the sockets at once (LINGER 0: unsent requests are discarded)."""
        for sock in (self.socket, self.events):
            if sock is not None and not sock.closed:
                sock.close(linger=0)
        self._pending.clear()

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _send(self, frames: list[Any]) -> None:
        try:
            self.socket.send_multipart(frames, flags=zmq.NOBLOCK)
        except zmq.Again:
            raise ProtocolError(
                ErrorCode.BUSY, "the send queue to the engine is full; try again later"
            ) from None

    def _pump(self, timeout: float) -> None:
        """Receive what has arrived (waiting ≤ timeout for the first), then handle deadlines."""
        if self.socket.poll(int(timeout * 1000)):
            while True:
                try:
                    frames = self.socket.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                self._receive(frames)
        now = time.monotonic()
        for rid, p in list(self._pending.items()):
            if now < p.deadline:
                continue
            if p.retries_left > 0:
                p.retries_left -= 1
                p.attempts += 1
                p.deadline = now + p.timeout
                try:
                    self._send(p.frames)
                except ProtocolError:  # send queue full: this attempt is lost, like a drop
                    pass
                continue
            del self._pending[rid]
            message = (
                f"no reply to {p.type} within {p.timeout:g} s "
                f"({p.attempts} attempt{'s' if p.attempts > 1 else ''}); is the engine running?"
            )
            self._ready[rid] = Reply(
                rid, p.type, "timeout", {"code": "timeout", "message": message}
            )

    def _receive(self, frames: list[Any]) -> None:
        try:
            msg = decode(frames)
        except ProtocolError:
            self.dropped += 1
            return
        h = msg.header
        if h.kind != "reply" or h.reply_to not in self._pending:
            self.dropped += 1  # a late reply to a request that timed out, or noise
            return
        del self._pending[h.reply_to]
        restarted = self.engine_session is not None and h.engine_session != self.engine_session
        old = self.engine_session
        if restarted:
            self.restarts += 1
        self.engine_session = h.engine_session
        self._ready[h.reply_to] = Reply(
            h.reply_to, h.type, h.status or "ok", msg.body, h, old if restarted else None
        )


def _socket(ctx: zmq.Context, kind: int, curve: CurveKeys | None) -> zmq.Socket:
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)  # close never hangs on unsent messages
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)  # per frame; decode caps the rest
    sock.setsockopt(zmq.HEARTBEAT_IVL, 2000)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 10000)
    if curve is not None:
        sock.curve_secretkey = curve.secret
        sock.curve_publickey = curve.public
        sock.curve_serverkey = curve.server_public
    return sock
