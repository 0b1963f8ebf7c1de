"""Starting and stopping: the data-dir lock, loopback-only binds, --gpu without CUDA, shutdown."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from serve_helpers import launch, start_engine

from easytune_engine.server.config import ServeConfig, ServeError, check_endpoint
from easytune_engine.server.worker import STAGES
from easytune_protocol import RequestTimeout


def test_second_engine_on_the_same_data_dir_refuses(engine, tiny_model: Path) -> None:
    other = launch(engine.data_dir, "--cpu", "--bind", "tcp://127.0.0.1:*", "--events",
                   "tcp://127.0.0.1:*", "--model", str(tiny_model))  # fmt: skip
    assert other.wait(60) == 2
    text = "\n".join(other.lines)
    assert "in use by another engine" in text and f"pid {engine.proc.pid}" in text
    assert engine.proc.poll() is None


@pytest.mark.parametrize(
    "endpoint",
    ["tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://192.168.1.5:5555", "tcp://[::]:5555", "udp://x"],
)
def test_only_loopback_endpoints_are_accepted(endpoint: str) -> None:
    with pytest.raises(ServeError, match=r"loopback|not a ZeroMQ endpoint"):
        check_endpoint(endpoint, "--bind")
    for ok in ("tcp://127.0.0.1:5555", "tcp://localhost:*", "tcp://[::1]:5555", "ipc:///tmp/e"):
        assert check_endpoint(ok, "--bind") == ok


def test_non_loopback_bind_is_refused(tmp_path: Path) -> None:
    proc = launch(tmp_path / "data", "--cpu", "--bind", "tcp://0.0.0.0:5555")
    assert proc.wait(60) == 2
    text = "\n".join(proc.lines)
    assert "not a loopback address" in text and "CurveZMQ" in text
    assert not (tmp_path / "data").exists()  # refused before touching anything


def test_unknown_graph_dtype_names_the_valid_ones(tmp_path: Path) -> None:
    proc = launch(tmp_path / "data", "--cpu", "--graph-dtype", "fp8")
    assert proc.wait(60) == 2
    assert "--graph-dtype 'fp8': valid: bf16, fp32" in "\n".join(proc.lines)


def test_unknown_precision_names_the_valid_ones(tmp_path: Path) -> None:
    proc = launch(tmp_path / "data", "--cpu", "--precision", "fp16")
    assert proc.wait(60) == 2
    assert "--precision 'fp16': valid: fp32, bf16" in "\n".join(proc.lines)


def test_bf16_precision_is_for_the_eager_loop(tmp_path: Path) -> None:
    """On CUDA the graph path has its own --graph-dtype; --precision bf16 needs --eager there."""
    args = ("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5556", tmp_path, "cuda:0", ("mld",))
    with pytest.raises(ServeError, match=r"--precision bf16 is the eager loop.s .* --graph-dtype"):
        ServeConfig(*args, precision="bf16")
    assert ServeConfig(*args, precision="bf16", fast_path=False).precision == "bf16"
    assert ServeConfig(*args[:3], "cpu", args[4], precision="bf16").precision == "bf16"


def test_a_bf16_engine_serves_motions_a_rounding_from_fp32(engine, tiny_model: Path) -> None:
    """`serve --precision bf16`: the model says so, and its motions differ from the fp32
    engine's by bfloat16 rounding only (same seed), not by a different draw."""
    gen = {"prompt": "a person walks forward", "candidates": 2, "length": 40, "seed": 3}
    bf16 = start_engine(engine.data_dir.parent / "bf16", tiny_model, "--precision", "bf16")
    try:
        with bf16.client() as c:
            (model,) = c.hello("test-client")["models"]
            low = c.request("generate", gen | {"steps": 4})
    finally:
        bf16.stop()
    with sqlite3.connect(bf16.data_dir / "engine.sqlite") as conn:
        stored = conn.execute("SELECT clip_id, precision FROM clip_meta").fetchall()
    assert sorted(stored) == sorted((c["clip_id"], "bf16") for c in low["clips"])
    with engine.client() as c:
        (model32,) = c.hello("test-client")["models"]
        full = c.request("generate", gen | {"steps": 4})
    assert (model["precision"], model32["precision"]) == ("bf16", "fp32")
    for a, b in zip(low["clips"], full["clips"], strict=True):
        diff = np.abs(a["joints"] - b["joints"])
        assert 0 < diff.max() < 0.05, diff.max()  # metres


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_gpu_without_cuda_says_so(tmp_path: Path) -> None:
    proc = launch(tmp_path / "data", "--gpu", "0")
    assert proc.wait(60) == 2
    text = "\n".join(proc.lines)
    assert "--gpu 0" in text and "no CUDA device" in text and "--cpu" in text


def test_shutdown_stops_and_a_restart_keeps_the_rankings(tmp_path: Path, tiny_model: Path):
    data = tmp_path / "data"
    first = start_engine(data, tiny_model)
    try:
        with first.client() as client:
            hello = client.hello()
            out = client.request(
                "generate", {"prompt": "a person bows", "candidates": 2, "length": 20, "steps": 2}
            )
            ids = [c["clip_id"] for c in out["clips"]]
            ranking = client.request("submit_ranking", {"prompt": "a person bows", "ranked": ids})
            client.subscribe(hello["events"])
            time.sleep(0.5)  # PUB/SUB: a subscription takes a moment to reach the publisher
            assert client.request("shutdown") == {"stopping": True}
            (stopping,) = client.poll_events(timeout=10)
        assert stopping.type == "engine_stopping" and stopping.header.seq == 1
        assert stopping.body["reason"] == "shutdown requested"
        assert first.wait(30) == 0
    finally:
        first.stop()
    events = [r["event"] for r in first.log]
    assert events[0] == "ready" and events[-2:] == ["stopping", "stopped"]
    requests = [r for r in first.log if r["event"] == "request"]
    assert [r["type"] for r in requests] == ["hello", "generate", "submit_ranking", "shutdown"]
    assert all(r["status"] == "ok" and r["ms"] >= 0 and r["id"] for r in requests)
    # The generate line splits its time in the engine into the worker's stages, in order.
    (gen_line,) = [r for r in requests if r["type"] == "generate"]
    assert list(gen_line["stages"]) == list(STAGES)
    assert all(v >= 0 for v in gen_line["stages"].values())
    assert gen_line["stages"]["sample"] > 0 and sum(gen_line["stages"].values()) <= gen_line["ms"]
    assert all("stages" not in r for r in requests if r["type"] != "generate")

    second = start_engine(data, tiny_model)  # the lock was released
    try:
        with second.client() as client:
            assert client.hello()["engine_session"] != hello["engine_session"]
            page = client.request("list_rankings")
            assert [r["ranking_id"] for r in page["rankings"]] == [ranking["ranking_id"]]
            assert page["rankings"][0]["ranked"] == ids
    finally:
        second.stop()
    with sqlite3.connect(data / "engine.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_kill_9_mid_rankings_keeps_every_acknowledged_one(tmp_path: Path, tiny_model: Path):
    """Rankings stream in; the engine dies by SIGKILL after some acknowledgements; after a
    restart every acknowledged ranking is there exactly as it was acknowledged."""
    data = tmp_path / "data"
    first = start_engine(data, tiny_model)
    acked: dict[int, list[str]] = {}
    try:
        with first.client(timeout=1.0) as client:
            gen = {"prompt": "a person spins", "candidates": 4, "length": 20, "steps": 2}
            ids = [c["clip_id"] for c in client.request("generate", gen)["clips"]]
            killer = threading.Timer(0.5, first.proc.send_signal, (signal.SIGKILL,))
            killer.start()
            for i in range(100_000):  # until the engine dies mid-stream
                ranked = [ids[i % 4], ids[(i + 1) % 4]]
                body = {"prompt": gen["prompt"], "ranked": ranked}
                try:
                    acked[client.request("submit_ranking", body)["ranking_id"]] = ranked
                except RequestTimeout:
                    break
            killer.join()
        assert first.wait(10) == -signal.SIGKILL
    finally:
        first.stop()

    second = start_engine(data, tiny_model)  # the kernel released the lock with the process
    try:
        with second.client() as client:
            stored, after = {}, 0
            while after is not None:
                page = client.request("list_rankings", {"after": after, "limit": 500})
                stored.update({r["ranking_id"]: r["ranked"] for r in page["rankings"]})
                after = page.get("next_after")
    finally:
        second.stop()
    assert len(acked) >= 20
    assert {k: stored.get(k) for k in acked} == acked
    assert len(stored) <= len(acked) + 1  # at most the one in flight committed unacknowledged
