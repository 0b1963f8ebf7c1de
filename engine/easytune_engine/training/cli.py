"""`easytune-engine train --backbone mdm|mld|lcm [--data builtin|PATH] [--preset NAME]`.

    easytune-engine train --backbone mld --preset default --out runs/mld
    easytune-engine train --backbone lcm --teacher runs/mld/model.safetensors --out runs/lcm
    easytune-engine train --backbone mdm --preset large --device cuda --workers 6
    easytune-engine train --backbone mdm --preset refine --init runs/mdm-large/model.safetensors
    easytune-engine train --backbone mld --preset refine --init mld --steps denoiser=0 --out A
    easytune-engine train --backbone mld --preset refine --init mld --steps decoder=0 --out B
    python -m easytune_engine.training.merge A B --out runs/mld-refine   # = one run of both
    easytune-engine train --backbone lcm --preset refine --init lcm \
        --teacher runs/mld-refine/model.safetensors

Runs are resumable: run the same command again after an interruption. Heavy imports wait until
the command runs.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def _data_root(data: str) -> Path:
    from easytune_engine.data.corpus.build import ensure_corpus

    if data == "builtin":
        return ensure_corpus()
    root = Path(data).expanduser()
    if not root.is_dir():
        raise ValueError(f"--data {data}: no such directory (or pass 'builtin')")
    return root


def _per_stage(pairs: list[str], flag: str, cast: type, minimum: float = 1) -> dict:
    """["vae=3000", "denoiser=5000"] -> {"vae": 3000, "denoiser": 5000}; values >= minimum."""
    out = {}
    for pair in pairs:
        stage, sep, value = pair.partition("=")
        try:
            if not sep:
                raise ValueError
            out[stage] = cast(value)
        except ValueError:
            raise ValueError(f"{flag} {pair!r}: expected STAGE={cast.__name__}") from None
        if not out[stage] >= minimum:
            raise ValueError(f"{flag} {pair!r}: must be >= {minimum:g}")
    return out


def run(args: argparse.Namespace) -> int:
    import torch

    from easytune_engine.models.io import check_backbone_name
    from easytune_engine.paths import data_home
    from easytune_engine.training.backbones import train_backbone
    from easytune_engine.training.presets import get_preset

    check_backbone_name(args.backbone)
    get_preset(args.backbone, args.preset)
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    steps = _per_stage(args.steps, "--steps", int, minimum=0)  # 0 skips a stage (refine only)
    minutes = _per_stage(args.fit_minutes, "--fit-minutes", float, minimum=1e-3)
    budget = {k: 60.0 * v for k, v in minutes.items()}
    lr = _per_stage(args.lr, "--lr", float, minimum=1e-12)
    if args.workers < 0:
        raise ValueError(f"--workers must be >= 0, got {args.workers}")
    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SystemExit(f"--device {args.device}: no CUDA device here (use --device cpu)")
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    elif args.device != "cpu":
        raise ValueError(f"--device {args.device!r}: expected cpu, cuda or cuda:N")
    root = _data_root(args.data)
    out = Path(args.out) if args.out else data_home() / "runs" / f"{args.backbone}-{args.preset}"
    on_eval = None
    if args.eval_samples > 0:
        from easytune_engine.eval.backbone import periodic_evaluator

        on_eval = periodic_evaluator(root, samples=args.eval_samples, seed=args.seed)
    command = "easytune-engine " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    path = train_backbone(
        args.backbone,
        args.preset,
        root,
        out,
        seed=args.seed,
        teacher=args.teacher,
        progress=not args.quiet,
        on_eval=on_eval,
        command=command,
        device=args.device,
        workers=args.workers,
        steps=steps,
        time_budget_s=budget,
        device_data=args.device_data,
        init=args.init,
        lr=lr,
    )
    print(f"model -> {path}")
    return 0


def add_commands(sub) -> None:
    """Register `train` on the top-level subparsers."""
    p = sub.add_parser("train", help="train a text-to-motion backbone (resumable)")
    p.add_argument("--backbone", required=True, help="mdm, mld or lcm")
    p.add_argument(
        "--preset",
        default="default",
        help="tiny (tests), default (the CPU budget), large (a GPU), frames (mld, lcm: large on a "
        "VAE with one latent per 4 frames) or refine (continues --init: mdm with the "
        "root-trajectory term; mld: the VAE decoder, encoder frozen, then the denoiser)",
    )
    p.add_argument("--data", default="builtin", help="'builtin' or a HumanML3D-format directory")
    p.add_argument("--out", help="run directory (default: $EASYTUNE_HOME/runs/BACKBONE-PRESET)")
    p.add_argument(
        "--init",
        help="mdm, or --preset refine: start from this checkpoint (a path or a shipped name)",
    )
    p.add_argument("--teacher", default="mld", help="lcm only: MLD teacher (default: shipped)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument(
        "--eval-samples",
        type=int,
        default=0,
        help="judge this many validation-split prompts at each evaluation (0 = none; the test "
        "split is kept for the final table)",
    )
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes drawing batches (a GPU needs several; 0 = draw in the training process)",
    )
    p.add_argument(
        "--device-data",
        action="store_true",
        help="hold the training split on --device and draw the batches there (the same batches "
        "as the default path; for a GPU, about 1.6 GB for the built-in corpus)",
    )
    p.add_argument(
        "--steps",
        nargs="*",
        default=[],
        metavar="STAGE=N",
        help="override the preset's steps of a stage (mdm, vae, denoiser, lcm)",
    )
    p.add_argument(
        "--fit-minutes",
        nargs="*",
        default=[],
        metavar="STAGE=MIN",
        help="shorten a stage to the steps that fit this many minutes (measured on its first "
        "steps); the steps it ran are recorded in the model's manifest",
    )
    p.add_argument(
        "--lr",
        nargs="*",
        default=[],
        metavar="STAGE=LR",
        help="override the preset's peak learning rate of a stage (e.g. a later refine round at "
        "a lower rate); recorded in the model's manifest",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
