"""Malformed and hostile frames get error replies by PROTOCOL.md's rule; the engine stays up."""

from __future__ import annotations

import random
from pathlib import Path

import msgpack
import pytest
import zmq

from easytune_protocol import ErrorCode, decode, encode, request

CODES = {c.value for c in ErrorCode}


def hostile_messages(rng: random.Random, count: int) -> list[list[bytes]]:
    """Random bytes, truncated and corrupted valid messages, wrong versions, types and kinds."""
    good = encode(request("health", {}, session="s1"))
    gen = encode(request("generate", {"prompt": "a person waves"}, session="s1"))
    header = msgpack.unpackb(good[0])

    def with_header(**changes) -> list[bytes]:
        return [msgpack.packb({**header, **changes}), good[1]]

    makers = [
        lambda: [rng.randbytes(rng.randint(0, 64))],
        lambda: [rng.randbytes(rng.randint(0, 64)) for _ in range(rng.randint(2, 5))],
        lambda: [bytes(good[0])[: rng.randint(0, len(good[0]) - 1)], bytes(good[1])],
        lambda: [bytes(gen[0]), bytes(gen[1])[: rng.randint(0, len(gen[1]) - 1)]],
        lambda: [bytes(good[0]), bytes(good[1]), rng.randbytes(8)],  # unreferenced frame
        lambda: with_header(protocol="9.9"),
        lambda: with_header(type="no_such_type"),
        lambda: with_header(kind="reply"),
        lambda: with_header(id=12345),
        lambda: [msgpack.packb([1, 2, 3]), good[1]],
        lambda: [bytes(gen[0]), msgpack.packb({"prompt": 5})],
        lambda: [bytes(gen[0]), msgpack.packb({"prompt": "x", "candidates": 10**6})],
        lambda: [bytes(good[0]), b"\x91" * 200 + b"\xc0"],  # nesting 200 deep
        lambda: [bytes(good[0]), b"\xdd\xff\xff\xff\xff"],  # array declaring 4e9 items
    ]
    return [rng.choice(makers)() for _ in range(count)]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_hostile_frames_then_a_valid_request(engine) -> None:
    """10,000 malformed or hostile messages, in chunks of 500 (under the sockets' HWMs): each
    gets one error reply, the engine's memory stays bounded, and a valid request then works."""
    rng = random.Random(0)
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(engine.bind)
    with engine.client() as client:  # warm up (first replies allocate) before measuring
        client.request("health")
    before = rss_mib(engine.proc.pid)
    replies = []
    try:
        for _ in range(20):
            chunk = hostile_messages(rng, 500)
            for frames in chunk:
                sock.send_multipart(frames)
            got = 0
            while got < len(chunk) and sock.poll(10_000):
                replies.append(sock.recv_multipart())
                got += 1
            assert got == len(chunk), "every message gets exactly one reply"
    finally:
        sock.close()
    for frames in replies:
        rep = decode(frames)
        assert rep.header.kind == "reply" and rep.header.status == "error"
        assert rep.body["code"] in CODES - {"timeout", "engine_restarted"}
    assert engine.proc.poll() is None
    assert rss_mib(engine.proc.pid) - before < 64, "the engine's memory grew"
    with engine.client() as client:
        assert client.request("health")["status"] == "ok"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"protocol": "0.0"}, ErrorCode.UNSUPPORTED_VERSION),
        ({"type": "teleport"}, ErrorCode.UNKNOWN_TYPE),
        ({"type": "start_job"}, ErrorCode.INVALID_FIELD),  # no idempotency key
    ],
)
def test_error_reply_addresses_the_request(engine, changes: dict, code: ErrorCode) -> None:
    msg = request("health", {}, session="s1")
    header = {**msgpack.unpackb(encode(msg)[0]), **changes}
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(engine.bind)
    try:
        sock.send_multipart([msgpack.packb(header), msgpack.packb({})])
        assert sock.poll(10_000)
        rep = decode(sock.recv_multipart())
    finally:
        sock.close()
    assert rep.header.reply_to == msg.header.id
    assert rep.body["code"] == code, rep.body


def test_a_body_over_the_limit_is_too_large(engine) -> None:
    """Sizes are checked before anything is unpacked, so the reply cannot name the request."""
    frames = encode(request("health", {}, session="s1"))
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(engine.bind)
    try:
        sock.send_multipart([frames[0], msgpack.packb({"pad": "x" * (5 << 20)})])
        assert sock.poll(10_000)
        rep = decode(sock.recv_multipart())
    finally:
        sock.close()
    assert rep.body["code"] == ErrorCode.TOO_LARGE and rep.header.reply_to == ""
