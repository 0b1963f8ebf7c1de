"""EngineClient against a tiny in-test ROUTER on tcp://127.0.0.1 (random port): timeouts,
retries with the same idempotency key, restart detection, a poll that never blocks, events."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import zmq

from easytune_protocol import (
    EngineRestarted,
    ErrorCode,
    Message,
    ProtocolError,
    RemoteError,
    RequestTimeout,
    decode,
    encode,
    encode_event,
    error_reply,
    event,
    reply,
)
from easytune_protocol.client import CurveKeys, EngineClient
from easytune_protocol.endpoints import is_loopback
from easytune_protocol.examples import examples

EX = examples()
# A handler gets (request, how many times this request id was seen) and returns the reply
# body, None to stay silent, or a ProtocolError to answer with an error reply.
Handler = Callable[[Message, int], "dict | ProtocolError | None"]


@dataclass
class FakeEngine:
    """A ROUTER loop in a thread: decodes each request, records it, answers via `handler`."""

    handler: Handler
    session: str = "engine-a"
    seen: list[Message] = field(default_factory=list)
    endpoint: str = ""
    events_endpoint: str = ""

    def __post_init__(self) -> None:
        ctx = zmq.Context.instance()
        self.router = ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        port = self.router.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.pub = ctx.socket(zmq.PUB)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.events_endpoint = f"tcp://127.0.0.1:{self.pub.bind_to_random_port('tcp://127.0.0.1')}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self) -> None:
        counts: dict[str, int] = {}
        while not self.stop.is_set():
            if not self.router.poll(20):
                continue
            identity, *frames = self.router.recv_multipart()
            req = decode(frames)
            self.seen.append(req)
            counts[req.header.id] = counts.get(req.header.id, 0) + 1
            out = self.handler(req, counts[req.header.id])
            if out is None:
                continue
            if isinstance(out, ProtocolError):
                msg = error_reply(out, engine_session=self.session, req=req)
            else:
                msg = reply(req, out, engine_session=self.session)
            self.router.send_multipart([identity, *encode(msg)])

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.router.close(0)
        self.pub.close(0)


def answer(req: Message, attempt: int) -> dict:
    return EX[req.type].reply


@pytest.fixture
def engine() -> Iterator[Callable[[Handler], FakeEngine]]:
    made: list[FakeEngine] = []

    def make(handler: Handler = answer) -> FakeEngine:
        made.append(FakeEngine(handler))
        return made[-1]

    yield make
    for e in made:
        e.close()


@pytest.fixture
def connect() -> Iterator[Callable[..., EngineClient]]:
    clients: list[EngineClient] = []

    def make(endpoint: str, **kw) -> EngineClient:
        clients.append(EngineClient.connect(endpoint, **kw))
        return clients[-1]

    yield make
    for c in clients:
        c.close()


def test_request_reply(engine, connect) -> None:
    e = engine()
    c = connect(e.endpoint, timeout=5.0)
    info = c.hello()
    assert info["engine_session"] == EX["hello"].reply["engine_session"]
    assert c.engine_session == "engine-a"
    out = c.request("generate", {"prompt": "a person waves", "candidates": 2})
    assert out["clips"][0]["joints"].shape == (120, 22, 3)
    assert e.seen[-1].header.session == c.session == e.seen[0].header.session


def test_timeout_raises_a_clear_error(engine, connect) -> None:
    e = engine(lambda req, n: None)  # never answers
    c = connect(e.endpoint)
    t0 = time.monotonic()
    with pytest.raises(RequestTimeout) as info:
        c.request("health", timeout=0.2, retries=1)
    assert 0.35 < time.monotonic() - t0 < 3.0
    assert info.value.code == ErrorCode.TIMEOUT
    assert "no reply to health within 0.2 s (2 attempts)" in str(info.value)
    assert len(e.seen) == 2 and e.seen[0].header.id == e.seen[1].header.id
    assert c.pending == 0


def test_retry_reuses_the_idempotency_key(engine, connect) -> None:
    # The first attempt is "lost"; the engine answers the retry.
    e = engine(lambda req, n: EX[req.type].reply if n >= 2 else None)
    c = connect(e.endpoint, timeout=0.3, retries=3)
    body = EX["submit_ranking"].request
    assert c.request("submit_ranking", body) == EX["submit_ranking"].reply
    keys = [m.header.idempotency_key for m in e.seen]
    assert len(keys) >= 2 and len(set(keys)) == 1 and keys[0]  # >2 only on a slow machine
    # a new logical request gets a new key
    e.handler = answer
    c.request("submit_ranking", body)
    assert e.seen[-1].header.idempotency_key != keys[0]


def test_generate_is_not_retried_unless_asked(engine, connect) -> None:
    e = engine(lambda req, n: None)
    c = connect(e.endpoint, timeout=0.1, retries=3)
    with pytest.raises(RequestTimeout, match="1 attempt"):
        c.request("generate", {"prompt": "p"})
    assert len(e.seen) == 1


def test_changed_engine_session_is_detected(engine, connect) -> None:
    e = engine()
    c = connect(e.endpoint, timeout=5.0)
    c.hello()
    e.session = "engine-b"  # the engine "restarted"
    with pytest.raises(EngineRestarted) as info:
        c.request("health")
    assert (info.value.old_session, info.value.new_session) == ("engine-a", "engine-b")
    assert info.value.reply == EX["health"].reply
    assert c.restarts == 1 and c.engine_session == "engine-b"
    assert c.request("health") == EX["health"].reply  # resynced: no second alarm


def test_poll_flags_a_restart_without_raising(engine, connect) -> None:
    e = engine()
    c = connect(e.endpoint, timeout=5.0)
    c.hello()
    e.session = "engine-b"
    rid = c.send("health")
    replies = wait_for(c, rid)
    assert replies[0].engine_restarted and replies[0].previous_engine_session == "engine-a"


def test_poll_returns_nothing_at_once_when_no_reply_has_arrived(engine, connect) -> None:
    e = engine(lambda req, n: None)
    c = connect(e.endpoint, timeout=5.0)
    rid = c.send("generate", {"prompt": "a person waves"})
    t0 = time.perf_counter()
    for _ in range(100):
        assert c.poll_replies(timeout=0) == []
    assert time.perf_counter() - t0 < 0.5  # 100 polls, no waiting
    assert c.pending == 1
    c.forget(rid)
    assert c.pending == 0


def test_non_blocking_send_then_poll(engine, connect) -> None:
    e = engine()
    c = connect(e.endpoint, timeout=5.0)
    rids = [c.send("health"), c.send("list_models"), c.send("job_status", {"job_id": "job-1"})]
    got = {}
    deadline = time.monotonic() + 5
    while len(got) < 3 and time.monotonic() < deadline:
        got |= {r.request_id: r for r in c.poll_replies(timeout=0.05)}
    assert set(got) == set(rids)
    assert got[rids[1]].type == "list_models" and got[rids[1]].ok


def test_error_reply_raises_remote_error(engine, connect) -> None:
    def handler(req: Message, n: int) -> ProtocolError:
        return ProtocolError(ErrorCode.NOT_FOUND, "job 'job-9' not found", field="body.job_id")

    e = engine(handler)
    c = connect(e.endpoint, timeout=5.0)
    with pytest.raises(RemoteError) as info:
        c.request("cancel_job", {"job_id": "job-9"})
    assert info.value.code == ErrorCode.NOT_FOUND and info.value.field == "body.job_id"
    assert info.value.status == "error"


def test_invalid_request_is_refused_before_sending(engine, connect) -> None:
    e = engine()
    c = connect(e.endpoint, timeout=5.0)
    with pytest.raises(ProtocolError) as info:
        c.send("generate", {"prompt": "p" * 401})
    assert info.value.field == "body.prompt"
    with pytest.raises(ProtocolError) as info:
        c.send("teleport")
    assert info.value.code == ErrorCode.UNKNOWN_TYPE
    assert c.pending == 0 and e.seen == []


def test_events(engine, connect) -> None:
    e = engine()
    c = connect(e.endpoint, timeout=5.0)
    c.subscribe(e.events_endpoint, topics=(b"job_",))
    body = EX["job_progress"].request
    got: list[Message] = []
    deadline = time.monotonic() + 5
    seq = 0
    while not got and time.monotonic() < deadline:  # SUB joins asynchronously
        seq += 1
        e.pub.send_multipart(
            encode_event(event("engine_stopping", {"reason": "x"}, engine_session="a", seq=seq))
        )
        e.pub.send_multipart(encode_event(event("job_progress", body, engine_session="a", seq=seq)))
        got = c.poll_events(timeout=0.05)
    assert got and all(m.type == "job_progress" for m in got)
    assert got[0].body["job_id"] == body["job_id"]


def test_non_loopback_needs_curve() -> None:
    with pytest.raises(ValueError, match="CurveZMQ"):
        EngineClient.connect("tcp://192.168.1.20:5555")
    assert is_loopback("tcp://127.0.0.1:5555") and is_loopback("tcp://localhost:1")
    assert is_loopback("tcp://[::1]:5555") and is_loopback("ipc:///tmp/x")
    assert not is_loopback("tcp://10.0.0.2:5555") and not is_loopback("tcp://*:5555")
    with pytest.raises(ValueError, match="Z85"):
        CurveKeys(b"short", b"x" * 40, b"y" * 40)


def test_close_does_not_hang_with_unsent_requests(engine) -> None:
    c = EngineClient.connect("tcp://127.0.0.1:9", timeout=5.0)  # nobody listens
    c.send("health")
    t0 = time.monotonic()
    c.close()
    assert time.monotonic() - t0 < 1.0


def wait_for(c: EngineClient, rid: str) -> list:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        replies = [r for r in c.poll_replies(timeout=0.05) if r.request_id == rid]
        if replies:
            return replies
    raise AssertionError("no reply")


def test_curve_keys_are_used() -> None:
    """With CurveKeys the client talks to a CURVE server (here without a ZAP allow-list)."""
    server_public, server_secret = zmq.curve_keypair()
    public, secret = zmq.curve_keypair()
    router = zmq.Context.instance().socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.curve_server = True
    router.curve_secretkey = server_secret
    port = router.bind_to_random_port("tcp://127.0.0.1")
    keys = CurveKeys(server_public, public, secret)
    c = EngineClient.connect(f"tcp://127.0.0.1:{port}", curve=keys, timeout=5.0)
    try:
        rid = c.send("health")
        assert router.poll(5000), "no request reached the CURVE server"
        identity, *frames = router.recv_multipart()
        req = decode(frames)
        router.send_multipart(
            [identity, *encode(reply(req, EX["health"].reply, engine_session="e"))]
        )
        assert wait_for(c, rid)[0].ok
    finally:
        c.close()
        router.close(0)
