"""Train only the MLD/LCM VAE (stage 1) with VAEConfig overrides; judge the round trip as it goes.

    OMP_NUM_THREADS=1 EASYTUNE_HOME=/tmp/ethome python benchmarks/vae_experiment.py \\
        --out /tmp/vae_exp/B --steps 1500 --eval-every 250 --set root_weight=10

The model is the `default` MLD preset's (`--preset`), its VAE config changed by `--set KEY=VALUE`;
the stage's optimisation settings are the preset's VAE stage with `--steps` steps (the cosine
schedule spans them). Every `--eval-every` steps the EMA weights (what the pipeline ships) are
judged with `eval.vae_check.vae_round_trip_report` on `--samples` test clips and saved as
`<out>/vae_stepN.safetensors` (an MLD checkpoint whose denoiser is untrained and latent scale 1:
for `vae_round_trip.py`, not for sampling). Each result is appended to `<out>/curve.jsonl`;
`<out>/experiment.json` holds the run at the end. The run resumes like `easytune-engine train`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import torch

from easytune_engine.data.corpus.build import default_corpus_dir
from easytune_engine.data.humanml3d import load_split
from easytune_engine.eval.vae_check import round_trip_clips, vae_round_trip_report
from easytune_engine.models.io import build_backbone, load_backbone, save_backbone
from easytune_engine.models.vae import VAEConfig
from easytune_engine.text.encoder import load_text_encoder
from easytune_engine.training.loop import Stage, TextCache, run_stage
from easytune_engine.training.objectives import vae_loss
from easytune_engine.training.presets import get_preset
from machine import machine


def _overrides(pairs: list[str]) -> dict:
    types = {f.name: f.type for f in fields(VAEConfig)}
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in types:
            raise SystemExit(f"--set {pair!r}: expected KEY=VALUE with KEY in {sorted(types)}")
        kind = types[key] if isinstance(types[key], str) else types[key].__name__
        out[key] = {"int": int, "float": float, "str": str}[kind](value)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--eval-every", type=int, default=250, help="a multiple of 50")
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="VAEConfig fields")
    ap.add_argument(
        "--init", default=None, help="start from this backbone's VAE weights (e.g. mld)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    corpus = Path(args.corpus) if args.corpus else default_corpus_dir()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    preset = get_preset("mld", args.preset)
    vae_cfg = replace(preset.model.vae, **_overrides(args.set))
    stage_cfg = replace(preset.stages["vae"], steps=args.steps, eval_every=args.eval_every)
    encoder = load_text_encoder()
    model_cfg = replace(preset.model, vae=vae_cfg, text_dim=encoder.width)
    split = load_split(corpus, "train")
    torch.manual_seed(args.seed)
    model = build_backbone("mld", model_cfg, split.mean, split.std)
    if args.init:
        model.vae.load_state_dict(load_backbone(args.init).vae.state_dict())
    clips = round_trip_clips(corpus, args.samples, args.seed)
    command = "python benchmarks/vae_experiment.py " + " ".join(map(shlex.quote, sys.argv[1:]))
    t0 = time.time()

    def on_eval(step: int) -> dict:
        t1 = time.time()
        report = vae_round_trip_report(model, clips=clips)
        report.pop("passed_ids")
        save_backbone(out / f"vae_step{step}.safetensors", model, {"reproduce": command})
        row = {"step": step, "train_seconds": round(t1 - t0, 1)} | report
        row["eval_seconds"] = round(time.time() - t1, 1)
        with open(out / "curve.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        print(
            f"\nstep {step}: round trip {100 * report['accuracy']:.1f}% "
            f"root_rot_vel {report['group_error']['root_rot_vel']:.3f}",
            flush=True,
        )
        return {"accuracy": report["accuracy"]}

    stage = Stage("vae", model.vae, vae_loss(model, args.seed), stage_cfg)
    run_stage(
        stage, model, split, TextCache(encoder), out, seed=args.seed, on_eval=on_eval, progress=True
    )
    curve = [json.loads(line) for line in (out / "curve.jsonl").read_text().splitlines()]
    logs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    doc = {
        "command": command,
        "corpus": str(corpus),
        "machine": machine(),
        "vae_config": vars(vae_cfg),
        "stage": vars(stage_cfg),
        "init": args.init,
        "curve": curve,
        "train_log": logs,
    }
    (out / "experiment.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"-> {out / 'experiment.json'}")


if __name__ == "__main__":
    main()
