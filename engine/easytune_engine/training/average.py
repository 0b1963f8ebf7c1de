"""Average the weights of runs of one network (a "model soup", Wortsman et al. 2022).

    python -m easytune_engine.training.average A B [--weights 0.5 0.5] --out RUN

Two runs that start from related weights (an LCM distilled from an MLD, another distilled from a
refined copy of that MLD) often sit in one basin, where the average of their weights scores
between or above both. For the shipped LCM it evened out its steps: the run shipped before was
best at 4 steps, a fresh distillation best at 1 step, their average close to the best of both at
every step count (validation split, docs/backbones.md).

Refused, with nothing written: fewer than two runs; other networks (kind or config); other
Mean/Std or latent scale; for latent models, another VAE (each denoiser learned its own VAE's
latent space, so only denoisers that share one can be averaged); other text encoders; weights
that are negative or do not sum to 1.
"""

from __future__ import annotations

import argparse
import math
import shlex
from pathlib import Path

import torch

from ..models.base import Backbone
from ..models.io import load_backbone, save_backbone
from .merge import model_paths

# state-dict names every run must hold equal: the data statistics and, for latent models, the VAE
_SHARED_PREFIXES = ("vae.",)
_SHARED_NAMES = ("mean", "std", "latent_std")


def _shared(name: str) -> bool:
    return name in _SHARED_NAMES or name.startswith(_SHARED_PREFIXES)


def average_runs(models: list[Path], weights: list[float], out: Path) -> Path:
    """Write `out` (a model.safetensors) whose trained weights are the `weights`-weighted mean of
    the `models`' (every other tensor equal in all of them); returns it."""
    if len(models) < 2:
        raise ValueError("average needs the model.safetensors of at least two runs")
    if len(weights) != len(models):
        raise ValueError(f"{len(weights)} weights for {len(models)} runs: give one per run")
    if any(not math.isfinite(w) or w < 0 for w in weights) or abs(sum(weights) - 1) > 1e-6:
        raise ValueError(f"weights must be >= 0 and sum to 1, got {weights}")
    runs: list[Backbone] = [load_backbone(path) for path in models]
    first = runs[0]
    extras = [run.checkpoint_extra for run in runs]
    for path, run, extra in zip(models[1:], runs[1:], extras[1:], strict=True):
        if run.kind != first.kind or run.config != first.config:
            raise ValueError(f"{path}: another network than {models[0]}'s")
        if extra.get("text_encoder_sha256") != extras[0].get("text_encoder_sha256"):
            raise ValueError(f"{path}: trained with another text encoder than {models[0]}")
    states = [run.state_dict() for run in runs]
    mixed: dict[str, torch.Tensor] = {}
    for name, ref in states[0].items():
        if _shared(name) or not ref.is_floating_point():
            for path, state in zip(models[1:], states[1:], strict=True):
                if not torch.equal(state[name], ref):
                    what = "VAE" if name.startswith("vae.") else name
                    raise ValueError(
                        f"{path}: its {what} differs from {models[0]}'s ({name}); only runs that "
                        "share it can be averaged"
                    )
            mixed[name] = ref.clone()
            continue
        total = sum(w * s[name].double() for w, s in zip(weights, states, strict=True))
        mixed[name] = total.to(ref.dtype)
    first.load_state_dict(mixed)
    # what every parent's metadata agrees on describes the average; a key they disagree on
    # (e.g. each fine-tune's settings) is None here and kept in each parent's own entry
    keys = {k for e in extras for k in e} - {"reproduce"}
    differ = sorted(k for k in keys if any(e.get(k) != extras[0].get(k) for e in extras[1:]))
    parents = [
        {"weight": w, "reproduce": e.get("reproduce"), "sha256": run.checkpoint_sha256}
        | ({"differs": {k: e.get(k) for k in differ}} if differ else {})
        for w, e, run in zip(weights, extras, runs, strict=True)
    ]
    command = shlex.join(
        ["python", "-m", "easytune_engine.training.average", *map(str, models), "--weights"]
        + [f"{w:g}" for w in weights]
        + ["--out", "RUN"]
    )
    extra = dict(extras[0]) | dict.fromkeys(differ) | {"averaged_from": parents}
    extra["reproduce"] = command
    out.parent.mkdir(parents=True, exist_ok=True)
    save_backbone(out, first, extra)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="run directories (or their model.safetensors)")
    ap.add_argument("--weights", nargs="+", type=float, help="one per run (default: equal)")
    ap.add_argument("--out", required=True, help="run directory for the averaged model")
    args = ap.parse_args()
    paths = model_paths(args.runs)
    weights = args.weights or [1.0 / len(paths)] * len(paths)
    out = average_runs(paths, weights, Path(args.out) / "model.safetensors")
    print(f"model -> {out}")


if __name__ == "__main__":
    main()
