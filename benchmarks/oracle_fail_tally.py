"""Which oracle checks a backbone's clips fail most, on the val split (a quick look, not a report).

    EASYTUNE_HOME=/tmp/ethome python benchmarks/oracle_fail_tally.py CHECKPOINT [CHECKPOINT ...] \\
        [--samples 96] [--split val] [--out results/frames_latent/fail_tally.json]

For each checkpoint (a shipped name or a path), `--samples` prompts of whole `--split` clips
(`eval.backbone.test_prompts`, seed 0) are generated at the model's default sampling, 32 at a
time with seed = the batch's first index, judged by the corpus oracle against their programs, and
the failing checks are counted per segment (one action of the program), numbers replaced by N.
`oracle_failures.py` is the full analysis (test split, categories, references, levers); this is
the minute-long version for comparing candidates during development.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

import torch

from easytune_engine.data.corpus.build import default_corpus_dir
from easytune_engine.data.corpus.oracle import judge
from easytune_engine.data.corpus.program import program_from_dict
from easytune_engine.eval.backbone import test_prompts
from easytune_engine.models.io import load_backbone
from easytune_engine.models.pipeline import MotionGenerator
from easytune_engine.motion.features import features_to_joints
from easytune_engine.text.encoder import load_text_encoder
from machine import machine


def tally(
    checkpoint: str, corpus: Path, samples: int, split: str, guidance: float | None = None
) -> dict:
    gen = MotionGenerator(load_backbone(checkpoint), load_text_encoder())
    prompts = test_prompts(corpus, samples, 0, split)
    fails: Counter[str] = Counter()
    passed = 0
    for start in range(0, len(prompts), 32):
        chunk = prompts[start : start + 32]
        out = gen.generate(
            [p.text for p in chunk], [p.length for p in chunk], seed=start, guidance=guidance
        )
        for p, feats in zip(chunk, out.features, strict=True):
            program = json.loads((corpus / "programs" / f"{p.program_id}.json").read_text())
            verdict = judge(features_to_joints(feats), program_from_dict(program).actions)
            passed += verdict.accepted
            for seg in verdict.segments:
                fails.update(re.sub(r"[0-9.]+", "N", check) for check in seg.failed)
    return {
        "clips": len(prompts),
        "passed": passed,
        "guidance": gen.options(None, guidance, None, 0.0).guidance,
        "failed_checks": dict(fails.most_common()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--samples", type=int, default=96)
    ap.add_argument("--split", default="val", choices=("val", "test"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument(
        "--guidance",
        type=float,
        nargs="+",
        default=[None],
        help="guidance scales to try (default: each model's own)",
    )
    ap.add_argument("--out", default=None, help="write the counts here as JSON")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    corpus = Path(args.corpus) if args.corpus else default_corpus_dir()
    rows = {}
    for ckpt in args.checkpoints:
        for w in args.guidance:
            key = ckpt if w is None else f"{ckpt} w={w:g}"
            rows[key] = row = tally(ckpt, corpus, args.samples, args.split, w)
            print(f"\n{key}: {row['passed']} of {row['clips']} clips pass", flush=True)
            print("| segments failing it | check |\n|---|---|")
            for check, n in list(row["failed_checks"].items())[: args.top]:
                print(f"| {n} | {check} |")
    if args.out:
        doc = {"split": args.split, "samples": args.samples, "machine": machine(), "rows": rows}
        Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"-> {args.out}")


if __name__ == "__main__":
    main()
