"""`easytune-engine demo`: the whole loop through a real engine server, on the tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_whole_loop(tmp_path: Path, tiny_model: Path, tiny_corpus: Path) -> None:
    out = tmp_path / "demo"
    env = dict(os.environ, OMP_NUM_THREADS="1", EASYTUNE_CORPUS=str(tiny_corpus))
    env["EASYTUNE_HOME"] = str(tmp_path / "home")
    cmd = [
        sys.executable, "-m", "easytune_engine", "demo", "--out", str(out), "--sample", "20",
        "--model", str(tiny_model), "--prompts", "2", "--eval-prompts", "3", "--spl-steps", "3",
        "--budget", "2", "--threads", "1",
    ]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "| oracle accuracy, the artist's prompts |" in done.stdout
    result = json.loads((out / "demo.json").read_text())
    assert result["spl_job"]["state"] == "finished"
    assert result["spl_job"]["metrics"]["ranking_pairs"] == 2 * 6  # 2 prompts x C(4, 2) pairs
    tuned = result["finetune_job"]
    assert tuned["state"] == "finished" and tuned["step"] == 2
    active = {c["backbone"]: c["name"] for c in result["checkpoints"] if c["active"]}
    assert active == {"reward": result["spl_job"]["checkpoint"], "mld": tuned["checkpoint"]}
    for when in ("before", "after"):
        assert set(result[when]) == {"artist_prompts_oracle", "held_out_oracle"}
        assert all(0.0 <= v <= 1.0 for v in result[when].values())
    assert (out / "corpus_preview.gif").stat().st_size > 0
    log = [json.loads(line) for line in (out / "engine.log").read_text().splitlines()]
    assert log[0]["event"] == "ready" and log[-1]["event"] == "stopped"
