"""Refine a trained MLD's VAE decoder (encoder frozen) with latent noise or a height term; judge it.

    OMP_NUM_THREADS=1 EASYTUNE_HOME=/tmp/ethome python benchmarks/decoder_noise_experiment.py \\
        --init /tmp/den_exp/F8/model.safetensors --noise 0.8 --out /tmp/dec_exp/F8n --minutes 55

The MLD's denoiser generates latents that are not the encoder's: on the frames VAE they spread
1.7–2.1× as wide and change 2.5–5.7× faster from token to token than real clips' latents
(`latent_noise_probe.py --generated`), and its decoder turns them into bodies lifted off the
ground. Measured: noise is no lever (results/frames_latent/README.md). This
trains only the decoder, as the MLD `refine` preset's decoder stage does (batch 64, lr 1e-4,
warm-up 100, EMA 0.995), with `VAEConfig.decoder_noise` = `--noise` (0 = the plain refine stage,
the control). The encoder, latent scale and denoiser stay exactly as they were, so the model's
denoiser works with the new decoder unchanged. Judged on val: the generation metrics at the
model's sampling (R@1, FID, MM-Dist, Diversity, oracle; 256 prompts, 20 repetitions) and the
round trip of 256 real val clips. Resumes like `easytune-engine train`. Writes
`<out>/experiment.json`.

`--height W` sets `VAEConfig.height_weight` instead (or as well): a loss on the pelvis and foot
heights in metres, for the take-offs of jumps that the token VAE blurs. Measured on the shipped
MLD: no lever with the encoder frozen (results/height_term/README.md).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch

from easytune_engine.data.humanml3d import load_split
from easytune_engine.eval.vae_check import round_trip_clips, vae_round_trip_report
from easytune_engine.models.io import load_backbone
from easytune_engine.training.loop import Stage
from easytune_engine.training.objectives import decoder_loss
from easytune_engine.training.presets import get_preset
from latent_denoiser_experiment import (
    add_run_arguments,
    judge,
    start_run,
    train_and_save,
    write_experiment,
)


def round_trip(model, corpus: Path, samples: int) -> dict:
    clips = round_trip_clips(corpus, samples, 0, "val")
    report = vae_round_trip_report(model, clips=clips)
    keep = ("accuracy", "accuracy_ci95", "group_error", "segment_pass_by_action")
    return {k: report[k] for k in keep}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--init", required=True, help="a whole MLD checkpoint (or mld)")
    ap.add_argument("--noise", type=float, default=0.0, help="VAEConfig.decoder_noise")
    ap.add_argument("--height", type=float, default=0.0, help="VAEConfig.height_weight")
    add_run_arguments(ap, steps=2500)
    ap.add_argument("--no-before", action="store_true", help="skip judging the init")
    args = ap.parse_args()
    corpus, out, command = start_run(args, "decoder_noise_experiment.py")
    torch.manual_seed(args.seed)
    model = load_backbone(args.init)
    if model.kind != "mld":
        raise SystemExit(f"--init {args.init}: an {model.kind} checkpoint; give an MLD (or mld)")
    model.vae.config = replace(
        model.vae.config, decoder_noise=args.noise, height_weight=args.height
    )
    model.config = replace(model.config, vae=model.vae.config)  # saved with the weights
    rows = {}
    if not args.no_before and not (out / "train_state.safetensors").is_file():
        rows["before"] = judge(model, corpus, args.samples) | {
            "round_trip": round_trip(model, corpus, args.samples)
        }
        print("before", json.dumps(rows["before"])[:400], flush=True)
    model.train()
    for param in model.vae.encoder_parameters():
        param.requires_grad_(False)
    cfg = replace(get_preset("mld", "refine").stages["decoder"], steps=args.steps)
    stage = Stage("decoder", model.vae, decoder_loss(model, args.seed), cfg)
    train_s = train_and_save(stage, model, load_split(corpus, "train"), out, args, command)
    rows["after"] = judge(model, corpus, args.samples) | {
        "round_trip": round_trip(model, corpus, args.samples)
    }
    print("after", json.dumps(rows["after"])[:400], flush=True)
    head = {
        "command": command,
        "init": args.init,
        "decoder_noise": args.noise,
        "height_weight": args.height,
    }
    write_experiment(out, head, stage, train_s, rows)


if __name__ == "__main__":
    main()
