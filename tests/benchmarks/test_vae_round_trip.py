"""The pure helpers of benchmarks/vae_round_trip.py and vae_experiment.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def vrt(load_benchmark):
    return load_benchmark("vae_round_trip")


def test_paired_diff_counts_gains_and_losses(vrt):
    ids = [f"c{i}" for i in range(100)]
    ref = {f"c{i}" for i in range(20)}
    new = {f"c{i}" for i in range(10, 40)}  # loses 10, gains 20
    diff, lo, hi = vrt.paired_diff(ids, ref, new)
    assert diff == pytest.approx(0.10)
    assert lo < 0.10 < hi
    assert vrt.paired_diff(ids, ref, ref) == (0.0, 0.0, 0.0)


def test_steps_are_read_from_snapshot_names(vrt):
    assert vrt._steps(Path("/x/B/vae_step1250.safetensors")) == 1250
    assert vrt._steps(Path("/x/mld.safetensors")) is None


def test_experiment_record_of_an_unfinished_run(vrt, tmp_path: Path):
    rows = [{"step": 50, "seconds": 50.0, "loss": 1.0}, {"step": 100, "seconds": 100.0}]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rec = vrt._experiment(tmp_path)
    assert rec["steps_per_second"] == pytest.approx(1.0)
    assert rec["train_log"] == [{"step": 50, "loss": 1.0}, {"step": 100}]
    assert rec["command"] is None


def test_vae_overrides_are_typed(load_benchmark):
    exp = load_benchmark("vae_experiment")
    assert exp._overrides(["root_weight=10", "latent_tokens=8"]) == {
        "root_weight": 10.0,
        "latent_tokens": 8,
    }
    assert isinstance(exp._overrides(["latent_tokens=8"])["latent_tokens"], int)
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        exp._overrides(["nonsense=1"])
