"""Does a new checkpoint pass the oracle more or less often than the one it would replace?

    EASYTUNE_HOME=/tmp/ethome python benchmarks/oracle_paired.py BEFORE AFTER \
        [--split val] [--samples 400] [--steps 1,2,4] [--seeds 0,1] [--out JSON]

BEFORE and AFTER are shipped names (mdm, mld, lcm) or checkpoint paths. Both generate for the
same prompts of the split with the same seeds (`generate_test_set`, as the quality benchmark
does), every clip is judged by the corpus oracle, and the change is reported as the mean of the
paired differences with its paired bootstrap 95% interval. Pairing removes the prompt-to-prompt
spread that makes two separate accuracies (each ±4 points at 400 clips) hard to compare.
`--steps` runs each sampler step count in turn (0 = the backbone's default); more seeds give more
pairs. Use the validation split to decide, the test split to report.

Prints a table and writes JSON (default benchmarks/results/oracle_paired.json).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from easytune_engine.data.corpus.build import default_corpus_dir
from easytune_engine.eval.backbone import test_prompts
from easytune_engine.models.pipeline import MotionGenerator
from machine import machine
from oracle_failures import _generate, _programs, paired_diff_ci


def passes(gen: MotionGenerator, corpus: Path, prompts, programs, seed: int, steps: int) -> list:
    """The oracle's verdict (True = accepted) for each prompt, in order."""
    sampling = {"steps": steps} if steps else {}
    items = _generate(gen, corpus, prompts, programs, seed, **sampling)
    return [bool(v.accepted) for _, v in items]


def compare(
    before: MotionGenerator,
    after: MotionGenerator,
    corpus: Path,
    split: str,
    samples: int,
    steps: list[int],
    seeds: list[int],
) -> list[dict]:
    prompts = test_prompts(corpus, samples, 0, split)
    programs = _programs(corpus, prompts)
    rows = []
    for n in steps:
        a: list[bool] = []
        b: list[bool] = []
        for seed in seeds:
            a += passes(before, corpus, prompts, programs, seed, n)
            b += passes(after, corpus, prompts, programs, seed, n)
        diff, lo, hi = paired_diff_ci(a, b)
        rows.append(
            {
                "steps": n or "default",
                "pairs": len(a),
                "before": float(np.mean(a)),
                "after": float(np.mean(b)),
                "change": diff,
                "ci95": [lo, hi],
                "only_before": int(sum(x and not y for x, y in zip(a, b, strict=True))),
                "only_after": int(sum(y and not x for x, y in zip(a, b, strict=True))),
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| steps | pairs | before | after | change | 95% CI | passed only before / after |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lo, hi = r["ci95"]
        lines.append(
            f"| {r['steps']} | {r['pairs']} | {r['before']:.3f} | {r['after']:.3f} | "
            f"{r['change']:+.3f} | [{lo:+.3f}, {hi:+.3f}] | "
            f"{r['only_before']} / {r['only_after']} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--split", default="val", choices=("val", "test"))
    ap.add_argument("--samples", type=int, default=400)
    ap.add_argument("--steps", default="0", help="comma-separated; 0 = the backbone's default")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "oracle_paired.json"))
    args = ap.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    if any(s < 0 for s in steps) or args.samples < 1:
        raise SystemExit("--steps must be >= 0 (0 = default) and --samples >= 1")
    torch.set_num_threads(args.threads)
    corpus = Path(args.corpus) if args.corpus else default_corpus_dir()
    t0, where = time.time(), machine()
    before, after = MotionGenerator.load(args.before), MotionGenerator.load(args.after)
    if before.backbone.kind != after.backbone.kind:
        raise SystemExit(
            f"compare one kind of backbone: {args.before} is {before.backbone.kind}, "
            f"{args.after} is {after.backbone.kind}"
        )
    rows = compare(before, after, corpus, args.split, args.samples, steps, seeds)
    print(table(rows))
    doc = {
        "command": "python benchmarks/oracle_paired.py "
        + f"{args.before} {args.after} --split {args.split} --samples {args.samples} "
        + f"--steps {args.steps} --seeds {args.seeds}",
        "machine": where,
        "minutes": round((time.time() - t0) / 60, 2),
        "before_sha256": before.backbone.checkpoint_sha256,
        "after_sha256": after.backbone.checkpoint_sha256,
        "split": args.split,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
