"""Generation speed of the shipped backbones: batch 1 and 4, 196 frames, on this machine's CPU.

    python benchmarks/backbone_speed.py [--threads 2] [--repeats 10] [--model mld=PATH ...]
        [--precision fp32|bf16] [--out FILE]

Targets (issue 4, 2 CPU cores, batch 1, 196 frames): LCM-style 4 steps ≤ 0.25 s, MLD-style
50 steps ≤ 1.5 s, MDM-style 50 steps ≤ 5 s; 4 candidates ≤ 2× one. Times are medians of
`--repeats` runs after 2 warm-up runs, the whole `generate` call (text encoding, sampling with
guidance, VAE decoding, de-normalisation). `--precision bf16` runs the networks under bfloat16
autocast (`MotionGenerator.generate(precision=...)`). Prints a table, writes
benchmarks/results/backbone_speed.json (or `--out`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from easytune_engine.models.pipeline import MotionGenerator
from machine import machine

CASES = [  # (backbone, steps, target seconds at batch 1)
    ("lcm", 1, None),
    ("lcm", 2, None),
    ("lcm", 4, 0.25),
    ("mld", 50, 1.5),
    ("mdm", 50, 5.0),
]


def timed(gen: MotionGenerator, batch: int, steps: int, repeats: int, precision: str) -> float:
    prompts, lengths = ["a person jumps twice"] * batch, [196] * batch
    for _ in range(2):
        gen.generate(prompts, lengths, seed=0, steps=steps, precision=precision)
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        gen.generate(prompts, lengths, seed=r, steps=steps, precision=precision)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--model", action="append", default=[], help="NAME=CHECKPOINT override")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "backbone_speed.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    paths = dict(m.split("=", 1) for m in args.model)
    gens = {name: MotionGenerator.load(paths.get(name, name)) for name in ("mdm", "mld", "lcm")}
    rows = []
    for name, steps, target in CASES:
        one = timed(gens[name], 1, steps, args.repeats, args.precision)
        four = timed(gens[name], 4, steps, args.repeats, args.precision)
        rows.append(
            {
                "backbone": name,
                "steps": steps,
                "guidance": gens[name].backbone.sampling.guidance,
                "batch1_s": round(one, 4),
                "batch4_s": round(four, 4),
                "batch4_over_batch1": round(four / one, 2),
                "target_batch1_s": target,
                "meets_target": None if target is None else one <= target,
                "four_within_2x": four <= 2 * one,
            }
        )
    head = f"{'backbone':8} {'steps':>5} {'batch 1 (s)':>11} {'batch 4 (s)':>11}"
    head += f" {'4/1':>5} {'target':>7}"
    print(head)
    for r in rows:
        tgt = "-" if r["target_batch1_s"] is None else f"{r['target_batch1_s']:.2f}"
        print(
            f"{r['backbone']:8} {r['steps']:5d} {r['batch1_s']:11.3f} {r['batch4_s']:11.3f} "
            f"{r['batch4_over_batch1']:5.2f} {tgt:>7}"
        )
    doc = {
        "benchmark": "backbone_speed",
        "frames": 196,
        "threads": args.threads,
        "precision": args.precision,
        "repeats": args.repeats,
        "machine": machine(),
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
