"""Requests against a real engine process: hello, models, generate, rankings, idempotency."""

from __future__ import annotations

import sqlite3
import time

import numpy as np
import pytest
import zmq

from easytune_engine.checkpoint import load_checkpoint
from easytune_engine.text.minilm import find_word_model
from easytune_protocol import PROTOCOL_VERSION, ErrorCode, RemoteError, encode, request
from easytune_protocol.catalogue import JOINT_NAMES, JOINT_PARENTS
from easytune_protocol.client import EngineClient

PROMPT = "a person waves with the right hand"
GEN = {"prompt": PROMPT, "candidates": 3, "length": 40, "seed": 11, "steps": 4}


def db(engine) -> sqlite3.Connection:
    return sqlite3.connect(engine.data_dir / "engine.sqlite")


def test_hello_and_list_models(client: EngineClient, engine) -> None:
    info = client.hello("test-client")
    assert info["protocol_version"] == PROTOCOL_VERSION
    assert info["engine_session"] == engine.ready["engine_session"] == client.engine_session
    assert info["device"] == "cpu" and info["fps"] == 20
    assert info["events"] == engine.ready["events"]
    assert info["joint_names"] == list(JOINT_NAMES)
    assert info["joint_parents"] == list(JOINT_PARENTS)
    assert {"generate", "rankings", "prompt_rewrite"} <= set(info["capabilities"])
    # Synonyms are offered exactly when the engine has the word model (the tests share its env).
    assert ("prompt_synonyms" in info["capabilities"]) == (find_word_model() is not None)
    (model,) = info["models"]
    assert model["name"] == "mld" and model["kind"] == "mld"
    assert client.request("list_models")["models"] == info["models"]


def test_generate_round_trip(client: EngineClient, engine, tiny_model) -> None:
    out = client.request("generate", GEN)
    assert (out["seed"], out["steps"], out["backbone"], out["fps"]) == (11, 4, "mld", 20)
    assert len(out["clips"]) == 3
    for clip in out["clips"]:
        t = clip["frames"]
        assert t == 40
        assert clip["joints"].shape == (t, 22, 3) and clip["joints"].dtype == np.float32
        assert clip["rotations"].shape == (t, 22, 4)
        norms = np.linalg.norm(clip["rotations"], axis=-1)
        np.testing.assert_allclose(norms, 1.0, atol=1e-5)
        np.testing.assert_allclose(clip["root_translation"], clip["joints"][:, 0], atol=1e-5)
        assert clip["foot_contacts"].shape == (t, 4)
        assert set(np.unique(clip["foot_contacts"])) <= {0, 1}
    ids = [c["clip_id"] for c in out["clips"]]
    assert len(set(ids)) == 3

    # Every clip is stored before the reply, with how it was made.
    sha = load_checkpoint(tiny_model, "backbone/mld").sha256
    with db(engine) as conn:
        rows = conn.execute(
            "SELECT c.id, c.prompt, c.frames, c.dim, length(c.features), m.backbone, "
            "m.checkpoint_sha256, m.seed, m.candidate, m.sampler, m.steps "
            "FROM clips c JOIN clip_meta m ON m.clip_id = c.id WHERE c.id IN (?, ?, ?) "
            "ORDER BY m.candidate",
            ids,
        ).fetchall()
    assert [r[0] for r in rows] == ids
    for k, (_, prompt, frames, dim, nbytes, backbone, ck, seed, cand, sampler, steps) in enumerate(
        rows
    ):
        assert (prompt, frames, dim, nbytes) == (PROMPT, 40, 263, 40 * 263 * 4)
        assert (backbone, ck, seed, cand, sampler, steps) == ("mld", sha, 11, k, "ddim", 4)

    # Same seed, same motions (new clip ids).
    again = client.request("generate", GEN)
    for a, b in zip(out["clips"], again["clips"], strict=True):
        assert a["clip_id"] != b["clip_id"]
        np.testing.assert_allclose(a["joints"], b["joints"], atol=1e-5)


def test_generate_reports_how_the_prompt_was_read(client: EngineClient, engine) -> None:
    """A slip is corrected before the model reads it (same motions as the corrected prompt), the
    reply says so, the stored clip keeps the prompt as typed; rewrite false sends it as typed."""
    body = {**GEN, "candidates": 1, "length": 20}
    right = client.request("generate", {**body, "prompt": "a person jumps twice"})
    typo = client.request("generate", {**body, "prompt": "a person jmups twice"})
    raw = client.request("generate", {**body, "prompt": "a person jmups twice", "rewrite": False})
    assert right.get("interpreted_prompt") is None and right.get("substitutions") is None
    assert typo["interpreted_prompt"] == "a person jumps twice"
    (sub,) = typo["substitutions"]
    assert (sub["word"], sub["replacement"], sub["reason"]) == ("jmups", "jumps", "typo")
    assert 0.0 < sub["score"] <= 1.0
    assert raw.get("interpreted_prompt") is None
    joints = [r["clips"][0]["joints"] for r in (right, typo, raw)]
    assert np.array_equal(joints[0], joints[1]) and not np.array_equal(joints[0], joints[2])
    with db(engine) as conn:
        (stored,) = conn.execute(
            "SELECT prompt FROM clips WHERE id = ?", (typo["clips"][0]["clip_id"],)
        ).fetchone()
    assert stored == "a person jmups twice"


def test_generate_errors_name_the_field(client: EngineClient) -> None:
    cases = [
        ({"backbone": "mdm"}, ErrorCode.NOT_FOUND, "body.backbone"),
        ({"adapter": "nope"}, ErrorCode.NOT_FOUND, "body.adapter"),
        ({"sampler": "lcm"}, ErrorCode.INVALID_FIELD, "body.sampler"),
    ]
    for extra, code, field in cases:
        with pytest.raises(RemoteError) as err:
            client.request("generate", {**GEN, **extra})
        assert err.value.code == code and err.value.field == field, err.value


def test_socket_loop_answers_while_generating(client: EngineClient) -> None:
    """health is answered while a long generate runs on the worker."""
    rid = client.send("generate", {**GEN, "candidates": 16, "length": 196, "steps": 50})
    hid = client.send("health", {})
    order = []
    while len(order) < 2:
        order += [r.request_id for r in client.poll_replies(timeout=20)]
    assert order[0] == hid, "health waited behind generate"
    assert rid in order


def ranked_clips(client: EngineClient, prompt: str = PROMPT) -> list[str]:
    out = client.request("generate", {**GEN, "prompt": prompt})
    return [c["clip_id"] for c in out["clips"]]


def test_submit_ranking_is_idempotent(client: EngineClient, engine) -> None:
    ids = ranked_clips(client)
    body = {"prompt": PROMPT, "ranked": ids[:2], "rejected": ids[2:]}
    with db(engine) as conn:
        (before,) = conn.execute("SELECT COUNT(*) FROM rankings").fetchone()
    replies = []
    for _ in range(2):  # a retry: the same key and body
        client.send("submit_ranking", body, idempotency_key="rank-key-1")
        (rep,) = client.poll_replies(timeout=20)
        replies.append(rep)
    first, second = replies
    assert first.ok and second.ok
    assert first.body == second.body
    assert first.body["pairs"] == 3  # c0 > c1, c0 > c2, c1 > c2
    assert not first.header.replayed and second.header.replayed
    with db(engine) as conn:
        (after,) = conn.execute("SELECT COUNT(*) FROM rankings").fetchone()
        (stored,) = conn.execute(
            "SELECT ranked FROM rankings WHERE id = ?", (first.body["ranking_id"],)
        ).fetchone()
    assert after == before + 1
    assert stored == f'["{ids[0]}", "{ids[1]}"]'

    # The same key with another body is a conflict, not a second ranking.
    with pytest.raises(RemoteError) as err:
        client.request("submit_ranking", {**body, "ranked": ids[:1]}, idempotency_key="rank-key-1")
    assert err.value.code == ErrorCode.CONFLICT


def test_unknown_clip_id_is_not_found(client: EngineClient, engine) -> None:
    ids = ranked_clips(client)
    with db(engine) as conn:
        (before,) = conn.execute("SELECT COUNT(*) FROM rankings").fetchone()
    with pytest.raises(RemoteError) as err:
        client.request("submit_ranking", {"prompt": PROMPT, "ranked": [ids[0], "clip-unknown"]})
    assert err.value.code == ErrorCode.NOT_FOUND and "clip-unknown" in err.value.message
    with pytest.raises(RemoteError) as err:
        client.request("submit_ranking", {"prompt": "a person sits down", "ranked": ids[:2]})
    assert err.value.code == ErrorCode.INVALID_FIELD and err.value.field == "body.prompt"
    with db(engine) as conn:
        (after,) = conn.execute("SELECT COUNT(*) FROM rankings").fetchone()
    assert after == before


def test_list_and_export_rankings_page(client: EngineClient) -> None:
    ids = ranked_clips(client, "a person jumps")
    for k in range(3):
        client.request(
            "submit_ranking",
            {"prompt": "a person jumps", "ranked": [ids[k], ids[(k + 1) % 3]]},
        )
    total = client.request("list_rankings", {"limit": 500})["total"]
    seen, after = [], 0
    while True:
        page = client.request("list_rankings", {"after": after, "limit": 2})
        assert page["total"] == total and len(page["rankings"]) <= 2
        seen += [r["ranking_id"] for r in page["rankings"]]
        if page.get("next_after") is None:
            break
        after = page["next_after"]
    assert seen == sorted(seen) and len(seen) == total

    last = client.request("list_rankings", {"after": seen[-4], "limit": 500})["rankings"]
    exported = client.request("export_rankings", {"after": seen[-4], "limit": 8})
    assert exported["format"] == "easytune-rankings" and exported["rankings"] == last
    named = {c for r in last for c in (*r["ranked"], *r["rejected"])}
    clips = {c["clip_id"]: c for c in exported["clips"]}
    assert set(clips) == named
    for c in clips.values():
        assert c["features"].shape == (40, 263) and c["features"].dtype == np.float32


def wait_for_log(engine, predicate, count: int = 1, timeout: float = 10.0) -> list[dict]:
    """The log lines matching `predicate`, once there are `count` of them ([] on timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in engine.log if predicate(r)]
        if len(found) >= count:
            return found
        time.sleep(0.05)
    return []


def test_concurrent_generates_are_batched_with_unchanged_motions(
    client: EngineClient, engine
) -> None:
    """Requests queued behind a long one share one sampling call; each still gets the motions
    its seed gives alone."""
    blocker = client.send("generate", {**GEN, "candidates": 16, "length": 196, "steps": 50})
    seeds = {client.send("generate", {**GEN, "seed": s}): s for s in (21, 22, 23)}
    replies = {}
    while len(replies) < 4:
        replies.update({r.request_id: r for r in client.poll_replies(timeout=20)})
    assert replies[blocker].ok
    lines = wait_for_log(engine, lambda r: r.get("id") in seeds, count=3)
    assert len(lines) == 3 and all(r["batch"] == 3 for r in lines), lines
    for rid, seed in seeds.items():
        alone = client.request("generate", {**GEN, "seed": seed})
        for a, b in zip(replies[rid].result()["clips"], alone["clips"], strict=True):
            np.testing.assert_allclose(a["joints"], b["joints"], atol=1e-4)


def test_a_client_that_leaves_mid_request_is_dropped(engine) -> None:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 2000)  # close() waits until the request is out, then goes at once
    sock.connect(engine.bind)
    msg = request("generate", {**GEN, "candidates": 16, "length": 196, "steps": 50}, session="s")
    sock.send_multipart(encode(msg))
    sock.close()  # gone long before the generation can finish, whatever the machine's load
    assert wait_for_log(engine, lambda r: r.get("event") == "dropped", timeout=30)
    assert wait_for_log(engine, lambda r: r.get("id") == msg.header.id)
    with engine.client() as c:
        assert c.request("health")["queued_requests"] == 0
