"""`easytune-engine eval`: judge real or generated motions with the independent evaluator.

    easytune-engine eval --motions DIR [--split test] [--json] [--repeats 20]
                         [--evaluator FILE] [--corpus DIR] [--seed 0]

DIR is either a HumanML3D-format directory (real data: its split is judged, the papers'
"real" row; FID against its train split), a generated-motions directory (`eval/motions.py`;
FID against the real test split of `--corpus`, the built-in corpus by default), or a backbone
(a shipped name mdm|mld|lcm, or a checkpoint file): it generates for --samples test
prompts first. Heavy imports wait until the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "evaluator.safetensors"


def default_evaluator() -> Path:
    if not WEIGHTS.is_file():
        raise ValueError(
            f"no shipped evaluator weights at {WEIGHTS}; train them with "
            "`python -m easytune_engine.eval.train --corpus DIR --out FILE` and pass --evaluator"
        )
    return WEIGHTS


# ---------------------------------------------------------------------------------------------
# Command


def _is_humanml3d(path: Path, split: str) -> bool:
    return (path / "new_joint_vecs").is_dir() and (path / f"{split}.txt").is_file()


def run(args: argparse.Namespace) -> int:
    import torch

    from easytune_engine.data.corpus.build import default_corpus_dir
    from easytune_engine.eval.evaluator import load_evaluator
    from easytune_engine.eval.judge import evaluate_generated, evaluate_real

    if args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
    target = Path(args.motions).expanduser()
    if args.motions in ("mdm", "mld", "lcm") or target.is_file():
        return _run_backbone(args)
    if not target.is_dir():
        raise ValueError(
            f"{target}: no such motions directory or model checkpoint "
            "(or a shipped backbone name: mdm, mld, lcm)"
        )
    model = load_evaluator(Path(args.evaluator) if args.evaluator else default_evaluator())
    torch.set_num_threads(max(1, args.threads))
    if _is_humanml3d(target, args.split):
        report = evaluate_real(model, target, args.split, args.repeats, args.seed)
    elif (target / "motions.json").is_file():
        corpus = Path(args.corpus).expanduser() if args.corpus else default_corpus_dir()
        if not (corpus / "test.txt").is_file():
            raise ValueError(
                f"{corpus}: no real test split for the FID reference; build the corpus "
                "(`easytune-engine data build`) or pass --corpus"
            )
        report = evaluate_generated(model, target, corpus, args.repeats, args.seed)
    else:
        raise ValueError(
            f"{target}: neither a HumanML3D directory (new_joint_vecs/ and {args.split}.txt) nor a "
            "generated-motions directory (missing motions.json)"
        )
    out = report.as_json() | {"evaluator": str(args.evaluator or WEIGHTS)}
    print(report.table(), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(out))
    return 0


def _run_backbone(args: argparse.Namespace) -> int:
    """`--motions mdm|mld|lcm|CHECKPOINT`: generate for test prompts, then judge."""
    import torch

    from easytune_engine.data.corpus.build import default_corpus_dir
    from easytune_engine.eval.backbone import evaluate_backbone
    from easytune_engine.eval.evaluator import load_evaluator
    from easytune_engine.models.pipeline import MotionGenerator

    if args.samples < 32:
        raise ValueError(f"--samples must be >= 32 (one R-Precision group), got {args.samples}")
    torch.set_num_threads(max(1, args.threads))
    corpus = Path(args.corpus).expanduser() if args.corpus else default_corpus_dir()
    evaluator = load_evaluator(Path(args.evaluator) if args.evaluator else default_evaluator())
    generator = MotionGenerator.load(args.motions)
    sampling = {
        k: v
        for k, v in (
            ("steps", args.steps),
            ("guidance", args.guidance),
            ("sampler", args.sampler),
            ("precision", args.precision),
        )
        if v is not None
    }
    report = evaluate_backbone(
        generator,
        corpus,
        evaluator,
        samples=args.samples,
        repeats=args.repeats,
        seed=args.seed,
        mm_texts=args.mm_texts,
        keep=Path(args.keep) if args.keep else None,
        split=args.split,
        **sampling,
    )
    out = report.as_json() | {"evaluator": str(args.evaluator or WEIGHTS)}
    print(report.table(), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(out))
    return 0


def add_commands(sub) -> None:
    """Register `eval` on the top-level subparsers."""
    p = sub.add_parser("eval", help="judge real or generated motions with the evaluator")
    p.add_argument("--motions", required=True, help="HumanML3D dir, generated-motions dir or model")
    p.add_argument(
        "--split",
        default="test",
        help="split judged: of a HumanML3D dir, or the prompts and FID reference when judging a "
        "backbone (default test; choose sampling settings on val)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object (table to stderr)")
    p.add_argument("--repeats", type=int, default=20, help="repetitions for the CIs (default 20)")
    p.add_argument("--evaluator", help="evaluator checkpoint (default: the shipped weights)")
    p.add_argument("--corpus", help="real corpus for FID and program ids (default: built-in)")
    p.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    g = p.add_argument_group("judging a backbone (--motions mdm|mld|lcm|CHECKPOINT)")
    g.add_argument("--samples", type=int, default=1024, help="test prompts (default 1024)")
    g.add_argument("--mm-texts", type=int, default=32, help="prompts for MultiModality (x10)")
    g.add_argument("--steps", type=int, help="sampling steps (default: the backbone's)")
    g.add_argument("--guidance", type=float, help="guidance scale (default: the backbone's)")
    g.add_argument("--sampler", help="ddpm, ddim or lcm (default: the backbone's)")
    g.add_argument(
        "--precision", choices=("fp32", "bf16"), help="the network's precision (default fp32)"
    )
    g.add_argument("--keep", help="keep the generated motions in this directory")
    p.set_defaults(func=run)
