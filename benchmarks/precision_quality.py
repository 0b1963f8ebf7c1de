"""Does bfloat16 change what the shipped models generate? fp32 against bf16, paired.

    EASYTUNE_HOME=/tmp/ethome python benchmarks/precision_quality.py [--backbones mdm,mld,lcm] \
        [--samples 512] [--threads 2]

For each backbone, `easytune-engine eval --motions NAME` twice on the same test prompts and
seeds: with `precision="fp32"` and with `precision="bf16"` (the network under bfloat16 autocast,
the sampler in float32; `MotionGenerator.sample`). Reports both rows of the papers' table, the
oracle's verdicts paired per prompt (how many flip, and which way), and how far the bf16 joints
lie from the fp32 ones (metres: per clip the mean over frames and joints, and the largest single
joint distance). Prints a table; writes benchmarks/results/precision_quality.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from easytune_engine.data.corpus.build import default_corpus_dir
from easytune_engine.eval.backbone import evaluate_backbone
from easytune_engine.eval.cli import default_evaluator
from easytune_engine.eval.evaluator import load_evaluator
from easytune_engine.eval.judge import oracle_verdicts
from easytune_engine.eval.motions import read_motions
from easytune_engine.models.pipeline import MotionGenerator
from easytune_engine.motion.features import features_to_joints
from machine import machine

METRICS = ("R@1", "FID", "MM-Dist", "Diversity", "MultiModality", "oracle_accuracy")


def verdicts(folder: Path, corpus: Path) -> dict[str, tuple[bool, np.ndarray]]:
    """Per judged motion id: the oracle's verdict and the joints (T, 22, 3)."""
    judged = [m for m in read_motions(folder, corpus) if m.program and not m.multimodality_only]
    joints = [features_to_joints(m.features) for m in judged]
    ok = oracle_verdicts([(j, m.program) for j, m in zip(joints, judged, strict=True)])
    return {m.id: (v, j) for m, v, j in zip(judged, ok, joints, strict=True)}


def compare(name: str, corpus: Path, evaluator, samples: int, tmp: Path) -> dict:
    gen = MotionGenerator.load(name)
    rows, judged = {}, {}
    for precision in ("fp32", "bf16"):
        t0 = time.perf_counter()
        folder = tmp / f"{name}_{precision}"
        report = evaluate_backbone(
            gen, corpus, evaluator, samples=samples, keep=folder, precision=precision
        ).as_json()
        rows[precision] = {k: report.get(k) for k in METRICS}
        rows[precision] |= {f"{k}_ci": report.get(f"{k}_ci") for k in METRICS}
        rows[precision]["seconds"] = round(time.perf_counter() - t0, 1)
        judged[precision] = verdicts(folder, corpus)
    ids = sorted(judged["fp32"])
    a = np.array([judged["fp32"][i][0] for i in ids])
    b = np.array([judged["bf16"][i][0] for i in ids])
    apart = [np.linalg.norm(judged["fp32"][i][1] - judged["bf16"][i][1], axis=-1) for i in ids]
    dist = [d.mean() for d in apart]  # per clip: the mean over frames and joints
    return {
        "backbone": name,
        "rows": rows,
        "oracle_pairs": len(ids),
        "oracle_only_fp32": int((a & ~b).sum()),
        "oracle_only_bf16": int((~a & b).sum()),
        "joint_distance_m": {
            "median": round(float(np.median(dist)), 4),
            "p95": round(float(np.percentile(dist, 95)), 4),
            "max": round(float(np.max(dist)), 4),
            "largest_joint": round(float(max(d.max() for d in apart)), 4),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backbones", default="mdm,mld,lcm")
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "precision_quality.json")
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    corpus = default_corpus_dir()
    evaluator = load_evaluator(default_evaluator())
    results = []
    with tempfile.TemporaryDirectory(prefix="easytune-precision-") as tmp:
        for name in args.backbones.split(","):
            results.append(compare(name, corpus, evaluator, args.samples, Path(tmp)))
    print(f"{'backbone':8} {'prec':5} {'R@1':>6} {'FID':>6} {'MM-Dist':>7} {'oracle':>6}")
    for r in results:
        for p, row in r["rows"].items():
            print(
                f"{r['backbone']:8} {p:5} {row['R@1']:6.3f} {row['FID']:6.2f} "
                f"{row['MM-Dist']:7.3f} {row['oracle_accuracy']:6.3f}"
            )
        d = r["joint_distance_m"]
        print(
            f"  oracle flips: {r['oracle_only_fp32']} pass in fp32 only, "
            f"{r['oracle_only_bf16']} in bf16 only, of {r['oracle_pairs']}; joints apart: "
            f"median {d['median'] * 100:.2f} cm, p95 {d['p95'] * 100:.2f} cm, "
            f"max {d['max'] * 100:.2f} cm (clip means); "
            f"largest joint {d['largest_joint'] * 100:.1f} cm"
        )
    doc = {
        "benchmark": "precision_quality",
        "samples": args.samples,
        "threads": args.threads,
        "corpus": str(corpus),
        "machine": machine(),
        "results": results,
    }
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
