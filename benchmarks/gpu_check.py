"""GPU check of the generation fast path: eager fp32 against bf16 + CUDA graphs, same motions?

    python benchmarks/gpu_check.py                      # on a CUDA machine (about 2 minutes)
    python benchmarks/gpu_check.py --device cpu         # dry run: the fast path without capture

For every shipped backbone at its default sampler and steps (LCM 4, MLD 50, MDM 50), batch 1 and
4, 196 frames, the median latency (after warm-up) of three ways to the raw features:

* eager: `MotionGenerator`'s steps (encode, initial noise, loop, decode, denormalise), fp32;
* loop graph (`loop_ms`): `FastSampler.sample`, only the loop captured, the rest eager (the old
  scope);
* whole graph (`fast_ms`): `FastSampler.generate`, the server's path: the prompt's embedding from
  the cache, x_T and every draw staged on the host and copied once, then one graph for loop,
  decoder and denormalisation, one copy back. `fast_new_prompt_ms`: the same with a prompt never
  seen before (the encoder runs, eagerly, once for it).

and the largest joint distance between each fast path's motions and the eager path's for the same
seeds (bf16 drifts a little; a wrong graph would be metres off). Writes
benchmarks/results/gpu_check.json with the device named, after every backbone (a timeout keeps
what was measured). Issue 6 targets on a GPU: 4-step generation of one 196-frame clip <= 3 ms,
50-step <= 25 ms.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path

import torch

from easytune_engine.models.fastpath import FastSampler
from easytune_engine.models.pipeline import MotionGenerator
from easytune_engine.motion.features import features_to_joints

FRAMES = 196
PROMPT = "a person walks forward and waves with the right hand"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _log(event: str, **fields) -> None:
    print(event, fields, flush=True)


def run_once(
    gen: MotionGenerator, fast: FastSampler | None, batch: int, seed: int, prompt: str = PROMPT
):
    """Raw features (B, T, 263) of one generation: eager (fast None) or the loop-only graph."""
    opts = gen.options()
    lengths = torch.full((batch,), FRAMES)
    streams = gen.generators(batch, seed)
    with torch.no_grad():
        cond = gen.conditioning([prompt] * batch, lengths, opts)
        x_T = gen.initial_noise(lengths, streams)
        if fast is None:
            x0 = gen.sample(cond, x_T, opts, generator=streams)
        else:
            x0 = fast.sample(cond, x_T, opts, streams)
        feats = gen.backbone.decode(x0.float(), cond.lengths)
        return gen.backbone.denormalize(feats).float().cpu().numpy()


def run_whole(fast: FastSampler, batch: int, seed: int, prompt: str = PROMPT):
    """Raw features (B, T, 263) from the whole-generation graph (the server's path)."""
    gen = fast.gen
    streams = gen.generators(batch, seed)
    with torch.no_grad():
        return fast.generate([prompt] * batch, [FRAMES] * batch, gen.options(), streams).numpy()


def latency(fn, device: torch.device, repeats: int) -> float:
    fn()  # warm-up (and, on the fast path, capture)
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def worst_joint_diff(a, b) -> float:
    return max(
        float(abs(features_to_joints(x) - features_to_joints(y)).max())
        for x, y in zip(a, b, strict=True)
    )


def check(name: str, device: str, repeats: int, bf16: bool = True) -> list[dict]:
    gen = MotionGenerator.load(name, device=device)
    dev = gen.device
    capture = dev.type == "cuda"
    rows = []
    fresh = (f"{PROMPT} number {i}" for i in itertools.count())  # never cached
    for batch in (1, 4):
        loop = FastSampler(gen, capture=capture, bf16=capture and bf16, log=_log)
        whole = FastSampler(gen, capture=capture, bf16=capture and bf16, log=_log)
        eager_s = latency(lambda: run_once(gen, None, batch, 0), dev, repeats)  # noqa: B023
        loop_s = latency(lambda: run_once(gen, loop, batch, 0), dev, repeats)  # noqa: B023
        fast_s = latency(lambda: run_whole(whole, batch, 0), dev, repeats)  # noqa: B023
        new_s = latency(lambda: run_whole(whole, batch, 0, next(fresh)), dev, repeats)  # noqa: B023
        worst_loop = worst_whole = 0.0
        for seed in (1, 2, 3):
            a = run_once(gen, None, batch, seed)
            worst_loop = max(worst_loop, worst_joint_diff(a, run_once(gen, loop, batch, seed)))
            worst_whole = max(worst_whole, worst_joint_diff(a, run_whole(whole, batch, seed)))
        opts = gen.options()
        rows.append(
            {
                "backbone": name,
                "sampler": opts.sampler,
                "steps": opts.steps,
                "batch": batch,
                "eager_ms": round(eager_s * 1000, 2),
                "loop_ms": round(loop_s * 1000, 2),
                "fast_ms": round(fast_s * 1000, 2),
                "fast_new_prompt_ms": round(new_s * 1000, 2),
                "loop_graphs": loop.graphs,
                "graphs": whole.graphs,
                "loop_max_joint_diff_m": round(worst_loop, 5),
                "max_joint_diff_m": round(worst_whole, 5),
            }
        )
        print(rows[-1], flush=True)
    return rows


def write(args, rows: list[dict]) -> None:
    device = (
        torch.cuda.get_device_name(torch.device(args.device))
        if args.device.startswith("cuda")
        else "cpu"
    )
    out = {
        "device": device,
        "torch": torch.__version__,
        "frames": FRAMES,
        "graph_dtype": args.graph_dtype,
        "scopes": {
            "loop_ms": "FastSampler.sample: the loop captured; encode, decode eager",
            "fast_ms": "FastSampler.generate: cached prompt, one copy in, one graph "
            "(loop, decoder, denormalisation), one copy out",
            "fast_new_prompt_ms": "FastSampler.generate with an uncached prompt",
        },
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--backbones", nargs="*", default=["lcm", "mld", "mdm"])
    ap.add_argument("--graph-dtype", default="bf16", choices=["bf16", "fp32"])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "gpu_check.json"))
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here; run with --device cpu for a dry run")
    bf16 = args.graph_dtype == "bf16"
    rows: list[dict] = []
    for name in args.backbones:
        rows += check(name, args.device, args.repeats, bf16)
        write(args, rows)
    print(
        "\n| backbone | steps | batch | eager ms | loop graph ms | whole graph ms "
        "| new prompt ms | graphs | joint diff loop / whole (m) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['backbone']} | {r['steps']} | {r['batch']} | {r['eager_ms']} | "
            f"{r['loop_ms']} | {r['fast_ms']} | {r['fast_new_prompt_ms']} | "
            f"{r['loop_graphs']} / {r['graphs']} | "
            f"{r['loop_max_joint_diff_m']} / {r['max_joint_diff_m']} |"
        )
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
