"""`easytune-engine reward ...`: train, refine (SPL, rankings) and evaluate the retrieval reward.

easytune-engine reward train  [--data builtin|PATH] [--preset tiny|default] [--steps N] [--out FILE]
easytune-engine reward refine --spl [--rankings DB] [--from FILE] [--out FILE] [--steps N]
easytune-engine reward eval   [--model FILE] [--data builtin|PATH] [--t 0 500 ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

DEFAULT_TS = (0, 250, 500, 750)


def _logger(path: str | None):
    fh = open(path, "a", buffering=1) if path else None

    def log(line: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        if fh is not None:
            fh.write(f"{stamp} {line}\n")
        else:
            print(f"{stamp} {line}", file=sys.stderr)

    return log


def write_manifest(weights: Path, command: str, extra_metrics: dict | None = None) -> Path:
    """`<name>.manifest.json` beside a reward checkpoint: config, hash, corpus, command, metrics."""
    from ..manifest import build_manifest, manifest_path, save_manifest
    from .model import load_reward_model

    model = load_reward_model(weights)
    extra = dict(model.checkpoint_extra)
    manifest = build_manifest(
        weights,
        kind="reward",
        payload_sha256=model.checkpoint_sha256,
        config=asdict(model.config),
        parameters=sum(p.numel() for p in model.parameters()),
        reproduce=command,
        metrics=extra.get("metrics"),
        fields={
            "name": weights.stem,
            "corpus": extra.get("corpus"),
            "train": extra.get("train"),
            "train_seconds": extra.get("train_seconds"),
            "threads": extra.get("threads"),
        },
    )
    return save_manifest(manifest_path(weights), manifest | (extra_metrics or {}))


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from ..data.humanml3d import load_split
    from .evaluate import evaluate_retrieval, format_table
    from .model import PRESETS, RewardModel
    from .train import TrainConfig, corpus_version, resolve_data, train_reward

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.preset not in PRESETS:
        raise ValueError(f"unknown preset {args.preset!r}; valid: {', '.join(PRESETS)}")
    root = resolve_data(args.data)
    train = load_split(root, "train")
    val = load_split(root, "val")
    test = load_split(root, "test")
    config = PRESETS[args.preset]
    tc = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        eval_every=args.eval_every,
        warmup=min(300, max(1, args.steps // 10)),
    )
    torch.manual_seed(args.seed)
    model = RewardModel(config, mean=train.mean, std=train.std)
    log = _logger(args.log)
    log(f"train reward preset={args.preset} steps={tc.steps} data={root} out={args.out}")
    out = Path(args.out)
    extra = {"corpus": corpus_version(root), "train": tc.__dict__, "preset": args.preset}

    def checkpoint(step: int, rec: dict) -> None:  # partial weights at every evaluation
        model.save(out.with_suffix(".partial.safetensors"), extra | {"step": step, "val": rec})

    start = time.time()
    train_reward(
        model, train, tc, val_split=val, log=log, progress=not args.quiet, on_eval=checkpoint
    )
    seconds = time.time() - start
    group = min(32, len(test))
    results = evaluate_retrieval(
        model, test, ts=DEFAULT_TS, repeats=args.eval_repeats, group_size=group
    )
    table = format_table(results, f"text-to-motion retrieval, test split, groups of {group}")
    log(table.replace("\n", " | "))
    metrics = {f"t{t}": row for t, row in results.items()}
    extra |= {
        "metrics": metrics,
        "train_seconds": round(seconds, 1),
        "threads": torch.get_num_threads(),
    }
    digest = model.save(out, extra, dtype=torch.float16 if args.fp16 else None)
    partial = out.with_suffix(".partial.safetensors")
    if partial.exists():
        partial.unlink()
    command = (
        f"easytune-engine reward train --data {args.data} --preset {args.preset} "
        f"--steps {args.steps} --batch-size {args.batch_size} --seed {args.seed} "
        f"--threads {args.threads}{' --fp16' if args.fp16 else ''} --out {args.out}"
    )
    manifest = write_manifest(out, command)
    print(table)
    print(f"trained in {seconds / 60:.1f} min -> {out} (sha256 {digest[:12]}), {manifest.name}")
    return 0


def cmd_refine(args: argparse.Namespace) -> int:
    import torch

    from ..data.humanml3d import load_split
    from .model import load_reward_model
    from .rankings import read_preference_pairs
    from .spl import SPL_WEIGHT
    from .train import TrainConfig, resolve_data, train_reward

    if not args.spl and not args.rankings:
        raise ValueError("refine needs --spl and/or --rankings DB")
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_reward_model(args.from_)
    pairs = read_preference_pairs(args.rankings) if args.rankings else None
    if args.rankings and not pairs:
        raise ValueError(f"{args.rankings}: the rankings store holds no preference pairs")
    root = resolve_data(args.data)
    train = load_split(root, "train")
    tc = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup=min(50, args.steps),
        dup_warmup=0,
        spl_weight=SPL_WEIGHT if args.spl else 0.0,
        rank_weight=args.rank_weight if pairs else 0.0,
        eval_every=0,
        seed=args.seed,
    )
    log = _logger(args.log)
    history = train_reward(model, train, tc, pairs=pairs, log=log, progress=not args.quiet)
    extra = dict(getattr(model, "checkpoint_extra", {}))
    extra.pop("vocabulary", None)
    extra["refine"] = {
        "from": str(args.from_ or "shipped"),
        "spl": bool(args.spl),
        "rankings": str(args.rankings) if args.rankings else None,
        "pairs": len(pairs or ()),
        "train": tc.__dict__,
        "last": history[-1] if history else None,
    }
    extra.pop("metrics", None)  # no longer this model's numbers
    digest = model.save(args.out, extra)
    print(f"refined {tc.steps} steps -> {args.out} (sha256 {digest[:12]})")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import torch

    from ..data.humanml3d import load_split
    from .evaluate import evaluate_retrieval, format_table
    from .model import load_reward_model
    from .train import resolve_data

    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_reward_model(args.model)
    root = resolve_data(args.data)
    split = load_split(root, args.split)
    group = min(32, len(split))  # the protocol's 32; fewer only for a tiny split
    results = evaluate_retrieval(
        model, split, ts=args.t, repeats=args.repeats, group_size=group, seed=args.groups_seed
    )
    if args.json:
        out = {
            "model": str(args.model or "shipped"),
            "split": args.split,
            "group_size": group,
            "repeats": args.repeats,
            "results": {str(t): r for t, r in results.items()},
        }
        print(json.dumps(out))
    else:
        print(
            format_table(
                results, f"text-to-motion retrieval, {args.split} split, groups of {group}"
            )
        )
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `reward train|refine|eval` on the top-level subparsers."""
    reward = sub.add_parser("reward", help="the retrieval reward model (train, refine, eval)")
    rsub = reward.add_subparsers(dest="reward_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data", default="builtin", help="'builtin' (default) or a HumanML3D folder"
        )
        p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
        p.add_argument("--seed", type=int, default=0)

    t = rsub.add_parser("train", help="train the retrieval reward (InfoNCE, noise-aware)")
    common(t)
    t.add_argument("--preset", default="default", help="tiny | default")
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--eval-every", type=int, default=500)
    t.add_argument("--eval-repeats", type=int, default=20, help="test repetitions at the end")
    t.add_argument("--out", default="reward.safetensors")
    t.add_argument("--fp16", action="store_true", help="store the weights in float16")
    t.add_argument("--log", help="append progress lines to this file")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    r = rsub.add_parser("refine", help="refine with SPL and/or stored artist rankings")
    common(r)
    r.add_argument("--spl", action="store_true", help="add the SPL loss (w = 1e-2)")
    r.add_argument("--rankings", help="rankings store (SQLite) to learn preference pairs from")
    r.add_argument("--rank-weight", type=float, default=1.0)
    r.add_argument("--from", dest="from_", help="checkpoint to start from (default: shipped)")
    r.add_argument("--out", default="reward_refined.safetensors")
    r.add_argument("--steps", type=int, default=500)
    r.add_argument("--batch-size", type=int, default=64)
    r.add_argument("--lr", type=float, default=5e-5)
    r.add_argument("--log", help="append progress lines to this file")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_refine)

    e = rsub.add_parser("eval", help="R@1/2/3/5/10, batch-of-32 protocol, clean and noised")
    common(e)
    e.add_argument("--model", help="checkpoint (default: the shipped weights)")
    e.add_argument("--split", default="test")
    e.add_argument("--t", type=int, nargs="+", default=list(DEFAULT_TS), help="diffusion steps")
    e.add_argument("--repeats", type=int, default=20)
    e.add_argument("--groups-seed", type=int, default=1234, help="seed of the random groups")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=cmd_eval)
