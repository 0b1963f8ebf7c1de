"""Join the stages of a `refine` run trained in separate processes into one model.

    easytune-engine train --backbone mld --preset refine --init mld --steps denoiser=0 --out A
    easytune-engine train --backbone mld --preset refine --init mld --steps decoder=0 --out B
    python -m easytune_engine.training.merge A B --out RUN

The stages of a `refine` preset share no trainable weight and each seeds its own draws, so each
can train on its own core (`--steps STAGE=0` skips the others) and the result equals one run of
all of them (tests/engine/training/test_backbones.py checks this). The merge takes each stage's
weights from the one run that trained it, checks that the runs started from the same weights
and agree on every weight none of them trained, and records the command of the equivalent
single run. Nothing is written unless every check passes.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import torch

from ..models.base import Backbone
from ..models.io import load_backbone, save_backbone
from .backbones import exact_command

# the runs must agree on these manifest fields
SAME = ("init_sha256", "preset", "seed", "corpus", "text_encoder_sha256", "teacher_sha256")


def stage_weight_names(model: Backbone, stage: str) -> set[str]:
    """The state-dict names a `refine` stage trains."""
    if stage == "decoder":
        frozen = {id(p) for p in model.vae.encoder_parameters()}
        return {f"vae.{n}" for n, p in model.vae.named_parameters() if id(p) not in frozen}
    if stage in ("denoiser", "lcm"):
        return {f"denoiser.{n}" for n, _ in model.denoiser.named_parameters()}
    raise ValueError(f"stage {stage!r} cannot be merged; valid: decoder, denoiser, lcm")


def model_paths(runs: list[str]) -> list[Path]:
    """Run directories (their model.safetensors) or model files, as given on a command line."""
    return [Path(r) / "model.safetensors" if Path(r).is_dir() else Path(r) for r in runs]


def merge_runs(models: list[Path], out: Path) -> Path:
    """Write `out` (a model.safetensors) from the `refine` runs' `models`; returns it."""
    if len(models) < 2:
        raise ValueError("merge needs the model.safetensors of at least two runs")
    runs = [load_backbone(path) for path in models]
    first = runs[0]
    extras = [run.checkpoint_extra for run in runs]
    if extras[0].get("init_sha256") is None:
        raise ValueError(f"{models[0]} did not start from trained weights: only refine runs merge")
    for path, run, extra in zip(models[1:], runs[1:], extras[1:], strict=True):
        if run.kind != first.kind or run.config != first.config:
            raise ValueError(f"{path}: another network than {models[0]}'s")
        for key in SAME:
            if extra.get(key) != extras[0].get(key):
                raise ValueError(f"{path}: {key} differs from {models[0]}'s; runs must match")
    stages: dict[str, dict] = {}
    source: dict[str, int] = {}  # stage -> index of the run that trained it
    for stage in extras[0]["stages"]:
        trained = [i for i, e in enumerate(extras) if e["stages"][stage]["steps"] > 0]
        if len(trained) > 1:
            names = ", ".join(str(models[i]) for i in trained)
            raise ValueError(f"stage {stage!r} was trained in more than one run: {names}")
        i = trained[0] if trained else 0
        stages[stage], source[stage] = extras[i]["stages"][stage], i
    merged = {k: v.clone() for k, v in first.state_dict().items()}
    owner: dict[str, int] = {}
    for stage, i in source.items():
        if stages[stage]["steps"] > 0:
            owner |= dict.fromkeys(stage_weight_names(first, stage), i)
    states = [run.state_dict() for run in runs]
    for name in merged:
        if name in owner:
            merged[name] = states[owner[name]][name].clone()
            continue
        if not all(torch.equal(s[name], merged[name]) for s in states[1:]):
            raise ValueError(f"{name}: no run trained it, yet the runs hold different values")
    first.load_state_dict(merged)
    words = shlex.split(extras[0]["reproduce"])
    if "--out" in words:  # the single run's directory is the caller's to choose
        del words[words.index("--out") : words.index("--out") + 2]
    command = exact_command(shlex.join(words), {s: c["steps"] for s, c in stages.items()})
    extra = dict(extras[0]) | {"stages": stages, "reproduce": command}
    extra["merged_from"] = [e["reproduce"] for e in extras]
    out.parent.mkdir(parents=True, exist_ok=True)
    save_backbone(out, first, extra)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="run directories (or their model.safetensors)")
    ap.add_argument("--out", required=True, help="run directory for the merged model")
    args = ap.parse_args()
    out = merge_runs(model_paths(args.runs), Path(args.out) / "model.safetensors")
    print(f"model -> {out}")


if __name__ == "__main__":
    main()
