"""The fine-tuning comparison of the EasyTune paper, reproduced on the built-in corpus.

    EASYTUNE_HOME=/tmp/ethome python benchmarks/finetune_compare.py [--quick] [--model mld]
    (the same as `easytune-engine bench finetune [--quick] --json`)

Same backbone, reward, prompts and trajectory budget for EasyTune-step, EasyTune-chain, DRaFT-10,
DRaFT-50, AlignProp, DRTune, ReFL and the untuned base; judged by the independent evaluator and the
oracle. Writes benchmarks/results/finetune_compare[_quick].json and a memory-against-T plot.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch

from easytune_engine.data.corpus.build import default_corpus_dir
from easytune_engine.eval.cli import default_evaluator
from easytune_engine.eval.evaluator import load_evaluator
from easytune_engine.finetune.compare import CompareConfig, compare, quick, table
from easytune_engine.reward.model import load_reward_model
from machine import machine


def plot_memory(report: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, per in report["memory_vs_steps"].items():
        steps = sorted(int(t) for t in per)
        ax.plot(steps, [per[str(t)] / 1e6 for t in steps], marker="o", label=name)
    ax.set_xlabel("denoising steps T")
    ax.set_ylabel("peak bytes saved for backward (MB)")
    ax.set_title("Fine-tuning memory against T")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="the ≤ 10 minute version")
    ap.add_argument("--model", default="mld")
    ap.add_argument("--trajectories", type=int)
    ap.add_argument("--wall-clock", type=float, default=0.0, help="seconds per method (0 = skip)")
    ap.add_argument("--methods", nargs="*", help="a subset of the methods (default: all)")
    ap.add_argument("--eval-samples", type=int, help="test prompts judged per model")
    ap.add_argument("--eval-repeats", type=int, help="repetitions for the CIs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    c = CompareConfig(model=args.model, wall_clock_s=args.wall_clock)
    if args.quick:
        c = quick(c)
    if args.trajectories:
        c = replace(c, trajectories=args.trajectories)
    if args.methods:
        c = replace(c, methods=tuple(args.methods))
    if args.eval_samples:
        c = replace(c, eval_samples=args.eval_samples)
    if args.eval_repeats:
        c = replace(c, eval_repeats=args.eval_repeats)
    corpus = default_corpus_dir()
    report = compare(c, corpus, load_evaluator(default_evaluator()), load_reward_model())
    report["machine"] = machine()
    print(table(report))
    stem = "finetune_compare_quick" if args.quick else "finetune_compare"
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / stem
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    plotted = plot_memory(report, out.with_name(out.name + "_memory.png"))
    print(f"-> {out.with_suffix('.json')}" + (" (+ memory plot)" if plotted else ""))


if __name__ == "__main__":
    main()
