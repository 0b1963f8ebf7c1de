"""A client written from protocol/PROTOCOL.md alone (pyzmq + msgpack + numpy, none of
easytune_protocol) drives a real engine: hello, generate, submit_ranking, a fine-tuning job
followed through its events, activation. If the document and the engine disagree, this fails."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import msgpack
import numpy as np
import zmq

DOC = Path(__file__).parents[3] / "protocol" / "PROTOCOL.md"


def doc_version() -> str:
    """The protocol version, as the document states it."""
    match = re.search(r"protocol version: `([0-9][^`]*)`", DOC.read_text(), re.IGNORECASE)
    assert match, "PROTOCOL.md does not state its version"
    return match.group(1)


class BareClient:
    def __init__(self, endpoint: str) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.session = uuid.uuid4().hex
        self.version = doc_version()

    def request(self, type_: str, body: dict, state_changing: bool = False) -> tuple[dict, dict]:
        rid = uuid.uuid4().hex
        header = {"protocol": self.version, "kind": "request", "type": type_, "id": rid,
                  "time": time.time(), "session": self.session}  # fmt: skip
        if state_changing:
            header["idempotency_key"] = uuid.uuid4().hex
        self.sock.send_multipart([msgpack.packb(header), msgpack.packb(body)])
        assert self.sock.poll(60_000), f"no reply to {type_}"
        frames = self.sock.recv_multipart()
        rh, rb = msgpack.unpackb(frames[0]), msgpack.unpackb(frames[1])
        assert rh["kind"] == "reply" and rh["reply_to"] == rid
        assert rh["status"] == "ok", rb
        return rh, resolve_arrays(rb, frames)

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()


def resolve_arrays(value, frames: list[bytes]):
    """Replace every [dtype, shape, frame] reference by the array it names (PROTOCOL.md, Arrays)."""
    dtypes = {"float32", "float64", "int32", "int64", "uint8", "bool"}
    if isinstance(value, dict):
        return {k: resolve_arrays(v, frames) for k, v in value.items()}
    if (
        isinstance(value, list) and len(value) == 3 and value[0] in dtypes
        and isinstance(value[1], list) and isinstance(value[2], int) and value[2] >= 2
    ):  # fmt: skip
        dtype, shape, index = value
        return np.frombuffer(frames[index], dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)
    if isinstance(value, list):
        return [resolve_arrays(v, frames) for v in value]
    return value


def test_a_client_from_the_document_alone_drives_the_engine(engine) -> None:
    client = BareClient(engine.bind)
    sub = client.ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    try:
        _, hello = client.request("hello", {"client": "bare-doc-client"})
        assert hello["protocol_version"] == client.version
        sub.connect(hello["events"])
        sub.setsockopt(zmq.SUBSCRIBE, b"job_")
        parents = hello["joint_parents"]

        prompt = "a person waves with both hands"
        body = {"prompt": prompt, "candidates": 2, "length": 30, "seed": 3, "steps": 4}
        _, gen = client.request("generate", body)
        for clip in gen["clips"]:
            t = clip["frames"]
            assert clip["joints"].shape == (t, len(parents), 3) == (30, 22, 3)
            q = clip["rotations"]
            np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-4)
            np.testing.assert_allclose(clip["root_translation"], clip["joints"][:, 0], atol=1e-5)
        ids = [c["clip_id"] for c in gen["clips"]]
        _, ranked = client.request("submit_ranking", {"prompt": prompt, "ranked": ids}, True)
        assert ranked["pairs"] == 1

        time.sleep(0.3)  # the subscription reaches the publisher
        _, started = client.request("start_job", {"kind": "finetune", "budget": 2}, True)
        job_id = started["job"]["job_id"]
        events = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(
            e["type"] == "job_finished" and e["job_id"] == job_id for e in events
        ):
            if sub.poll(500):
                topic, header, payload = sub.recv_multipart()
                h, b = msgpack.unpackb(header), msgpack.unpackb(payload)
                assert topic.decode() == h["type"] and h["kind"] == "event"
                events.append({"type": h["type"], "seq": h["seq"], **b})
        mine = [e for e in events if e["job_id"] == job_id]
        assert mine and mine[-1]["type"] == "job_finished" and mine[-1]["state"] == "finished"
        assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
        name = mine[-1]["checkpoint"]
        _, act = client.request("activate_checkpoint", {"name": name}, True)
        assert act["active"] == name
        _, again = client.request("generate", body)
        assert again["checkpoint"] == name
        client.request("rollback", {"backbone": act["backbone"]}, True)
    finally:
        sub.close()
        client.close()
