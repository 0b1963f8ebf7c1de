"""Turn a trained run into shipped weights: fp16 copy + manifest in `easytune_engine/weights/`.

    python -m easytune_engine.training.ship --backbone mld --model RUN/model.safetensors \
        [--metrics benchmarks/results/backbone_quality.json]

fp16 is used only when it keeps the generated motion: the same prompts and seeds are generated
with the float32 and the fp16-stored weights and the largest difference in joint positions is
recorded in the manifest (refused above `--max-joint-error` metres, then float32 ships).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..manifest import attach_metrics as attach_manifest_metrics
from ..manifest import build_manifest, manifest_path, save_manifest
from ..models.io import WEIGHTS_DIR, check_backbone_name, load_backbone, save_backbone
from ..models.pipeline import MotionGenerator
from ..motion.features import features_to_joints
from ..text.encoder import load_text_encoder

# how the weights came from other weights, copied from the checkpoint into the manifest
SHIPPED_LINEAGE = (
    "averaged_from",
    "merged_from",
    "finetuned_from",
    "finetune",
    "finetune_trajectories",
    "init_lineage",
)
PROMPTS = ["a person jumps twice", "a person walks forward then turns left", "someone waves"]


def _joints(gen: MotionGenerator) -> list[np.ndarray]:
    out = gen.generate(PROMPTS, [120] * len(PROMPTS), seed=0)
    return [features_to_joints(f) for f in out.features]


def fp16_joint_error(model_path: Path) -> float:
    """Largest joint-position difference (m) between float32 and fp16-stored weights."""
    enc = load_text_encoder()
    full = MotionGenerator(load_backbone(model_path), enc)
    with tempfile.TemporaryDirectory() as tmp:
        half_path = Path(tmp) / "half.safetensors"
        save_backbone(half_path, full.backbone, dict(full.backbone.checkpoint_extra), torch.float16)
        half = MotionGenerator(load_backbone(half_path), enc)
        a, b = _joints(full), _joints(half)
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


def ship(
    name: str,
    model_path: Path,
    metrics: dict | None,
    max_joint_error: float,
    reproduce: str | None = None,
) -> Path:
    check_backbone_name(name)
    model = load_backbone(model_path)
    if model.kind != name:
        raise ValueError(f"{model_path} holds a {model.kind} backbone, not {name}")
    err = fp16_joint_error(model_path)
    dtype = torch.float16 if err <= max_joint_error else None
    extra = dict(model.checkpoint_extra)
    out = WEIGHTS_DIR / f"{name}.safetensors"
    digest = save_backbone(out, model, extra, dtype)
    manifest = build_manifest(
        out,
        kind=f"backbone/{name}",
        payload_sha256=digest,
        config=asdict(model.config),
        parameters=sum(p.numel() for p in model.parameters()),
        reproduce=reproduce or extra.get("reproduce"),
        metrics=metrics,
        fields={
            "dtype": "float16 weights, float32 Mean/Std/latent scale" if dtype else "float32",
            "fp16_max_joint_error_m": round(err, 6),
            "text_encoder_sha256": extra.get("text_encoder_sha256"),
            "teacher_sha256": extra.get("teacher_sha256"),
            "init_sha256": extra.get("init_sha256"),  # the weights a `refine` run started from
            "corpus": extra.get("corpus"),
            "training": {"preset": extra.get("preset"), "seed": extra.get("seed")}
            | {"stages": extra.get("stages")},
        }
        | {k: extra[k] for k in SHIPPED_LINEAGE if k in extra},
    )
    save_manifest(manifest_path(out), manifest)
    return out


def attach_metrics(name: str, metrics: dict) -> Path:
    """Record measured metrics in a shipped backbone's manifest (after benchmarking it)."""
    weights = WEIGHTS_DIR / f"{check_backbone_name(name)}.safetensors"
    return attach_manifest_metrics(manifest_path(weights), metrics)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backbone", required=True)
    ap.add_argument("--model", required=True, help="the run's model.safetensors")
    ap.add_argument("--metrics", help="a JSON file of metrics to record (e.g. quality results)")
    ap.add_argument("--max-joint-error", type=float, default=0.01, help="metres (default 0.01)")
    ap.add_argument("--reproduce", help="the command to record (default: the run's own)")
    args = ap.parse_args()
    metrics = json.loads(Path(args.metrics).read_text()) if args.metrics else None
    out = ship(args.backbone, Path(args.model), metrics, args.max_joint_error, args.reproduce)
    print(f"-> {out} ({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
