"""Jobs and the checkpoint registry against a real engine: fine-tune, SPL-refine, cancel,
activate, roll back, adapters, and what survives a kill -9."""

from __future__ import annotations

import hashlib
import signal
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from serve_helpers import Engine, start_engine

from easytune_engine.checkpoint import load_checkpoint
from easytune_engine.finetune import lora
from easytune_engine.finetune.trainer import LR_LORA
from easytune_protocol import ErrorCode, RemoteError
from easytune_protocol.catalogue import FINAL_JOB_STATES
from easytune_protocol.client import EngineClient

PROMPT = "a person walks forward and waves"
GEN = {"prompt": PROMPT, "candidates": 3, "length": 32, "seed": 5, "steps": 4}
JOB_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def engine(tiny_model: Path, tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    server = start_engine(
        tmp_path_factory.mktemp("jobs") / "data", tiny_model, "--data", str(tiny_corpus)
    )
    yield server
    server.stop()


def rank(client: EngineClient, prompt: str = PROMPT) -> list[str]:
    """Generate candidates for `prompt` and store a ranking of them (best first)."""
    clips = client.request("generate", {**GEN, "prompt": prompt})["clips"]
    ids = [c["clip_id"] for c in clips]
    client.request("submit_ranking", {"prompt": prompt, "ranked": ids})
    return ids


def wait_job(client: EngineClient, job_id: str, states=FINAL_JOB_STATES, step: int = 0) -> dict:
    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline:
        (job,) = client.request("job_status", {"job_id": job_id})["jobs"]
        if job["state"] in states and job["step"] >= step:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached {states} (last: {job})")


def finished_job_file(engine: Engine, client: EngineClient, body: dict, name: str) -> Path:
    """Start a job, wait until it has finished, and return the file `name` it wrote."""
    job = client.request("start_job", body)["job"]
    done = wait_job(client, job["job_id"])
    assert done["state"] == "finished", done
    (path,) = (engine.data_dir / "jobs" / job["job_id"]).glob(name)
    return path


def joints(reply: dict) -> np.ndarray:
    return np.stack([c["joints"] for c in reply["clips"]])


def test_finetune_job_registers_activates_and_rolls_back(engine: Engine) -> None:
    with engine.client() as client:
        hello = client.hello()
        client.subscribe(hello["events"])
        rank(client)
        base = client.request("generate", GEN)
        time.sleep(0.3)  # PUB/SUB: let the subscription reach the publisher
        job = client.request(
            "start_job", {"kind": "finetune", "budget": 8, "checkpoint_name": "walk-ft"}
        )["job"]
        assert job["state"] == "queued" and job["total"] == 8 and job["method"] == "easytune"
        # Generation is served while the job runs, from the weights active before it.
        wait_job(client, job["job_id"], ("running",), step=1)
        during = client.request("generate", GEN)
        assert "checkpoint" not in during or during["checkpoint"] is None
        np.testing.assert_array_equal(joints(during), joints(base))
        done = wait_job(client, job["job_id"])
        assert done["state"] == "finished" and done["step"] == 8 and done["progress"] == 1.0
        assert done["checkpoint"] == "walk-ft" and done["metrics"]["updates"] > 8

        events = [
            e for e in client.poll_events(timeout=2.0) if e.body.get("job_id") == job["job_id"]
        ]
        kinds = [e.type for e in events]
        assert kinds[0] == "job_started" and kinds[-1] == "job_finished"
        steps = [e.body["step"] for e in events if e.type == "job_progress"]
        assert steps == sorted(steps) and steps[-1] == 8
        assert events[-1].body["checkpoint"] == "walk-ft"

        (ckpt,) = client.request("list_checkpoints", {"backbone": "mld"})["checkpoints"]
        assert ckpt["name"] == "walk-ft" and ckpt["kind"] == "full" and not ckpt["active"]
        (path,) = (engine.data_dir / "jobs" / job["job_id"]).glob("model.safetensors")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == ckpt["sha256"]

        # Activation switches what generate serves; rollback switches it back exactly.
        act = client.request("activate_checkpoint", {"name": "walk-ft"})
        assert act["backbone"] == "mld" and act["active"] == "walk-ft"
        assert act.get("previous") is None
        tuned = client.request("generate", GEN)
        assert tuned["checkpoint"] == "walk-ft"
        assert np.abs(joints(tuned) - joints(base)).max() > 1e-4
        assert client.request("list_models")["models"][0]["checkpoint"] == "walk-ft"
        announced = [e for e in client.poll_events(timeout=1.0) if e.type == "checkpoint_activated"]
        assert announced and announced[-1].body["active"] == "walk-ft"

        back = client.request("rollback", {"backbone": "mld"})
        assert back.get("active") is None and back["previous"] == "walk-ft"
        again = client.request("generate", GEN)
        np.testing.assert_array_equal(joints(again), joints(base))
        with pytest.raises(RemoteError) as err:
            client.request("rollback", {"backbone": "mld"})  # the shipped weights: nothing left
        assert err.value.code == ErrorCode.INVALID_FIELD


def test_finetune_reads_ranked_prompts_as_generate_did(engine: Engine) -> None:
    """A ranking of a misspelt prompt trains on the prompt the model read, not the typo."""
    with engine.client() as client:
        rank(client, "a person wlaks forward")
        job = client.request("start_job", {"kind": "finetune", "budget": 1})["job"]
        assert wait_job(client, job["job_id"])["state"] == "finished"
    notes = [r["line"] for r in engine.log if r.get("event") == "job_note"]
    assert any(
        "rewritten; 'a person wlaks forward' read as 'a person walks forward'" in n for n in notes
    ), notes


def test_cancel_stops_a_running_job_and_a_queued_one_never_starts(engine: Engine) -> None:
    with engine.client() as client:
        rank(client, "a person jumps in place")
        long = client.request("start_job", {"kind": "finetune", "budget": 100_000})["job"]
        queued = client.request("start_job", {"kind": "finetune", "budget": 3})["job"]
        wait_job(client, long["job_id"], ("running",), step=1)
        # Generation and cancel are answered while the job trains.
        client.request("generate", {**GEN, "prompt": "a person jumps in place"})
        cancelled = client.request("cancel_job", {"job_id": queued["job_id"]})["job"]
        assert cancelled["state"] == "cancelled" and cancelled["step"] == 0
        asked = client.request("cancel_job", {"job_id": long["job_id"]})["job"]
        assert asked["state"] in ("cancelling", "cancelled")
        final = wait_job(client, long["job_id"])
        assert final["state"] == "cancelled" and 1 <= final["step"] < 100_000
        assert "checkpoint" not in final or final["checkpoint"] is None
        # Cancelling a finished job changes nothing; an unknown id is not_found.
        assert (
            client.request("cancel_job", {"job_id": long["job_id"]})["job"]["state"] == "cancelled"
        )
        with pytest.raises(RemoteError) as err:
            client.request("cancel_job", {"job_id": "job-nope"})
        assert err.value.code == ErrorCode.NOT_FOUND
        (q,) = client.request("job_status", {"job_id": queued["job_id"]})["jobs"]
        assert q["state"] == "cancelled" and "started" not in {k for k, v in q.items() if v}
        names = {c["job_id"] for c in client.request("list_checkpoints")["checkpoints"]}
        assert long["job_id"] not in names and queued["job_id"] not in names


def test_spl_refine_registers_a_reward_checkpoint_that_orders_pairs(engine: Engine) -> None:
    with engine.client() as client:
        rank(client, "a person crouches")
        job = client.request("start_job", {"kind": "spl_refine", "budget": 6, "activate": True})[
            "job"
        ]
        done = wait_job(client, job["job_id"])
        assert done["state"] == "finished", done
        m = done["metrics"]
        assert m["ranking_pairs"] >= 3 and 0 <= m["pairs_ordered"] <= m["ranking_pairs"]
        (ckpt,) = client.request("list_checkpoints", {"backbone": "reward"})["checkpoints"]
        assert ckpt["active"] and ckpt["name"] == done["checkpoint"]
        with pytest.raises(RemoteError) as err:
            client.request("start_job", {"kind": "spl_refine", "budget": 2, "backbone": "mld"})
        assert err.value.code == ErrorCode.INVALID_FIELD and err.value.field == "body.backbone"


def test_an_anchored_finetune_job_trains_with_its_anchor(engine: Engine) -> None:
    """`start_job` with `anchor` reaches the trainer: the tuned checkpoint records it."""
    from easytune_engine.models.io import load_backbone

    with engine.client() as client:
        body = {"kind": "finetune", "budget": 2, "anchor": 5.0, "checkpoint_name": "anchored"}
        path = finished_job_file(engine, client, body, "model.safetensors")
        recorded = load_backbone(path).checkpoint_extra["finetune"]["method"]
        assert recorded["name"] == "easytune" and recorded["anchor_weight"] == 5.0


def test_lora_job_makes_an_adapter_that_generate_applies(engine: Engine) -> None:
    with engine.client() as client:
        rank(client, "a person turns around")
        body = {"kind": "finetune", "budget": 4, "lora_rank": 4, "checkpoint_name": "turn-lora"}
        path = finished_job_file(engine, client, body, "adapter.safetensors")
        assert path.stat().st_size < 1_000_000  # only the low-rank factors
        recorded = load_checkpoint(path, lora.KIND).extra["finetune"]
        assert recorded["lora_rank"] == 4 and recorded["lr"] == LR_LORA  # adapters' measured rate
        model = client.request("list_models")["models"][0]
        assert "turn-lora" in model["adapters"]
        base = client.request("generate", GEN)
        adapted = client.request("generate", {**GEN, "adapter": "turn-lora"})
        assert adapted["adapter"] == "turn-lora" and adapted["checkpoint"] == "turn-lora"
        assert np.abs(joints(adapted) - joints(base)).max() > 1e-5
        with pytest.raises(RemoteError) as err:
            client.request("generate", {**GEN, "adapter": "walk-ft-nope"})
        assert err.value.code == ErrorCode.NOT_FOUND and err.value.field == "body.adapter"


def test_start_job_is_idempotent_and_checkpoint_names_are_unique(engine: Engine) -> None:
    with engine.client() as client:
        body = {"kind": "finetune", "budget": 2, "checkpoint_name": "unique-name"}
        replies = []
        for _ in range(2):  # a retry: the same key and body queue one job
            client.send("start_job", body, idempotency_key="job-key-1")
            (rep,) = client.poll_replies(timeout=20)
            replies.append(rep)
        assert replies[0].ok and replies[1].header.replayed
        assert replies[0].body["job"]["job_id"] == replies[1].body["job"]["job_id"]
        with pytest.raises(RemoteError) as err:  # the name is reserved by the queued job
            client.request("start_job", body)
        assert err.value.code == ErrorCode.CONFLICT and err.value.field == "body.checkpoint_name"
        wait_job(client, replies[0].body["job"]["job_id"])
        with pytest.raises(RemoteError) as err:  # and then taken by its checkpoint
            client.request("start_job", body)
        assert err.value.code == ErrorCode.CONFLICT
        with pytest.raises(RemoteError) as err:
            client.request("activate_checkpoint", {"name": "no-such-checkpoint"})
        assert err.value.code == ErrorCode.NOT_FOUND


def test_kill_9_during_finetune_interrupts_the_job_and_keeps_the_active_checkpoint(
    tmp_path: Path, tiny_model: Path
) -> None:
    data = tmp_path / "data"
    first = start_engine(data, tiny_model)
    try:
        with first.client() as client:
            rank(client)
            short = client.request(
                "start_job", {"kind": "finetune", "budget": 3, "activate": True}
            )["job"]
            active = wait_job(client, short["job_id"])["checkpoint"]
            tuned = client.request("generate", GEN)
            assert tuned["checkpoint"] == active
            long = client.request("start_job", {"kind": "finetune", "budget": 100_000})["job"]
            wait_job(client, long["job_id"], ("running",), step=2)
            first.proc.send_signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
    finally:
        first.stop()

    second = start_engine(data, tiny_model)
    try:
        with second.client() as client:
            (job,) = client.request("job_status", {"job_id": long["job_id"]})["jobs"]
            assert job["state"] == "interrupted" and "stopped" in job["message"]
            assert client.request("list_rankings")["total"] == 1
            assert client.request("list_models")["models"][0]["checkpoint"] == active
            again = client.request("generate", GEN)
            assert again["checkpoint"] == active
            np.testing.assert_array_equal(joints(again), joints(tuned))
            names = [c["name"] for c in client.request("list_checkpoints")["checkpoints"]]
            assert names == [active]  # the interrupted job registered nothing
    finally:
        second.stop()
    with sqlite3.connect(data / "engine.sqlite") as conn:
        states = dict(conn.execute("SELECT job_id, state FROM jobs"))
    assert states == {short["job_id"]: "finished", long["job_id"]: "interrupted"}


def test_shutdown_during_a_job_interrupts_it_at_a_step_boundary(
    tmp_path: Path, tiny_model: Path
) -> None:
    data = tmp_path / "data"
    first = start_engine(data, tiny_model)
    try:
        with first.client() as client:
            rank(client)
            job = client.request("start_job", {"kind": "finetune", "budget": 100_000})["job"]
            wait_job(client, job["job_id"], ("running",), step=1)
            assert client.request("shutdown") == {"stopping": True}
        assert first.wait(60) == 0
    finally:
        first.stop()
    finished = [r for r in first.log if r.get("event") == "job_finished"]
    assert [r["state"] for r in finished] == ["interrupted"]
    with sqlite3.connect(data / "engine.sqlite") as conn:
        state, step, message = conn.execute(
            "SELECT state, step, message FROM jobs WHERE job_id = ?", (job["job_id"],)
        ).fetchone()
    assert state == "interrupted" and step >= 1 and "stopped" in message
