"""Load: 8 clients × 100 `generate` requests at once against one real engine (issue 6 §4).

Each client is a thread with its own `EngineClient` that sends its requests one after another, so
up to 8 requests wait for the worker together and get batched. What a user relies on under load:
every request is answered exactly once, with its own seed, its own length and the motions that
seed gives when the request runs alone. The tiny MLD, one candidate, 24–40 frames and 2 DDIM steps
keep the whole run well under two minutes on a busy 2-core machine.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pytest
from serve_helpers import Engine

from easytune_protocol.client import EngineClient, Reply

pytestmark = pytest.mark.slow

CLIENTS = 8
REQUESTS = 100  # per client
LENGTHS = (24, 32, 40)  # frames; few distinct values so concurrent requests can share a batch
PROMPTS = ("a person waves with the right hand", "a person jumps twice")
STEPS = 2
RESENT = 6  # batched requests sent again alone
REQUEST_TIMEOUT = 120.0  # s per request; generous, the machine may be loaded


@dataclass(frozen=True)
class Sent:
    """One generate request of the load and what came back."""

    client: int
    request_id: str
    body: dict
    clip_id: str
    reply_seed: int
    frames: int
    joints: np.ndarray  # (frames, 22, 3) metres


def body_for(client: int, i: int) -> dict:
    """Request i of `client`: a seed no other request has, one of LENGTHS (so (seed, length)
    differs between any two requests) and one of PROMPTS."""
    return {
        "prompt": PROMPTS[(client + i) % len(PROMPTS)],
        "candidates": 1,
        "length": LENGTHS[(client + i) % len(LENGTHS)],
        "seed": 1_000 * (client + 1) + i,
        "steps": STEPS,
    }


def run_client(engine: Engine, client: int, start: threading.Barrier) -> tuple[list[Sent], int]:
    """Send REQUESTS generates one after another; returns what came back and the client's count
    of replies that answered nothing it was waiting for (duplicates, strays)."""
    out: list[Sent] = []
    with EngineClient.connect(engine.bind, timeout=REQUEST_TIMEOUT, retries=0) as c:
        start.wait()
        for i in range(REQUESTS):
            body = body_for(client, i)
            rid = c.send("generate", body)
            result = reply_to(c, rid).result()
            (clip,) = result["clips"]
            seed, frames = result["seed"], clip["frames"]
            out.append(Sent(client, rid, body, clip["clip_id"], seed, frames, clip["joints"]))
        c.poll_replies(timeout=0.2)  # a late duplicate would be counted in `dropped`
        return out, c.dropped


def reply_to(client: EngineClient, request_id: str) -> Reply:
    """The reply to the client's one request in flight (or its timeout)."""
    while True:
        for rep in client.poll_replies(timeout=1.0):
            assert rep.request_id == request_id, "a reply to another request"
            return rep


@pytest.fixture(scope="module")
def load(engine: Engine) -> list[Sent]:
    """The 800 requests, run once for the module."""
    start = threading.Barrier(CLIENTS)
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(run_client, engine, k, start) for k in range(CLIENTS)]
        results = [f.result(timeout=600) for f in futures]
    for _, dropped in results:
        assert dropped == 0, "a client got a reply it was not waiting for"
    return [s for sent, _ in results for s in sent]


def test_every_request_is_answered_once_with_its_own_seed_and_length(
    load: list[Sent], engine: Engine
) -> None:
    assert len(load) == CLIENTS * REQUESTS
    assert len({s.request_id for s in load}) == len(load)
    assert len({s.clip_id for s in load}) == len(load)
    assert len({(s.body["seed"], s.body["length"]) for s in load}) == len(load)
    for s in load:
        assert s.reply_seed == s.body["seed"], s
        assert s.frames == s.body["length"], s
        assert s.joints.shape == (s.body["length"], 22, 3)
        assert np.isfinite(s.joints).all()

    # The server's side: one `request` log line per generate, all ok.
    ids = {s.request_id for s in load}
    lines = request_lines(engine, load)
    assert Counter(r["id"] for r in lines) == Counter(ids)
    assert {r["status"] for r in lines} == {"ok"} and {r["type"] for r in lines} == {"generate"}

    # Every clip is stored under its request's seed, with its request's length and prompt.
    with sqlite3.connect(engine.data_dir / "engine.sqlite") as conn:
        rows = conn.execute(
            "SELECT c.id, c.prompt, c.frames, m.seed FROM clips c "
            "JOIN clip_meta m ON m.clip_id = c.id"
        ).fetchall()
    stored = {cid: (prompt, frames, seed) for cid, prompt, frames, seed in rows}
    for s in load:
        assert stored[s.clip_id] == (s.body["prompt"], s.body["length"], s.body["seed"]), s

    with engine.client() as c:
        health = c.request("health")
    assert health["status"] == "ok" and health["queued_requests"] == 0


def test_requests_were_batched(load: list[Sent], engine: Engine) -> None:
    batches = Counter(r["batch"] for r in request_lines(engine, load))
    assert max(batches) > 1, batches
    assert max(batches) <= CLIENTS  # each client has one request in flight


def test_batched_motions_equal_the_same_request_sent_alone(
    load: list[Sent], engine: Engine
) -> None:
    batch_of = {r["id"]: r["batch"] for r in request_lines(engine, load)}
    batched = [s for s in load if batch_of[s.request_id] > 1]
    # Spread over clients and lengths: every k-th batched request.
    picked = batched[:: max(1, len(batched) // RESENT)][:RESENT]
    assert len(picked) == RESENT
    resent = []
    with EngineClient.connect(engine.bind, timeout=REQUEST_TIMEOUT, retries=0) as c:
        for s in picked:
            rid = c.send("generate", s.body)
            resent.append(rid)
            (clip,) = reply_to(c, rid).result()["clips"]
            assert clip["clip_id"] != s.clip_id
            np.testing.assert_allclose(clip["joints"], s.joints, atol=1e-4)
    # They ran alone: nothing else was in flight.
    lines = wait_for_log(engine, lambda r: r.get("id") in resent, RESENT)
    assert [r["batch"] for r in lines] == [1] * RESENT, lines


def request_lines(engine: Engine, load: list[Sent]) -> list[dict]:
    """The server's `request` log lines for the load's requests (engine.log: JSON lines)."""
    ids = {s.request_id for s in load}
    return wait_for_log(
        engine, lambda r: r.get("event") == "request" and r.get("id") in ids, len(ids)
    )


def wait_for_log(
    engine: Engine, predicate: Callable[[dict], bool], count: int, timeout: float = 10.0
) -> list[dict]:
    """The log lines matching `predicate`, once there are `count` of them (the reply can reach
    the client before its log line reaches our stderr reader)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in engine.log if predicate(r)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)
