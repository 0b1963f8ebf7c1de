"""The server's socket loop: ROUTER for requests, PUB for events, one thread.

    server = Server(config, registry)       # binds, opens the store (the caller holds the lock)
    server.run()                            # until shutdown, SIGINT or SIGTERM

Each request: strip the peer identity, `decode` (any malformed frames become an error reply by
PROTOCOL.md's rule, never an exception out of the loop), dispatch to `Handlers`, `encode` the
reply, send it to the same identity, log one line. `generate` goes to the worker thread; its
reply comes back through `GenerationWorker.finished` and is sent from here, so only this thread
touches the sockets. Jobs (fine-tuning, SPL refinement) run on the `JobRunner` thread; their
events come back the same way (a queue plus a byte on the inproc wake socket) and leave on PUB.
"""

from __future__ import annotations

import signal
import time
import traceback
from dataclasses import replace
from typing import Any

import zmq

from easytune_protocol import (
    ErrorCode,
    Message,
    ProtocolError,
    decode,
    encode,
    encode_event,
    error_reply,
    event,
    new_id,
    reply,
)
from easytune_protocol.codec import MAX_MESSAGE_BYTES

from . import security
from .checkpoints import CheckpointBook
from .config import ServeConfig, ServeError
from .handlers import Handlers, Outcome, Peer
from .jobs import JobRunner, JobTable
from .log import EventLog
from .models import ModelRegistry
from .store import DB_NAME, Store
from .tasks import JobWork
from .worker import GenerationWorker

POLL_MS = 200  # the loop looks at its stop flag (signals) at least this often
BATCH = 256  # messages read per wake-up before the worker's replies get a turn
CLOSE_LINGER_MS = 1000  # at an orderly stop, time for queued replies and events to leave


class Server:
    def __init__(
        self,
        config: ServeConfig,
        registry: ModelRegistry,
        log: EventLog | None = None,
    ) -> None:
        self.config = config
        self.registry = registry
        self.log = log or EventLog()
        self.engine_session = new_id()
        self.context = zmq.Context()
        self.store = Store(config.data_dir / DB_NAME)
        self.book = CheckpointBook(self.store, config.data_dir)
        JobTable(self.store)  # the jobs table exists before either thread reads it
        registry.restore(self.book, self.log.write)  # serve the active checkpoints
        self._stop_reason: str | None = None
        self._seq = 0
        self.router = self._socket(zmq.ROUTER)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a vanished peer is an error, not silence
        self.pub = self._socket(zmq.PUB)
        self.auth = security.secure(self.context, (self.router, self.pub), config.curve, self.log)
        self.wake = self.context.socket(zmq.PULL)
        self.wake.setsockopt(zmq.LINGER, 0)
        wake_endpoint = f"inproc://worker-{self.engine_session}"
        self.wake.bind(wake_endpoint)
        for sock, endpoint in ((self.router, config.bind), (self.pub, config.events)):
            if endpoint.startswith("tcp://["):
                sock.setsockopt(zmq.IPV6, 1)  # tcp://[::1]:PORT
        try:
            self.router.bind(config.bind)
            self.pub.bind(config.events)
        except zmq.ZMQError as exc:
            self.close()
            raise ServeError(f"cannot bind {config.bind} / {config.events}: {exc}") from exc
        self.bind = self.router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.events = self.pub.getsockopt_string(zmq.LAST_ENDPOINT)
        self.worker = GenerationWorker(
            self.store.path,
            self.engine_session,
            self.context,
            wake_endpoint,
            config.queue_limit,
            fast_path=config.fast_path,
            graph_bf16=config.graph_dtype == "bf16",
            log=self.log.write,
            registry=registry,
        )
        self.runner = JobRunner(
            self.store.path,
            JobWork(config.data_dir, registry, config.corpus),
            self.context,
            wake_endpoint,
            self.log.write,
        )
        self.handlers = Handlers(
            engine_session=self.engine_session,
            registry=registry,
            store=self.store,
            worker=self.worker,
            runner=self.runner,
            book=self.book,
            device=config.device,
            events_endpoint=self.events,
            request_stop=self.stop,
            publish=self.publish,
        )

    def _socket(self, kind: int) -> zmq.Socket:
        sock = self.context.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)  # per frame; decode caps the rest
        sock.setsockopt(zmq.SNDHWM, self.config.hwm)
        sock.setsockopt(zmq.RCVHWM, self.config.hwm)
        sock.setsockopt(zmq.HEARTBEAT_IVL, 2000)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 10000)
        sock.setsockopt(zmq.HEARTBEAT_TTL, 10000)
        return sock

    def stop(self, reason: str) -> None:
        """Ask the loop to stop after the current message (safe from a signal handler)."""
        if self._stop_reason is None:
            self._stop_reason = reason

    # -- the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, frame: self.stop(signal.Signals(signum).name))
        self.worker.start()
        self.runner.start()
        self.log.write(
            "ready",
            bind=self.bind,
            events=self.events,
            engine_session=self.engine_session,
            device=self.config.device,
            models=list(self.registry.models),
            curve=self.auth is not None,
            fast_path=self.config.fast_path and self.config.device.startswith("cuda"),
            data_dir=str(self.config.data_dir),
        )
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.wake, zmq.POLLIN)
        try:
            while self._stop_reason is None:
                ready = dict(poller.poll(POLL_MS))
                if self.router in ready:
                    self._read_requests()
                if self.wake in ready:
                    self._send_finished()
            self._shutdown()
        finally:
            self.close()

    def _read_requests(self) -> None:
        for _ in range(BATCH):
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self.handle(frames)
            if self._stop_reason is not None:
                return

    def _send_finished(self) -> None:
        while True:
            try:
                self.wake.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
        for done in self.worker.finished():
            h = done.header
            self._send(done.peer, done.frames, h.id)
            log = {
                "code": done.code,
                "session": h.session,
                "batch": done.batch,
                "stages": done.stages,  # ms per worker stage
            }
            self.log.request(h.id, h.type, done.status, done.received, **log)
        for type_, body in self.runner.events():
            self.publish(type_, body)

    def handle(self, frames: list[Any]) -> None:
        """Answer one message from the ROUTER ([identity, header, body, *arrays])."""
        received = time.perf_counter()
        identity = bytes(frames[0].bytes) if frames else b""
        if not identity:
            return  # a message that names no peer cannot be answered: dropped
        address = _peer_address(frames[1]) if len(frames) > 1 else None
        peer = Peer(identity, address, received)
        msg: Message | None = None
        out: Message
        try:
            msg = decode(frames[1:])
            if msg.header.kind != "request":
                raise ProtocolError(
                    ErrorCode.INVALID_FIELD,
                    f"header.kind: the engine takes requests, got a {msg.header.kind}",
                    field="header.kind",
                )
            outcome = self.handlers.handle(msg, peer)
            if outcome is None:
                return  # the worker answers (and logs) it
            out = self._reply(msg, outcome)
        except ProtocolError as exc:
            out = self._error(exc, msg)
        except Exception as exc:  # an engine bug: answer it, log it, keep serving
            self.log.write("error", traceback=traceback.format_exc(limit=8))
            out = self._error(
                ProtocolError(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}"), msg
            )
        h = out.header
        self._send(identity, self._encode(out), h.reply_to)
        self.log.request(
            h.reply_to,
            msg.type if msg else h.type,
            h.status or "ok",
            received,
            code=out.body.get("code") if h.status != "ok" else None,
            session=msg.header.session if msg else None,
            replayed=h.replayed,
        )

    def _reply(self, msg: Message, outcome: Outcome) -> Message:
        if outcome.status == "ok":
            session = self.engine_session
            return reply(msg, outcome.body, engine_session=session, replayed=outcome.replayed)
        b = outcome.body  # a stored error reply
        return self._error(
            ProtocolError(b.get("code", ErrorCode.INTERNAL), b.get("message", "")), msg
        )

    def _error(self, err: ProtocolError, msg: Message | None) -> Message:
        """The error reply to `msg`, or (undecodable) to whatever the codec read of its header."""
        return error_reply(err, engine_session=self.engine_session, req=msg.header if msg else None)

    def _encode(self, out: Message) -> list[Any]:
        try:
            return encode(out)
        except ProtocolError as exc:  # the engine built a bad reply: say so instead
            err = ProtocolError(ErrorCode.INTERNAL, f"the engine's reply was invalid: {exc}")
            fallback = error_reply(err, engine_session=self.engine_session)
            header = replace(fallback.header, reply_to=out.header.reply_to or "")
            return encode(Message(header, fallback.body))

    def _send(self, identity: bytes, frames: list[Any], request_id: str | None) -> None:
        try:
            self.router.send_multipart([identity, *frames], flags=zmq.NOBLOCK, copy=False)
        except zmq.ZMQError as exc:  # peer gone (ROUTER_MANDATORY) or its queue full
            self.log.write("dropped", id=request_id, peer=identity.hex()[:16], reason=exc.strerror)

    def publish(self, type_: str, body: dict[str, Any]) -> None:
        self._seq += 1
        frames = encode_event(event(type_, body, engine_session=self.engine_session, seq=self._seq))
        try:
            self.pub.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            pass  # PUB drops for slow subscribers; `seq` shows the gap

    # -- stopping ------------------------------------------------------------------------------

    def _shutdown(self) -> None:
        reason = self._stop_reason or "stopping"
        self.log.write("stopping", reason=reason)
        self.publish("engine_stopping", {"reason": reason})
        self.runner.stop()  # the running job ends at its next step boundary: interrupted
        self.worker.stop()
        self._send_finished()

    def close(self) -> None:
        # Orderly stop: a short linger lets the last replies and engine_stopping leave.
        linger = CLOSE_LINGER_MS if self._stop_reason is not None else 0
        for sock in (self.router, self.pub, self.wake):
            if not sock.closed:
                sock.close(linger=linger)
        if getattr(self, "auth", None) is not None:
            self.auth.stop()  # the ZAP thread's socket, before the context ends
        self.store.close()
        worker = getattr(self, "worker", None)
        runner = getattr(self, "runner", None)
        if (worker is None or not worker.alive) and (runner is None or not runner.alive):
            self.context.term()  # else a stuck worker owns a socket: let process exit end it


def _peer_address(frame: Any) -> str | None:
    try:
        return frame.get("Peer-Address") or None
    except (zmq.ZMQError, AttributeError, TypeError):
        return None
