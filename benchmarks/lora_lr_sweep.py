"""LoRA's learning rate: EasyTune-step with rank-8 adapters at several rates, against full tuning.

    EASYTUNE_HOME=/tmp/ethome python benchmarks/lora_lr_sweep.py [--lrs 1e-4 3e-4 1e-3]

The comparison's LoRA row (`finetune_compare_full.json`) trained at the full fine-tune's lr 1e-5
and barely moved the model; adapters are usually trained 10-100x faster. Same backbone (the shipped
MLD-style model), reward, prompt stream, 120 trajectories of 8 prompts and judging (the independent
evaluator and the oracle, 512 test prompts x 10 repetitions) as the comparison, so its rows are
directly comparable. Writes benchmarks/results/lora_lr_sweep.json (after every rate).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path

import torch

from easytune_engine.data.corpus.build import default_corpus_dir
from easytune_engine.eval.cli import default_evaluator
from easytune_engine.eval.evaluator import load_evaluator
from easytune_engine.finetune.compare import CompareConfig, _judge, train_method
from easytune_engine.finetune.trainer import PromptPool
from easytune_engine.reward.model import load_reward_model
from machine import machine

ROW = "EasyTune-step LoRA-8"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lrs", type=float, nargs="+", default=[1e-4, 3e-4, 1e-3])
    ap.add_argument("--trajectories", type=int, default=120)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--eval-samples", type=int, default=512)
    ap.add_argument("--eval-repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "lora_lr_sweep.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    corpus = default_corpus_dir()
    pool = PromptPool.from_corpus(corpus, "train")
    reward = load_reward_model()
    evaluator = load_evaluator(default_evaluator())
    base = CompareConfig(
        trajectories=args.trajectories,
        batch_size=args.batch,
        eval_samples=args.eval_samples,
        eval_repeats=args.eval_repeats,
    )
    report: dict = {"machine": machine() | {"threads": args.threads}, "config": asdict(base)}
    report["rows"] = {}
    for lr in args.lrs:
        c = replace(base, lr=lr)
        row, gen = train_method(ROW, c, reward, pool, target=float("inf"))
        row.eval = _judge(gen, corpus, evaluator, c)
        report["rows"][f"lr {lr:g}"] = asdict(row) | {"lr": lr}
        e = row.eval
        print(
            f"lr {lr:g}: reward {row.train_reward} R@1 {e['R@1']:.3f} ± {e['R@1_ci']:.3f} "
            f"FID {e['FID']:.2f} ± {e['FID_ci']:.2f} MM-Dist {e['MM-Dist']:.2f} "
            f"oracle {e['oracle_accuracy']:.3f} ({row.wall_seconds:.0f} s)",
            flush=True,
        )
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
