"""Train an MLD denoiser (stage 2) on a VAE from `vae_experiment.py`, then judge it on val.

    OMP_NUM_THREADS=1 EASYTUNE_HOME=/tmp/ethome python benchmarks/latent_denoiser_experiment.py \\
        --vae /tmp/vae_exp/F8/vae_step2500.safetensors --out /tmp/den_exp/F8 --steps 3000

The VAE checkpoint's network (its VAE and denoiser sizes) is kept; its latent scale is measured
as the training pipeline does, then only the denoiser trains: the `default` MLD preset's denoiser
stage (batch 64, lr 2e-4, warm-up 300, cosine) with `--steps` steps, or as many as fit
`--minutes`. The result is judged like the shipped MLD in `backbone_quality.py`'s val twin
(`evaluate_backbone` on the val split, 256 prompts, 20 repetitions, DDIM 50, w 7.5): R@1, FID,
MM-Dist, Diversity and the oracle. With `--baseline` (default: the shipped MLD) the same numbers
for that model, trained on its own schedule, are printed next to it. The run resumes like
`easytune-engine train`. Writes `<out>/experiment.json`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from easytune_engine.data.corpus.build import default_corpus_dir
from easytune_engine.data.humanml3d import load_split
from easytune_engine.eval.backbone import evaluate_backbone
from easytune_engine.eval.cli import default_evaluator
from easytune_engine.eval.evaluator import load_evaluator
from easytune_engine.eval.vae_check import load_vae
from easytune_engine.models.io import load_backbone, save_backbone
from easytune_engine.models.pipeline import MotionGenerator
from easytune_engine.text.encoder import load_text_encoder
from easytune_engine.training.loop import Stage, TextCache, run_stage
from easytune_engine.training.objectives import latent_eps_loss, measure_latent_std
from easytune_engine.training.presets import get_preset
from machine import machine

KEYS = ("R@1", "R@1_ci", "FID", "MM-Dist", "Diversity", "oracle_accuracy")


def judge(model, corpus: Path, samples: int) -> dict:
    """Val metrics at the model's default sampling (the selection split, never test)."""
    gen = MotionGenerator(model.eval(), load_text_encoder())
    evaluator = load_evaluator(default_evaluator())
    row = evaluate_backbone(
        gen, corpus, evaluator, samples=samples, repeats=20, mm_texts=0, split="val"
    ).as_json()
    return {k: row[k] for k in KEYS}


def add_run_arguments(ap: argparse.ArgumentParser, steps: int) -> None:
    """The options every stage experiment here shares."""
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--minutes", type=float, default=0.0, help="> 0: fit the steps to this")
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--corpus", default=None)


def start_run(args: argparse.Namespace, script: str) -> tuple[Path, Path, str]:
    """Threads set; (corpus, out directory made, the command that reproduces this run)."""
    torch.set_num_threads(args.threads)
    corpus = Path(args.corpus) if args.corpus else default_corpus_dir()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return corpus, out, f"python benchmarks/{script} " + " ".join(map(shlex.quote, sys.argv[1:]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vae", required=True, help="an MLD checkpoint whose VAE is trained, or mld")
    add_run_arguments(ap, steps=5000)
    ap.add_argument(
        "--latent-scale",
        choices=("scalar", "channel"),
        default="scalar",
        help="one latent_std for all channels or one per channel (MLDConfig.latent_scale)",
    )
    ap.add_argument("--baseline", default="mld", help="judged the same way ('' = none)")
    args = ap.parse_args()
    corpus, out, command = start_run(args, "latent_denoiser_experiment.py")
    split = load_split(corpus, "train")
    torch.manual_seed(args.seed)
    model = load_vae(args.vae, latent_scale=args.latent_scale)
    if model.kind != "mld":
        raise SystemExit(f"--vae {args.vae}: an {model.kind} checkpoint; give an MLD (or mld)")
    resumed = (out / "train_state.safetensors").is_file()
    if not resumed:  # a fresh VAE: its latent scale, as train_backbone measures it
        model.latent_std.copy_(measure_latent_std(model, split, seed=args.seed))
    model.vae.requires_grad_(False)
    cfg = replace(get_preset("mld", "default").stages["denoiser"], steps=args.steps)
    stage = Stage("denoiser", model.denoiser, latent_eps_loss(model, args.seed), cfg)
    train_s = train_and_save(stage, model, split, out, args, command)
    rows = {"this": judge(model, corpus, args.samples)}
    if args.baseline:
        rows[args.baseline] = judge(load_backbone(args.baseline), corpus, args.samples)
    for name, row in rows.items():
        print(name, {k: round(v, 4) for k, v in row.items()}, flush=True)
    head = {"command": command, "vae": args.vae, "vae_config": vars(model.config.vae)}
    head["latent_std"] = model.latent_std.tolist()
    write_experiment(out, head, stage, train_s, rows)


def train_and_save(stage: Stage, model, split, out: Path, args, command: str) -> float:
    """Run (or resume) the stage, save `<out>/model.safetensors`; returns the seconds taken."""
    t0 = time.time()
    text = TextCache(load_text_encoder())
    budget = 60.0 * args.minutes
    run_stage(stage, model, split, text, out, seed=args.seed, progress=True, time_budget_s=budget)
    save_backbone(out / "model.safetensors", model, {"reproduce": command})
    return time.time() - t0


def write_experiment(out: Path, head: dict, stage: Stage, train_s: float, rows: dict) -> None:
    """`<out>/experiment.json`: `head`, the stage's settings, time, machine, val rows and log."""
    doc = head | {
        "stage": vars(stage.config),
        "train_seconds": round(train_s, 1),
        "machine": machine(),
        "val": rows,
        "train_log": [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()],
    }
    (out / "experiment.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"-> {out / 'experiment.json'}")


if __name__ == "__main__":
    main()
