"""Why EasyTune-step's training reward falls in `bench finetune --quick`: per-trajectory rewards.

    EASYTUNE_HOME=/tmp/ethome python benchmarks/quick_reward_probe.py

The quick comparison trains 6 trajectories of 4 prompts and reports the mean reward of the last
quarter, i.e. of the last trajectory alone. This replays the same prompt and noise stream for
EasyTune-step (lr 1e-5 and 3e-6, and batch 8) and DRaFT-50, and prints every trajectory's reward
with the untuned model's mean on the same stream, so a bad last batch can be told from a model
that got worse. Writes benchmarks/results/quick_reward_probe.json.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch

from easytune_engine.data.corpus.build import default_corpus_dir
from easytune_engine.finetune.compare import CompareConfig, base_reward, quick, train_method
from easytune_engine.finetune.trainer import PromptPool
from easytune_engine.models.pipeline import MotionGenerator
from easytune_engine.reward.model import load_reward_model

CASES = {
    "EasyTune-step, batch 4, lr 1e-5 (quick)": ("EasyTune-step", {}),
    "EasyTune-step, batch 4, lr 3e-6": ("EasyTune-step", {"lr": 3e-6}),
    "EasyTune-step, batch 8, lr 1e-5": ("EasyTune-step", {"batch_size": 8}),
    "DRaFT-50, batch 4, lr 1e-5 (quick)": ("DRaFT-50", {}),
}


def main() -> None:
    torch.set_num_threads(1)
    pool = PromptPool.from_corpus(default_corpus_dir(), "train")
    reward = load_reward_model()
    out = {}
    for label, (method, changes) in CASES.items():
        c = replace(quick(CompareConfig()), **changes)
        base = base_reward(MotionGenerator.load(c.model), reward, pool, c)
        row, _ = train_method(method, c, reward, pool, target=float("inf"))
        rewards = [r for _, r in row.curve]
        out[label] = {"base_mean": round(base, 4), "rewards": rewards}
        print(f"{label}: base {base:.3f}, per trajectory {rewards}", flush=True)
    path = Path(__file__).parent / "results" / "quick_reward_probe.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"-> {path}")


if __name__ == "__main__":
    main()
