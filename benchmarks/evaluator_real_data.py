"""Benchmark: the evaluator's real-data row, as the papers report it, plus FID sanity checks.

    python benchmarks/evaluator_real_data.py [--corpus DIR] [--evaluator FILE] [--repeats 20]
                                             [--out benchmarks/results/evaluator_real_data.json]

Row: corpus test motions with their own captions (R@1/2/3, MM-Dist, Diversity, oracle accuracy),
FID against the train split. Then FID of the test split against the train split next to FID of
degraded copies of the test split: frames shuffled in time within each clip, Gaussian noise of
0.5 and 1.0 corpus-Std added, and another random crop/caption draw of the test split itself (the
papers' real-vs-real 0.002), with a test-sized part of train against the rest of train as the
control for FID's finite-sample bias; and R@1 with the captions shuffled across motions (chance:
1/32).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from easytune_engine.data.corpus.build import default_corpus_dir
from easytune_engine.data.humanml3d import load_split
from easytune_engine.eval import metrics as M
from easytune_engine.eval.cli import WEIGHTS
from easytune_engine.eval.evaluator import load_evaluator
from easytune_engine.eval.judge import draw_real, embed_features, embed_texts, evaluate_real


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", default=None)
    p.add_argument("--evaluator", default=str(WEIGHTS))
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results/evaluator_real_data.json")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    corpus = Path(a.corpus) if a.corpus else default_corpus_dir()
    model = load_evaluator(Path(a.evaluator))
    started = time.perf_counter()
    report = evaluate_real(model, corpus, "test", a.repeats, seed=0)
    row_seconds = time.perf_counter() - started
    print(f"real-data row ({corpus.name}, test split, {a.repeats} repeats, FID vs train):")
    print(report.table())

    rng = np.random.default_rng(1)
    train, test = load_split(corpus, "train"), load_split(corpus, "test")
    train_emb = embed_features(model, draw_real(train, rng)[0])
    ref = M.gaussian(train_emb)
    std = test.std

    def degraded(kind: str, feats: list[np.ndarray], r: np.random.Generator) -> list[np.ndarray]:
        if kind == "time-shuffled frames":
            return [f[r.permutation(len(f))] for f in feats]
        if kind.startswith("noise"):
            sigma = float(kind.split()[1])
            return [f + sigma * std * r.standard_normal(f.shape).astype(np.float32) for f in feats]
        return feats

    kinds = ["test (as is)", "time-shuffled frames", "noise 0.5 Std", "noise 1.0 Std"]
    fids: dict[str, M.Estimate] = {}
    for kind in kinds:
        values = []
        for _ in range(min(a.repeats, 5)):
            feats, _ = draw_real(test, rng)
            emb = embed_features(model, degraded(kind, feats, rng))
            values.append(M.frechet_distance(*M.gaussian(emb), *ref))
        fids[f"FID test vs train, {kind}"] = M.confidence(values)
    draws = [draw_real(test, rng) for _ in range(2)]
    fids["FID test vs test (another draw)"] = M.Estimate(
        M.fid(embed_features(model, draws[0][0]), embed_features(model, draws[1][0])), 0.0, 1
    )
    # Control for the finite-sample bias of FID: a test-sized part of train against the rest.
    values = []
    for _ in range(min(a.repeats, 5)):
        order = rng.permutation(len(train_emb))
        part, rest = train_emb[order[: len(test)]], train_emb[order[len(test) :]]
        values.append(M.fid(part, rest))
    fids["FID train part (test-sized) vs rest of train"] = M.confidence(values)
    t, m = embed_texts(model, draws[0][1]), embed_features(model, draws[0][0])
    shuffled = M.r_precision_repeated(t[rng.permutation(len(t))], m, repeats=a.repeats)[0]

    print("\nFID sanity (evaluator embeddings; smaller = closer to the train distribution):")
    for name, est in fids.items():
        print(f"  {name:48s} {est.mean:8.3f} ± {est.ci:.3f}")
    label = "R@1 with captions shuffled across motions"
    print(f"  {label:48s} {shuffled.mean:8.3f} ± {shuffled.ci:.3f}")

    out = {
        "benchmark": "evaluator_real_data",
        "corpus": str(corpus),
        "evaluator": a.evaluator,
        "row": report.as_json(),
        "fid_checks": {
            k: {"mean": v.mean, "ci": v.ci, "repeats": v.repeats} for k, v in fids.items()
        },
        "r1_shuffled_captions": {"mean": shuffled.mean, "ci": shuffled.ci},
        "row_seconds": round(row_seconds, 1),
        "threads": a.threads,
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"-> {a.out}")


if __name__ == "__main__":
    main()
