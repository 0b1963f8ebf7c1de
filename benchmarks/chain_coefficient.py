"""The chain coefficient ‖∏ ∂π/∂x_s‖ against the step index for the shipped MLD-style model.

    python benchmarks/chain_coefficient.py [--model PATH] [--prompts 8] [--probes 8]

One 50-step guided DDIM trajectory per prompt batch with the full graph; for every step t,
‖uᵀ ∂x0/∂x_t‖ for random unit probes u, and ‖∂R/∂x_t‖ / ‖∂R/∂x0‖ for the reward's own direction
(see easytune_engine/finetune/analysis.py). Writes benchmarks/results/chain_coefficient.json and
a PNG plot beside it (needs the `bench` extra: matplotlib).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from easytune_engine.finetune.analysis import chain_coefficients
from easytune_engine.models.pipeline import MotionGenerator
from easytune_engine.reward.model import load_reward_model
from machine import machine

PROMPTS = [
    "a person jumps twice",
    "a person walks forward and then turns left",
    "someone waves with the right hand",
    "a person kicks with the left leg",
    "a person runs in a circle",
    "a person squats down and stands up",
    "a person bows",
    "a person hops on the right foot",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="mld")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--probes", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "chain_coefficient"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gen = MotionGenerator.load(args.model)
    prompts = (PROMPTS * 4)[: args.prompts]
    c = chain_coefficients(
        gen, load_reward_model(), prompts, [120] * len(prompts), probes=args.probes
    )
    doc = {
        "benchmark": "chain_coefficient",
        "model": args.model,
        "checkpoint_sha256": getattr(gen.backbone, "checkpoint_sha256", None),
        "prompts": prompts,
        "sampler": "ddim 50 steps, guidance as shipped",
        "machine": machine(),
        "step_index": list(range(len(c.timesteps))),
        "timesteps": c.timesteps,
        "random_probe": c.random_probe,
        "reward_probe": c.reward_probe,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    print("step  t    random-probe  reward-probe")
    for i, (t, a, b) in enumerate(zip(c.timesteps, c.random_probe, c.reward_probe, strict=True)):
        if i % 5 == 0 or i == len(c.timesteps) - 1:
            print(f"{i:4d} {t:4d} {a:12.4f} {b:13.4f}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed (pip install -e '.[bench]'): no plot")
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.semilogy(doc["step_index"], c.random_probe, label="random probe ‖uᵀ ∂x0/∂x_t‖")
    ax.semilogy(doc["step_index"], c.reward_probe, label="reward ‖∂R/∂x_t‖ / ‖∂R/∂x0‖")
    ax.set_xlabel("denoising step index (0 = noisiest)")
    ax.set_ylabel("chain coefficient norm")
    ax.set_title("Chain coefficient per step (MLD-style, DDIM 50)", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=120)
    print(f"-> {out.with_suffix('.json')}, {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
