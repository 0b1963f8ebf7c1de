"""`easytune-engine finetune --backbone mld --method easytune --steps N [--resume] --out DIR`.

Fine-tunes a backbone against the shipped reward on prompts of the built-in corpus (or a
HumanML3D directory), prints progress (reward, seconds per update, memory saved for backward),
and ends with a before/after table from the independent evaluator. `--steps` is the number of
sampled trajectories (EasyTune takes one optimizer update per trained denoising step of each).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from easytune_engine.finetune.distributed import World


def run(args: argparse.Namespace) -> int:
    from easytune_engine.finetune.distributed import init_from_env, leave

    world = init_from_env()  # under torchrun: one process per rank, the batch split between them
    try:
        return _run(args, world)
    finally:
        leave(world)


def _run(args: argparse.Namespace, world: World) -> int:
    import torch

    from easytune_engine.data.corpus.build import ensure_corpus
    from easytune_engine.eval.backbone import evaluate_backbone
    from easytune_engine.eval.cli import default_evaluator
    from easytune_engine.eval.evaluator import load_evaluator
    from easytune_engine.finetune.methods import MethodConfig
    from easytune_engine.finetune.run import run_finetune
    from easytune_engine.finetune.trainer import FinetuneConfig, Finetuner, PromptPool, default_lr
    from easytune_engine.models.pipeline import MotionGenerator
    from easytune_engine.reward.model import load_reward_model

    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    method = MethodConfig(
        name=args.method,
        window=args.window,
        k=args.k,
        reward=args.reward,
        reward_scale=1.0,
        anchor_weight=args.anchor,
    )
    config = FinetuneConfig(
        method=method,
        trajectories=args.steps,
        batch_size=args.batch,
        lr=default_lr(args.lora) if args.lr is None else args.lr,
        steps=args.sampling_steps,
        guidance=args.guidance,
        lora_rank=args.lora,
        seed=args.seed,
    )
    corpus = ensure_corpus() if args.data == "builtin" else Path(args.data).expanduser()
    if args.data != "builtin" and not corpus.is_dir():
        raise ValueError(f"--data {args.data}: no such directory (or pass 'builtin')")
    gen = MotionGenerator.load(args.model or args.backbone)
    reward = load_reward_model(args.reward_model)
    tuner = Finetuner(gen, reward, config, PromptPool.from_corpus(corpus, "train"))
    evaluator = load_evaluator(default_evaluator()) if args.eval_samples and world.is_main else None

    def score() -> dict:
        rep = evaluate_backbone(
            gen,
            corpus,
            evaluator,
            samples=args.eval_samples,
            repeats=5,
            mm_texts=0,
            seed=args.seed,
        )
        return rep.as_json()

    before = score() if evaluator is not None and not args.resume else None
    out = Path(args.out).expanduser()
    result = run_finetune(
        tuner,
        out,
        resume=args.resume,
        progress=(lambda line: print(line, file=sys.stderr, flush=True)) if world.is_main else None,
        command="easytune-engine " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )
    if not world.is_main:
        return 0
    print(
        f"{result.stopped}: {result.trajectories} trajectories, {result.updates} updates -> "
        f"{result.model_path}"
    )
    if evaluator is not None:
        after = score()
        keys = ("R@1", "R@3", "FID", "MM-Dist", "Diversity", "oracle_accuracy")
        print("| model | " + " | ".join(keys) + " |")
        print("|" + "---|" * (len(keys) + 1))
        for name, rep in (("before", before), ("after", after)):
            if rep is None:
                continue
            cells = [
                "-" if rep.get(k) is None else f"{rep[k]:.3f}±{rep.get(k + '_ci') or 0:.3f}"
                for k in keys
            ]
            print(f"| {name} | " + " | ".join(cells) + " |")
    return 0 if result.stopped in ("done", "interrupted") else 1


def run_bench(args: argparse.Namespace) -> int:
    """`bench finetune`: the method comparison (finetune/compare.py)."""
    import json

    import torch

    from easytune_engine.data.corpus.build import ensure_corpus
    from easytune_engine.eval.cli import default_evaluator
    from easytune_engine.eval.evaluator import load_evaluator
    from easytune_engine.finetune.compare import CompareConfig, compare, quick, table
    from easytune_engine.reward.model import load_reward_model

    torch.set_num_threads(max(1, args.threads))
    c = CompareConfig(model=args.model, wall_clock_s=args.wall_clock)
    c = quick(c) if args.quick else c
    log = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else print
    report = compare(
        c, ensure_corpus(), load_evaluator(default_evaluator()), load_reward_model(), log
    )
    print(table(report), file=sys.stderr if args.json else sys.stdout)
    if report["equal_wall_clock"]:
        print(table(report, "equal_wall_clock"), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(report))
    return 0


def add_commands(sub) -> None:
    """Register `finetune` and `bench finetune` on the top-level subparsers."""
    from easytune_engine.finetune.methods import METHODS

    p = sub.add_parser("finetune", help="reward fine-tuning (EasyTune and the baselines)")
    p.add_argument("--backbone", default="mld", help="mdm, mld or lcm (shipped weights)")
    p.add_argument("--model", help="a backbone checkpoint instead of the shipped weights")
    p.add_argument("--method", default="easytune", choices=METHODS)
    p.add_argument("--steps", type=int, default=50, help="sampled trajectories (default 50)")
    p.add_argument("--batch", type=int, default=8, help="prompts per trajectory (default 8)")
    p.add_argument(
        "--lr", type=float, help="learning rate (default 1e-5; 3e-4 with --lora, as measured)"
    )
    p.add_argument("--window", type=int, default=10, help="easytune: trained last steps (0 = all)")
    p.add_argument("--k", type=int, default=10, help="draft: last K steps; drtune: trained steps")
    p.add_argument("--reward", default="x0", choices=("x0", "noisy"))
    p.add_argument(
        "--anchor",
        type=float,
        default=0.0,
        help="easytune: weight of the pull of each step's x̂0 toward the base model's (0 = off)",
    )
    p.add_argument("--reward-model", help="reward checkpoint (default: the shipped one)")
    p.add_argument("--sampling-steps", type=int, help="denoising steps (default: the backbone's)")
    p.add_argument("--guidance", type=float, help="guidance during fine-tuning")
    p.add_argument("--lora", type=int, default=0, help="train rank-R LoRA adapters (0 = full)")
    p.add_argument("--data", default="builtin", help="prompts: 'builtin' or a HumanML3D dir")
    p.add_argument("--eval-samples", type=int, default=0, help="before/after table (0 = skip)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=run)

    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(
        dest="bench_command", required=True
    )
    b = bench.add_parser("finetune", help="compare every fine-tuning method (the paper's table)")
    b.add_argument("--quick", action="store_true", help="the ≤ 10 minute version")
    b.add_argument("--model", default="mld", help="backbone (default: the shipped MLD-style)")
    b.add_argument("--wall-clock", type=float, default=0.0, help="equal-time view, s per method")
    b.add_argument("--json", action="store_true", help="print one JSON object (table to stderr)")
    b.add_argument("--threads", type=int, default=2)
    b.set_defaults(func=run_bench)
