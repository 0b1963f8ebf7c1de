"""How a latent backbone's decoder answers small errors in its latent: real clips encoded, the
scaled latent perturbed by Gaussian noise of std σ, decoded, judged by the corpus oracle.

    EASYTUNE_HOME=/tmp/ethome python benchmarks/latent_noise_probe.py CHECKPOINT [CHECKPOINT ...] \\
        [--sigmas 0 0.05 0.1 0.2 0.3] [--samples 256] [--split val] [--out results/....json]

CHECKPOINT is a shipped name (mld, lcm) or a whole MLD/LCM checkpoint (its trained `latent_std`
defines the scaled latent that the denoiser predicts, so σ is in the denoiser's units: σ = 0.1 is
a tenth of the latent's spread). The noise touches only the latent positions that belong to the
motion (`Backbone.noise_mask`), and the same noise draw, scaled, is used for every σ and every
checkpoint of the same latent shape. The denoiser's error in x̂0 is such a perturbation; a
decoder that turns a small one into a failed clip (a body lifted off the ground, a stray step)
caps what the denoiser can reach. `--generated N` also compares the latents the denoiser
generates for N prompts with the same clips encoded (`generated_spread`). For each σ: oracle
accuracy (Wilson 95% CI), per-group feature
error, and the checks that fail most (counted per segment, numbers replaced by N).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from easytune_engine.data.corpus.build import default_corpus_dir
from easytune_engine.eval.metrics import wilson
from easytune_engine.eval.vae_check import (
    encode_clips,
    group_errors,
    judge_clips,
    round_trip_clips,
)
from easytune_engine.models.io import load_backbone
from machine import machine


@torch.no_grad()
def perturbed_round_trip(
    backbone, feats: list[np.ndarray], sigma: float, seed: int = 0, batch: int = 32
) -> list[np.ndarray]:
    """Raw (T, 263) clips -> encoded (scaled latent), + σ·N(0, I) on the motion's positions,
    decoded to raw features."""
    out = []
    for s in range(0, len(feats), batch):
        z, lengths = encode_clips(backbone, feats[s : s + batch])  # (B, n, d) scaled
        gen = torch.Generator().manual_seed(seed + s)
        noise = torch.randn(z.shape, generator=gen)
        mask = backbone.noise_mask(lengths, z.shape[1]).to(z.dtype)  # (B, n)
        z = z + sigma * noise * mask[..., None]
        rec = backbone.denormalize(backbone.decode(z, lengths))
        out += [rec[i, : int(n)].float().numpy() for i, n in enumerate(lengths)]
    return out


@torch.no_grad()
def generated_spread(checkpoint: str, corpus: Path, samples: int, split: str) -> dict:
    """Per latent channel, generated over real: the spread of the scaled latent and (frames
    layout) of its change from one latent position to the next, on `samples` prompts of whole
    clips of `split` (DDIM at the model's defaults, seed 0) against the same clips encoded."""
    from easytune_engine.eval.backbone import test_prompts
    from easytune_engine.models.pipeline import MotionGenerator
    from easytune_engine.text.encoder import load_text_encoder

    backbone = load_backbone(checkpoint).eval()
    gen = MotionGenerator(backbone, load_text_encoder())
    _, feats, _ = round_trip_clips(corpus, samples, 0, split)
    prompts = test_prompts(corpus, samples, 0, split)
    real, lengths = encode_clips(backbone, feats)
    opts = gen.options(None, None, None, 0.0)
    streams = gen.generators(len(prompts), 0)
    cond = gen.conditioning([p.text for p in prompts], lengths, opts)
    fake = gen.sample(cond, gen.initial_noise(lengths, streams), opts, generator=streams)
    mask = backbone.noise_mask(lengths, real.shape[1])
    out = {"spread": (fake[mask].std(0) / real[mask].std(0)).tolist()}
    if real.shape[1] > 1:
        both = mask[:, 1:] & mask[:, :-1]
        step = [(z[:, 1:] - z[:, :-1])[both].std(0) for z in (fake, real)]
        out["step_change"] = (step[0] / step[1]).tolist()
    return out


def probe(checkpoint: str, clips, sigmas: list[float], top: int) -> list[dict]:
    backbone = load_backbone(checkpoint).eval()
    _, feats, programs = clips
    rows = []
    for sigma in sigmas:
        t0 = time.perf_counter()
        rec = perturbed_round_trip(backbone, feats, sigma)
        verdicts = judge_clips(rec, programs)
        fails: Counter[str] = Counter()
        for v in verdicts:
            for seg in v.segments:
                fails.update(re.sub(r"[0-9.]+", "N", c) for c in seg.failed)
        k, n = sum(bool(v.accepted) for v in verdicts), len(verdicts)
        rows.append(
            {
                "sigma": sigma,
                "accuracy": k / n,
                "accuracy_ci95": wilson(k, n),
                "group_error": group_errors(feats, rec),
                "failed_checks": dict(fails.most_common(top)),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        airborne = fails.get("no airborne frames above N", 0)
        print(
            f"{checkpoint:40.40} σ={sigma:<5} oracle {k / n:6.1%}  airborne segs {airborne:3d}  "
            f"height err {rows[-1]['group_error']['root_height']:.3f}  "
            f"all {rows[-1]['group_error']['all']:.3f}",
            flush=True,
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.2, 0.3])
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--split", default="val", choices=("val", "test"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--generated", type=int, default=0, help="> 0: generated_spread on N prompts")
    ap.add_argument("--out", default=None, help="write the rows here as JSON")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    corpus = Path(args.corpus) if args.corpus else default_corpus_dir()
    clips = round_trip_clips(corpus, args.samples, 0, args.split)
    rows = {c: probe(c, clips, args.sigmas, args.top) for c in args.checkpoints}
    spread = {}
    for c in args.checkpoints if args.generated else ():
        spread[c] = generated_spread(c, corpus, args.generated, args.split)
        ratios = {k: f"{min(v):.2f}-{max(v):.2f}" for k, v in spread[c].items()}
        print(f"{c}: generated / real, per channel: {ratios}", flush=True)
    if args.out:
        doc = {
            "benchmark": "latent_noise_probe",
            "split": args.split,
            "samples": len(clips[0]),
            "machine": machine(),
            "rows": rows,
            "generated_over_real": spread,
        }
        Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"-> {args.out}")


if __name__ == "__main__":
    main()
