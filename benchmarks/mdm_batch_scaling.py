"""Why four MDM candidates cost more than 2× one on this CPU: GEMM throughput and where time goes.

    python benchmarks/mdm_batch_scaling.py [--threads 2] [--repeats 6]

Three measurements, on the shipped MDM at 196 frames, DDIM 50, guidance 2.5:
1. the throughput of one of its matrix products ((8·50) × 256 by 256 × 768, the fused q/k/v
   projection at batch 4 with guidance) in float32, bfloat16 and float16, against the machine's
   peak that float32 would reach if every core retired two 16-wide FMAs per cycle;
2. `generate` at batch 1 and 4 in float32 and under CPU autocast to bfloat16;
3. a profile of one batch-4 and one batch-1 call: time in matrix products (mm, addmm, bmm,
   linear) against everything else.
Four candidates fit in 2× one only if the matrix products of four (4× the FLOPs) take no longer
than the time one candidate spends outside them. Prints a table, writes
benchmarks/results/mdm_batch_scaling.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path

import torch

from easytune_engine.models.pipeline import MotionGenerator
from machine import machine

GEMM_OPS = ("aten::mm", "aten::addmm", "aten::_addmm_activation", "aten::bmm", "aten::linear")


def gemm_rate(dtype: torch.dtype, repeats: int = 500) -> float:
    """GFLOP/s of a (400, 256) @ (256, 768) product."""
    a, b = torch.randn(400, 256, dtype=dtype), torch.randn(256, 768, dtype=dtype)
    for _ in range(20):
        a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * 400 * 256 * 768 * repeats / (time.perf_counter() - t0) / 1e9


def timed(gen: MotionGenerator, batch: int, repeats: int, autocast: bool) -> float:
    prompts, lengths = ["a person jumps twice"] * batch, [196] * batch
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    with ctx:
        for _ in range(2):
            gen.generate(prompts, lengths, seed=0)
        times = []
        for r in range(repeats):
            t0 = time.perf_counter()
            gen.generate(prompts, lengths, seed=r)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def profile_split(gen: MotionGenerator, batch: int) -> dict[str, float]:
    """Seconds of one call spent in matrix products and in everything else (self CPU time)."""
    prompts, lengths = ["a person jumps twice"] * batch, [196] * batch
    gen.generate(prompts, lengths, seed=0)
    with torch.autograd.profiler.profile() as prof:
        gen.generate(prompts, lengths, seed=0)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / 1e6
    gemm = sum(e.self_cpu_time_total for e in events if e.key in GEMM_OPS) / 1e6
    return {"gemm_s": round(gemm, 4), "other_s": round(total - gemm, 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--ghz", type=float, default=2.5, help="clock for the peak estimate")
    ap.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "mdm_batch_scaling.json")
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gen = MotionGenerator.load("mdm")
    dtypes = (torch.float32, torch.bfloat16, torch.float16)
    rates = {str(d).removeprefix("torch."): round(gemm_rate(d), 1) for d in dtypes}
    peak = args.threads * 2 * 16 * 2 * args.ghz  # cores × FMA units × lanes × 2 FLOP × GHz
    calls = {}
    for autocast in (False, True):
        name = "bfloat16 autocast" if autocast else "float32"
        one = timed(gen, 1, args.repeats, autocast)
        four = timed(gen, 4, args.repeats, autocast)
        calls[name] = {"batch1_s": round(one, 4), "batch4_s": round(four, 4)}
        calls[name]["ratio"] = round(four / one, 2)
    split = {f"batch{b}": profile_split(gen, b) for b in (1, 4)}
    measured = ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in rates.items())
    print(f"GEMM (400x256 @ 256x768), {args.threads} threads: {measured}; fp32 peak ≈ {peak:.0f}")
    print(f"{'MDM generate, 196 frames':28} {'batch 1':>8} {'batch 4':>8} {'4/1':>5}")
    for name, row in calls.items():
        print(f"{name:28} {row['batch1_s']:8.3f} {row['batch4_s']:8.3f} {row['ratio']:5.2f}")
    for name, row in split.items():
        gemm, other = row["gemm_s"], row["other_s"]
        print(f"profile {name}: matrix products {gemm:.3f} s, the rest {other:.3f} s")
    doc = {
        "benchmark": "mdm_batch_scaling",
        "threads": args.threads,
        "machine": machine(),
        "gemm_gflops": rates,
        "fp32_peak_gflops_estimate": peak,
        "generate": calls,
        "profile": split,
    }
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
