"""Benchmark: building the built-in corpus, end to end and per stage.

    python benchmarks/corpus_build.py [--clips 8000] [--workers 2] [--out FILE.json]

Builds into a temporary directory (deleted afterwards), times the whole build and, on one core,
each stage of making a clip (program + synthesis, feature extraction, recovery check, captions).
Prints a table and writes JSON naming the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from easytune_engine.data.corpus.build import CorpusConfig, build_corpus
from easytune_engine.data.corpus.captions import caption_program
from easytune_engine.data.corpus.synth import sample_body, sample_program, synthesize
from easytune_engine.motion.features import features_to_joints, joints_to_features
from machine import machine


def stage_timings(n: int = 300) -> dict[str, float]:
    """Milliseconds per clip for each stage, single process."""
    totals = dict.fromkeys(("program_and_synthesis", "features", "recovery", "captions"), 0.0)
    for i in range(n):
        rng = np.random.default_rng([123, i])
        t0 = time.perf_counter()
        program = sample_program(rng)
        body, _ = sample_body(rng)
        joints = synthesize(program, body, rng)
        t1 = time.perf_counter()
        features = joints_to_features(joints)
        t2 = time.perf_counter()
        features_to_joints(features)
        t3 = time.perf_counter()
        caption_program(program, rng, 4)
        t4 = time.perf_counter()
        for key, dt in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            totals[key] += dt
    return {k: 1000 * v / n for k, v in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--out", default="benchmarks/results/corpus_build.json")
    args = parser.parse_args()

    stages = stage_timings()
    tmp = Path(tempfile.mkdtemp(prefix="corpus-bench-"))
    try:
        started = time.perf_counter()
        info = build_corpus(tmp / "corpus", CorpusConfig(clips=args.clips), workers=args.workers)
        wall = time.perf_counter() - started
        size = sum(f.stat().st_size for f in (tmp / "corpus").rglob("*") if f.is_file())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    result = {
        "machine": machine(),
        "clips": args.clips,
        "workers": args.workers,
        "build_seconds": round(wall, 2),
        "clips_per_second": round(args.clips / wall, 1),
        "disk_mb": round(size / 2**20, 1),
        "captions": info["captions"],
        "roundtrip_max_error_m": info["roundtrip_max_error_m"],
        "stage_ms_per_clip": {k: round(v, 3) for k, v in stages.items()},
    }
    print(f"machine: {result['machine']['cpu']} ({result['machine']['cores']} cores)")
    print(f"{'clips':>8} {'workers':>8} {'seconds':>9} {'clips/s':>9} {'disk MB':>9}")
    print(
        f"{args.clips:>8} {args.workers:>8} {result['build_seconds']:>9.1f} "
        f"{result['clips_per_second']:>9.1f} {result['disk_mb']:>9.1f}"
    )
    print("per clip, one core (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
