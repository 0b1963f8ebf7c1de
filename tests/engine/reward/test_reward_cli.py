"""`easytune-engine reward train|refine|eval` on a tiny corpus."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from easytune_engine.cli import main
from easytune_engine.reward.model import load_reward_model
from easytune_engine.reward.rankings import add_clip, write_ranking


@pytest.fixture(scope="module")
def trained_file(reward_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "tiny.safetensors"
    argv = ["reward", "train", "--data", str(reward_corpus), "--preset", "tiny", "--steps", "30",
            "--batch-size", "16", "--eval-every", "15", "--eval-repeats", "2", "--out", str(out),
            "--quiet", "--threads", "1"]  # fmt: skip
    assert main(argv) == 0
    return out


def test_train_writes_a_loadable_checkpoint(trained_file: Path) -> None:
    model = load_reward_model(trained_file)
    extra = model.checkpoint_extra
    assert extra["preset"] == "tiny" and "t500" in extra["metrics"]
    assert extra["corpus"]["name"] == "easytune-builtin" and extra["corpus"]["version"] >= 1
    assert not trained_file.with_suffix(".partial.safetensors").exists()
    manifest = json.loads(trained_file.with_name("tiny.manifest.json").read_text())
    assert manifest["payload_sha256"] == model.checkpoint_sha256
    assert manifest["reproduce"].startswith("easytune-engine reward train --data ")
    assert "R@1" in manifest["metrics"]["t0"]


def test_eval_json(trained_file: Path, reward_corpus: Path, capsys) -> None:
    argv = ["reward", "eval", "--model", str(trained_file), "--data", str(reward_corpus),
            "--t", "0", "500", "--repeats", "2", "--json"]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["results"]) == {"0", "500"}
    assert {"R@1", "R@1_ci", "R@10"} <= set(out["results"]["0"])


def test_refine_spl_and_rankings(trained_file: Path, reward_corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "rankings.sqlite"
    ids = (reward_corpus / "train.txt").read_text().split()[:3]
    for cid in ids:
        add_clip(
            db, cid, "a person moves", np.load(reward_corpus / "new_joint_vecs" / f"{cid}.npy")
        )
    write_ranking(db, "a person moves", ids[:2], rejected=ids[2:])
    out = tmp_path / "refined.safetensors"
    argv = ["reward", "refine", "--spl", "--rankings", str(db), "--from", str(trained_file),
            "--data", str(reward_corpus), "--steps", "5", "--batch-size", "16", "--out", str(out),
            "--quiet"]  # fmt: skip
    assert main(argv) == 0
    refine = load_reward_model(out).checkpoint_extra["refine"]
    assert refine["spl"] and refine["pairs"] == 3


def test_bad_arguments_are_reported(trained_file: Path, reward_corpus: Path, capsys) -> None:
    assert main(["reward", "refine", "--from", str(trained_file)]) == 2
    assert "needs --spl" in capsys.readouterr().err
    assert main(["reward", "eval", "--model", str(trained_file.parent / "nope.safetensors")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    argv = ["reward", "eval", "--model", str(trained_file), "--data", str(reward_corpus),
            "--t", "5000", "--repeats", "1"]  # fmt: skip
    assert main(argv) == 2
    assert "t must be in" in capsys.readouterr().err
    assert main(["reward", "train", "--data", "/nonexistent/dir", "--preset", "tiny"]) == 2
