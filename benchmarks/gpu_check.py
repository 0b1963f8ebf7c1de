"""GPU check of the generation fast path: eager fp32 against bf16 + CUDA graph, same motions?

    python benchmarks/gpu_check.py                      # on a CUDA machine (about 2 minutes)
    python benchmarks/gpu_check.py --device cpu         # dry run: the fast path without capture

For every shipped backbone at its default sampler and steps (LCM 4, MLD 50, MDM 50), batch 1 and
4, 196 frames: the median latency of the eager loop and of the fast path (after warm-up), and the
largest joint distance between the two paths' motions for the same seeds (bf16 drifts a little;
a wrong graph would be metres off). Writes benchmarks/results/gpu_check.json with the device named.
Issue 6 targets on a GPU: 4-step generation of one 196-frame clip <= 3 ms, 50-step <= 25 ms.
"""

from __future__ import annotations

import argparse
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


def run_once(gen: MotionGenerator, fast: FastSampler | None, batch: int, seed: int):
    """Raw features (B, T, 263) of one generation, eager (fast None) or fast path."""
    opts = gen.options()
    lengths = torch.full((batch,), FRAMES)
    streams = gen.generators(batch, seed)
    with torch.no_grad():
        cond = gen.conditioning([PROMPT] * batch, lengths, opts)
        x_T = gen.initial_noise(lengths, streams)
        if fast is None:
            x0 = gen.sample(cond, x_T, opts, generator=streams)
        else:
            x0 = fast.sample(cond, x_T, opts, streams)
        feats = gen.backbone.decode(x0.float(), cond.lengths)
        return gen.backbone.denormalize(feats).float().cpu().numpy()


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


def check(name: str, device: str, repeats: int, bf16: bool = True) -> list[dict]:
    gen = MotionGenerator.load(name, device=device)
    dev = gen.device
    capture = dev.type == "cuda"
    rows = []
    for batch in (1, 4):
        fast = FastSampler(gen, capture=capture, bf16=capture and bf16, log=_log)
        eager_s = latency(lambda: run_once(gen, None, batch, 0), dev, repeats)  # noqa: B023
        fast_s = latency(lambda: run_once(gen, fast, batch, 0), dev, repeats)  # noqa: B023
        worst = 0.0
        for seed in (1, 2, 3):
            a = run_once(gen, None, batch, seed)
            b = run_once(gen, fast, batch, seed)
            for i in range(batch):
                d = features_to_joints(a[i]) - features_to_joints(b[i])
                worst = max(worst, float(abs(d).max()))
        opts = gen.options()
        rows.append(
            {
                "backbone": name,
                "sampler": opts.sampler,
                "steps": opts.steps,
                "batch": batch,
                "eager_ms": round(eager_s * 1000, 2),
                "fast_ms": round(fast_s * 1000, 2),
                "graphs": fast.graphs,
                "max_joint_diff_m": round(worst, 5),
            }
        )
        print(rows[-1], flush=True)
    return rows


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
    rows = [r for name in args.backbones for r in check(name, args.device, args.repeats, bf16)]
    device = (
        torch.cuda.get_device_name(torch.device(args.device))
        if args.device.startswith("cuda")
        else "cpu"
    )
    print("\n| backbone | steps | batch | eager ms | fast ms | graphs | max joint diff (m) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['backbone']} | {r['steps']} | {r['batch']} | {r['eager_ms']} | "
            f"{r['fast_ms']} | {r['graphs']} | {r['max_joint_diff_m']} |"
        )
    out = {
        "device": device,
        "torch": torch.__version__,
        "frames": FRAMES,
        "graph_dtype": args.graph_dtype,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
