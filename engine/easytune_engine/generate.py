"""`easytune-engine generate "a person jumps twice" --backbone mld --n 4 --seed 0 --out DIR`.

Writes, for each candidate `cK`:
    cK.npy          raw HumanML3D features (T, 263) float32
    cK.joints.npy   joint positions (T, 22, 3), metres, Y up, 20 fps
    cK.bvh          the motion on the 22-joint skeleton (IK rotations), centimetres
and for the call:
    preview.gif     every candidate side by side
    motions.json    the generated-motions index, so `easytune-engine eval --motions DIR` reads it
    result.json     what was asked, how it was sampled, and where each candidate is (written last)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

FPS = 20
DEFAULT_FRAMES = 120
MAX_N = 16


def write_generation(out: Path, prompt: str, generation, info: dict, gif: bool = True) -> dict:
    """Write a `Generation` of one prompt into `out`; returns the result.json document."""
    from easytune_engine.eval.motions import write_motions
    from easytune_engine.fileio import atomic_write_bytes
    from easytune_engine.motion.bvh import write_bvh
    from easytune_engine.motion.features import features_to_joints
    from easytune_engine.motion.render import render_gif

    out.mkdir(parents=True, exist_ok=True)
    candidates, joints_all = [], []
    for k, feats in enumerate(generation.features):
        cid = f"c{k}"
        joints = features_to_joints(feats).astype(np.float32)  # (T, 22, 3)
        np.save(out / f"{cid}.joints.npy", joints)
        write_bvh(out / f"{cid}.bvh", joints, fps=FPS)
        joints_all.append(joints)
        candidates.append(
            {
                "id": cid,
                "frames": int(feats.shape[0]),
                "seconds": feats.shape[0] / FPS,
                "features": f"{cid}.npy",
                "joints": f"{cid}.joints.npy",
                "bvh": f"{cid}.bvh",
            }
        )
    pairs = zip(candidates, generation.features, strict=True)
    write_motions(out, [(c["id"], f, prompt) for c, f in pairs])
    if gif:
        render_gif(out / "preview.gif", joints_all, [c["id"] for c in candidates], fps=FPS)
    opts = generation.options
    doc = {
        "format": "easytune-generation",
        "version": 1,
        "prompt": prompt,
        "fps": FPS,
        "seed": generation.seed,
        "sampler": opts.sampler,
        "steps": opts.steps,
        "guidance": opts.guidance,
        "precision": opts.precision,
        "preview": "preview.gif" if gif else None,
        "candidates": candidates,
    } | info
    atomic_write_bytes(out / "result.json", (json.dumps(doc, indent=2) + "\n").encode())
    return doc


def run(args: argparse.Namespace) -> int:
    import torch

    from easytune_engine.models.pipeline import MotionGenerator

    if not 1 <= args.n <= MAX_N:
        raise ValueError(f"--n must be in 1..{MAX_N} candidates, got {args.n}")
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    if args.frames is not None and args.seconds is not None:
        raise ValueError("give the length as --frames or --seconds, not both")
    if args.model is not None and args.backbone is not None:
        raise ValueError("give --backbone (shipped weights) or --model (a checkpoint), not both")
    frames = DEFAULT_FRAMES if args.frames is None else args.frames
    if args.seconds is not None:
        frames = round(args.seconds * FPS)
    torch.set_num_threads(args.threads)
    gen = MotionGenerator.load(args.model or args.backbone or "mld")
    if args.adapter:
        from easytune_engine.finetune.lora import load_adapter

        load_adapter(Path(args.adapter).expanduser(), gen.backbone)
    text, rewrite_info = args.prompt, {}
    if not args.no_rewrite:
        from easytune_engine.text.rewrite import PromptRewriter

        rewriter = PromptRewriter.load()
        rewrite = rewriter(args.prompt)
        if rewriter.word_model_error is not None:
            print(f"warning: {rewriter.word_model_error}; correcting typos only")
        if rewrite.substitutions:
            text = rewrite.text
            rewrite_info["interpreted_prompt"] = text
            rewrite_info["substitutions"] = [s.__dict__ for s in rewrite.substitutions]
            changes = ", ".join(f"{s.word} -> {s.replacement}" for s in rewrite.substitutions)
            print(f"read as: {text!r} ({changes}; --no-rewrite to turn off)")
        if rewrite.unknown:
            rewrite_info["unknown_words"] = list(rewrite.unknown)
            print(f"words the model has not seen, left as typed: {', '.join(rewrite.unknown)}")
    t0 = time.perf_counter()
    result = gen.generate(
        [text] * args.n,
        [frames] * args.n,
        seed=args.seed,
        steps=args.steps,
        guidance=args.guidance,
        sampler=args.sampler,
        precision=args.precision,
    )
    elapsed = time.perf_counter() - t0
    info = {
        "backbone": gen.backbone.kind,
        "checkpoint_sha256": getattr(gen.backbone, "checkpoint_sha256", None),
        "adapter": args.adapter,
        "generation_seconds": round(elapsed, 4),
    } | rewrite_info
    out = Path(args.out).expanduser()
    write_generation(out, args.prompt, result, info, gif=not args.no_gif)
    print(
        f"{args.n} candidate(s) of {frames} frames in {elapsed:.2f} s "
        f"({gen.backbone.kind}, {result.options.sampler} {result.options.steps} steps) -> {out}"
    )
    return 0


def add_commands(sub) -> None:
    """Register `generate` on the top-level subparsers."""
    p = sub.add_parser("generate", help="generate candidate motions for a prompt")
    p.add_argument("prompt", help="what the motion should show, e.g. 'a person jumps twice'")
    p.add_argument("--backbone", help="mdm, mld or lcm: shipped weights (default mld)")
    p.add_argument("--model", help="a backbone checkpoint instead of the shipped weights")
    p.add_argument("--adapter", help="a LoRA adapter file from `easytune-engine finetune --lora`")
    p.add_argument("--n", type=int, default=4, help=f"candidates (1..{MAX_N}, default 4)")
    p.add_argument(
        "--frames", type=int, help=f"length in frames at 20 fps (default {DEFAULT_FRAMES})"
    )
    p.add_argument("--seconds", type=float, help="length in seconds (instead of --frames)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, help="sampling steps (default: the backbone's)")
    p.add_argument("--guidance", type=float, help="guidance scale (default: the backbone's)")
    p.add_argument("--sampler", help="ddpm, ddim or lcm (default: the backbone's)")
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="the network's precision (default fp32): bf16 was up to 1.9x faster on an AMD EPYC "
        "and 1.6x slower on an Intel Xeon; time both with benchmarks/backbone_speed.py",
    )
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--no-gif", action="store_true", help="skip the preview GIF")
    p.add_argument(
        "--no-rewrite",
        action="store_true",
        help="give the model the prompt as typed (default: words it has never seen are mapped "
        "onto corpus words first: typos, and synonyms when the word model is installed)",
    )
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.set_defaults(func=run)
