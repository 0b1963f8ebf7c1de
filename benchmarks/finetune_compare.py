"""The fine-tuning comparison of the EasyTune paper, reproduced on the built-in corpus.

    EASYTUNE_HOME=/tmp/ethome python benchmarks/finetune_compare.py [--quick] [--model mld]
    (the same as `easytune-engine bench finetune [--quick] --json`)

Same backbone, reward, prompts and trajectory budget for EasyTune-step, EasyTune-chain, DRaFT-10,
DRaFT-50, AlignProp, DRTune, ReFL, EasyTune-step with rank-8 LoRA adapters and the untuned base;
judged by the independent evaluator and the oracle. Writes benchmarks/results/
finetune_compare[_quick].json (rewritten after every row, with "partial": true until the end) and a
memory-against-T plot. The load average of the machine is recorded: other jobs slow every timing.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from pathlib import Path

import torch

from easytune_engine.data.corpus.build import default_corpus_dir
from easytune_engine.eval.cli import default_evaluator
from easytune_engine.eval.evaluator import load_evaluator
from easytune_engine.finetune.compare import (
    CompareConfig,
    base_reward,
    compare,
    quick,
    seconds_to_target,
    table,
)
from easytune_engine.finetune.trainer import PromptPool
from easytune_engine.models.pipeline import MotionGenerator
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


def retarget(path: Path) -> None:
    """Times to target of a stored report, against the base reward of `compare.base_reward`.

    For reports written before `base_reward` replayed the trainer's prompt and noise stream: their
    target was built on other prompts than the ones trained on.
    """
    report = json.loads(path.read_text())
    c = CompareConfig(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in report["config"].items()}
    )
    gen = MotionGenerator.load(c.model)
    pool = PromptPool.from_corpus(default_corpus_dir(), "train")
    base = base_reward(gen, load_reward_model(), pool, c)
    target = base + c.target_gain
    report["retargeted"] = {
        "base_reward": base,
        "reward_target": target,
        "seconds_to_target": {
            view: {
                n: seconds_to_target(r["curve"], target)
                for n, r in report[view].items()
                if r["curve"]
            }
            for view in ("equal_trajectories", "equal_wall_clock")
        },
    }
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["retargeted"], indent=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="the ≤ 10 minute version")
    ap.add_argument("--model", default="mld")
    ap.add_argument("--trajectories", type=int)
    ap.add_argument("--wall-clock", type=float, default=0.0, help="seconds per method (0 = skip)")
    ap.add_argument(
        "--wall-clock-only", action="store_true", help="skip the equal-trajectories view"
    )
    ap.add_argument("--methods", nargs="*", help="a subset of the methods (default: all)")
    ap.add_argument("--eval-samples", type=int, help="test prompts judged per model")
    ap.add_argument("--eval-repeats", type=int, help="repetitions for the CIs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument(
        "--retarget",
        metavar="JSON",
        help="only recompute the reward target (base reward on the replayed training stream + "
        "gain) and every row's time to target from the curves stored in JSON; adds "
        "'retargeted' to it",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.retarget:
        retarget(Path(args.retarget))
        return
    c = CompareConfig(model=args.model, wall_clock_s=args.wall_clock)
    if args.quick:
        c = quick(c)
    if args.trajectories:
        c = replace(c, trajectories=args.trajectories)
    if args.methods:
        c = replace(c, methods=tuple(args.methods))
    if args.wall_clock_only:
        c = replace(c, equal_trajectories=False)
    if args.eval_samples:
        c = replace(c, eval_samples=args.eval_samples)
    if args.eval_repeats:
        c = replace(c, eval_repeats=args.eval_repeats)
    stem = "finetune_compare_quick" if args.quick else "finetune_compare"
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / stem
    out.parent.mkdir(parents=True, exist_ok=True)
    info = machine() | {"threads": args.threads}

    def write(report: dict) -> None:
        report["machine"] = info | {"load_average_now": [round(x, 2) for x in os.getloadavg()]}
        out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")

    corpus = default_corpus_dir()
    report = compare(
        c, corpus, load_evaluator(default_evaluator()), load_reward_model(), partial=write
    )
    write(report)
    print(table(report))
    if report["equal_wall_clock"]:
        print(f"\nEqual wall-clock ({c.wall_clock_s:.0f} s per method):")
        print(table(report, "equal_wall_clock"))
    plotted = plot_memory(report, out.with_name(out.name + "_memory.png"))
    print(f"-> {out.with_suffix('.json')}" + (" (+ memory plot)" if plotted else ""))


if __name__ == "__main__":
    main()
