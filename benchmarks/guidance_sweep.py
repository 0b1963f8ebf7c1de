"""Guidance scale of each shipped backbone, chosen on the validation split (never on test).

    EASYTUNE_HOME=/tmp/ethome python benchmarks/guidance_sweep.py [--samples 256]

For every shipped backbone at its default sampler and steps, generates for `--samples` prompts of
whole *val* clips at several guidance scales (LCM-style: the guidance-scale embedding w it was
distilled over, 5-15) and judges them with the independent evaluator and the oracle (FID against
the real val split). Writes benchmarks/results/guidance_sweep.json and prints a table per model.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from easytune_engine.data.corpus.build import default_corpus_dir
from easytune_engine.eval.backbone import evaluate_backbone
from easytune_engine.eval.cli import default_evaluator
from easytune_engine.eval.evaluator import load_evaluator
from easytune_engine.models.pipeline import MotionGenerator
from machine import machine

SCALES = {"mdm": (1.5, 2.5, 3.5, 5.0), "mld": (3.0, 5.0, 7.5, 10.0), "lcm": (5.0, 7.5, 10.0, 12.5)}
KEYS = ("R@1", "FID", "MM-Dist", "Diversity", "oracle_accuracy")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backbones", nargs="*", default=list(SCALES))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "guidance_sweep.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    corpus = default_corpus_dir()
    evaluator = load_evaluator(default_evaluator())
    report: dict = {"machine": machine() | {"threads": args.threads}, "split": "val"}
    report |= {"samples": args.samples, "repeats": args.repeats, "rows": {}}
    for name in args.backbones:
        gen = MotionGenerator.load(name)
        default = gen.options().guidance
        rows = report["rows"][name] = {"default_guidance": default, "scales": {}}
        print(f"\n{name} (default guidance {default})")
        print("| guidance | " + " | ".join(KEYS) + " | s |")
        print("|---" * (len(KEYS) + 2) + "|")
        for g in SCALES[name]:
            t0 = time.time()
            rep = evaluate_backbone(
                gen,
                corpus,
                evaluator,
                samples=args.samples,
                repeats=args.repeats,
                mm_texts=0,
                split="val",
                guidance=g,
            ).as_json()
            row = {k: rep.get(k) for k in KEYS} | {f"{k}_ci": rep.get(f"{k}_ci") for k in KEYS}
            row["seconds"] = round(time.time() - t0, 1)
            rows["scales"][str(g)] = row
            cells = [f"{row[k]:.3f}±{row[k + '_ci']:.3f}" for k in KEYS]
            print(f"| {g} | " + " | ".join(cells) + f" | {row['seconds']} |", flush=True)
            Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
