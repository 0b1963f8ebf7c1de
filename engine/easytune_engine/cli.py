"""`easytune-engine`: the engine's command line.

easytune-engine demo                      build the built-in corpus (cached) and preview it
easytune-engine data build [--out DIR] [--clips N] [--seed S] [--workers W]
easytune-engine data info [DIR] [--json] [--sample N]
easytune-engine data preview [DIR] [--ids ID ...] [--n N] [--out FILE.gif]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _progress_bar(desc: str):
    from tqdm import tqdm

    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=desc, unit="clip", file=sys.stderr)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def _corpus_config(args: argparse.Namespace):
    from .data.corpus.build import CorpusConfig

    return CorpusConfig(clips=args.clips, seed=args.seed)


def _resolve_corpus(path: str | None) -> Path:
    from .data.corpus.build import default_corpus_dir

    root = Path(path) if path else default_corpus_dir()
    if not (root / "corpus.json").is_file():
        raise SystemExit(
            f"error: no built corpus at {root}; run `easytune-engine data build` "
            "(or pass the directory of one)"
        )
    return root


def cmd_data_build(args: argparse.Namespace) -> int:
    from .data.corpus.build import build_corpus, default_corpus_dir

    config = _corpus_config(args)
    out = Path(args.out) if args.out else default_corpus_dir(config)
    info = build_corpus(
        out, config, workers=args.workers, progress=_progress_bar("building corpus")
    )
    print(f"built {info['clips']} clips in {info['build_seconds']:.1f} s -> {out}")
    return 0


def _info_with_quality(root: Path, sample: int) -> dict:
    from .data.corpus.build import read_info, write_info
    from .data.corpus.quality import corpus_quality

    info = read_info(root)
    if info.get("quality_sample", 0) < sample:
        info.update(corpus_quality(root, sample=sample))
        write_info(root, info)
    return info


INFO_ROWS = (
    ("clips", "clips", "{:d}"),
    ("action_types", "action types", "{:d}"),
    ("compositions", "clips with 2-3 actions", "{:d}"),
    ("captions", "captions", "{:d}"),
    ("seconds_mean", "mean clip length (s)", "{:.2f}"),
    ("build_seconds", "build time (s)", "{:.1f}"),
    ("roundtrip_max_error_m", "joints->features->joints max error (m)", "{:.2e}"),
    ("ik_max_error_m", "FK(IK(joints)) max error (m)", "{:.2e}"),
    ("min_height_m", "lowest joint above floor (m)", "{:.4f}"),
    ("foot_slide_max_m_s", "planted-foot slide, max (m/s)", "{:.3f}"),
    ("bone_length_spread_max_m", "bone length spread in a clip (m)", "{:.2e}"),
    ("joint_speed_max_m_s", "fastest joint (m/s)", "{:.2f}"),
    ("oracle_accept_rate", "oracle accepts own program", "{:.1%}"),
    ("oracle_reject_rate", "oracle rejects a wrong program", "{:.1%}"),
)


def cmd_data_info(args: argparse.Namespace) -> int:
    root = _resolve_corpus(args.dir)
    info = _info_with_quality(root, args.sample)
    if args.json:
        print(json.dumps(info))
        return 0
    print(f"corpus {root}")
    for key, label, fmt in INFO_ROWS:
        if key in info:
            print(f"  {label:42s} {fmt.format(info[key])}")
    print(f"  {'splits':42s} {info['splits']}")
    return 0


def _preview(root: Path, ids: Sequence[str] | None, n: int, out: Path, seed: int = 0) -> Path:
    from .motion.render import render_gif

    all_ids = (root / "test.txt").read_text().split()
    if ids:
        missing = [i for i in ids if not (root / "new_joints" / f"{i}.npy").is_file()]
        if missing:
            raise SystemExit(f"error: no clip {missing[0]!r} in {root}")
        chosen = list(ids)
    else:
        rng = np.random.default_rng(seed)
        chosen = [
            all_ids[i] for i in rng.choice(len(all_ids), size=min(n, len(all_ids)), replace=False)
        ]
    clips = [np.load(root / "new_joints" / f"{cid}.npy") for cid in chosen]
    titles = [
        (root / "texts" / f"{cid}.txt").read_text().splitlines()[0].split("#")[0] for cid in chosen
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    render_gif(out, clips, titles=titles)
    for cid, title in zip(chosen, titles, strict=True):
        print(f"  {cid}: {title}")
    return out


def cmd_data_preview(args: argparse.Namespace) -> int:
    root = _resolve_corpus(args.dir)
    out = _preview(root, args.ids, args.n, Path(args.out))
    print(f"preview -> {out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .data.corpus.build import build_corpus, default_corpus_dir, read_info

    config = _corpus_config(args)
    root = default_corpus_dir(config)
    if not (root / "corpus.json").is_file():
        print(f"building the built-in corpus ({config.clips} clips) into {root} ...")
        build_corpus(root, config, progress=_progress_bar("building corpus"))
    read_info(root)
    args.dir, args.json = str(root), False
    cmd_data_info(args)
    out = Path(args.out) / "corpus_preview.gif"
    print("rendering a preview of test clips:")
    _preview(root, None, 4, out)
    print(f"preview -> {out}")
    from .models.io import shipped_path

    if args.model == "mld" and not shipped_path("mld").is_file():
        print(
            "no shipped MLD weights: skipping generation (train them with `easytune-engine train`)"
        )
        return 0
    if args.corpus_only:
        return 0
    from .demo import DemoConfig, run_loop

    config = DemoConfig(
        model=args.model,
        artist_prompts=args.prompts,
        eval_prompts=args.eval_prompts,
        spl_steps=args.spl_steps,
        finetune_budget=args.budget,
        threads=args.threads,
    )
    run_loop(root, Path(args.out), config)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="easytune-engine", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def corpus_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--clips", type=int, default=8000, help="number of clips (default 8000)")
        p.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")

    demo = sub.add_parser(
        "demo",
        help="the whole loop: corpus, engine server, oracle rankings, SPL, EasyTune, before/after",
    )
    corpus_options(demo)
    demo.add_argument(
        "--out", default="easytune-demo", help="folder for the preview (default ./easytune-demo)"
    )
    demo.add_argument("--sample", type=int, default=300, help="clips used for the quality figures")
    demo.add_argument("--model", default="mld", help="backbone to serve (shipped name or path)")
    demo.add_argument("--prompts", type=int, default=6, help="prompts the oracle ranks")
    demo.add_argument("--eval-prompts", type=int, default=32, help="held-out prompts judged")
    demo.add_argument("--spl-steps", type=int, default=40, help="SPL refinement steps")
    demo.add_argument("--budget", type=int, default=24, help="fine-tuning trajectories")
    demo.add_argument("--threads", type=int, default=2, help="the engine's torch threads")
    demo.add_argument(
        "--corpus-only", action="store_true", help="stop after the corpus summary and preview"
    )
    demo.set_defaults(func=cmd_demo)

    data = sub.add_parser("data", help="the built-in text-motion corpus").add_subparsers(
        dest="data_command", required=True
    )
    build = data.add_parser("build", help="synthesise the corpus in HumanML3D format")
    build.add_argument("--out", help="output directory (default: the user data cache)")
    corpus_options(build)
    build.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    build.set_defaults(func=cmd_data_build)

    info = data.add_parser("info", help="counts and quality figures of a built corpus")
    info.add_argument("dir", nargs="?", help="corpus directory (default: the cached build)")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.add_argument("--sample", type=int, default=300, help="clips used for the quality figures")
    info.set_defaults(func=cmd_data_info)

    preview = data.add_parser("preview", help="render clips side by side as an animated GIF")
    preview.add_argument("dir", nargs="?", help="corpus directory (default: the cached build)")
    preview.add_argument("--ids", nargs="*", help="clip ids (default: random test clips)")
    preview.add_argument("--n", type=int, default=4, help="how many random clips (default 4)")
    preview.add_argument("--out", default="corpus_preview.gif", help="GIF path")
    preview.set_defaults(func=cmd_data_preview)

    # Subsystems add their own commands below, one line each.
    __import__("easytune_engine.eval.cli", fromlist=["add_commands"]).add_commands(sub)
    __import__("easytune_engine.reward.cli", fromlist=["add_commands"]).add_commands(sub)
    __import__("easytune_engine.training.cli", fromlist=["add_commands"]).add_commands(sub)
    __import__("easytune_engine.generate", fromlist=["add_commands"]).add_commands(sub)
    __import__("easytune_engine.finetune.cli", fromlist=["add_commands"]).add_commands(sub)
    __import__("easytune_engine.server.cli", fromlist=["add_commands"]).add_commands(sub)
    __import__("easytune_engine.server.keys_cli", fromlist=["add_commands"]).add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:  # bad input: say what is wrong, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
