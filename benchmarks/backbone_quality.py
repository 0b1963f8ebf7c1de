"""Quality of the shipped backbones on the corpus test split, the papers' table with a real row.

    EASYTUNE_HOME=/tmp/ethome python benchmarks/backbone_quality.py [--samples 1024] [--repeats 20]

Rows (all judged by the independent evaluator and the corpus oracle, never the training reward):
- Real motion: test clips vs the train split (the reference every row is read against);
- MDM-style (DDPM 50 steps, guidance 2.5 in x0 space), MLD-style (DDIM 50, guidance 7.5),
  LCM-style with 1, 2 and 4 steps (w = 7.5 baked in);
- paraphrases: for each backbone, held-out wordings of the same test programs (synonyms the
  captions never use, "prior to" clause order) and the same with typos, judged by the oracle
  against the program; chance level = the same model given shuffled captions (another program's).
Prints the tables and writes benchmarks/results/backbone_quality.json (`--backbones mld lcm
--update` remeasures those backbones and keeps the other rows of the file).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import torch

from easytune_engine.data.corpus.build import default_corpus_dir
from easytune_engine.data.corpus.captions import paraphrase_program
from easytune_engine.data.corpus.program import program_from_dict
from easytune_engine.eval.backbone import (
    TestPrompt,
    evaluate_backbone,
    generate_test_set,
    test_prompts,
)
from easytune_engine.eval.cli import default_evaluator
from easytune_engine.eval.evaluator import load_evaluator
from easytune_engine.eval.judge import Report, evaluate_generated, evaluate_real
from easytune_engine.models.pipeline import MotionGenerator
from easytune_engine.text.rewrite_dev import misspell
from machine import machine

ROWS = [  # (label, backbone, sampling overrides)
    ("MDM-style (DDPM 50)", "mdm", {"sampler": "ddpm"}),
    ("MDM-style (DDIM 50)", "mdm", {"sampler": "ddim"}),
    ("MLD-style (DDIM 50)", "mld", {}),
    ("LCM-style 1 step", "lcm", {"steps": 1}),
    ("LCM-style 2 steps", "lcm", {"steps": 2}),
    ("LCM-style 4 steps", "lcm", {"steps": 4}),
]
KEYS = ("R@1", "R@2", "R@3", "FID", "MM-Dist", "Diversity", "MultiModality", "oracle_accuracy")


def paraphrase_sets(corpus: Path, samples: int, seed: int) -> dict[str, list[TestPrompt]]:
    base = test_prompts(corpus, samples, seed + 1)
    rng = np.random.default_rng(seed)
    para, typos = [], []
    for p in base:
        program = program_from_dict(
            json.loads((corpus / "programs" / f"{p.program_id}.json").read_text())
        )
        text = paraphrase_program(program, rng)
        para.append(TestPrompt(text, (), p.length, p.program_id))
        typos.append(TestPrompt(misspell(text, rng), (), p.length, p.program_id))
    perm = np.roll(np.arange(len(base)), 1)  # each prompt paired with another program
    shuffled = [
        TestPrompt(base[int(j)].text, (), p.length, p.program_id)
        for p, j in zip(base, perm, strict=True)
    ]
    return {"paraphrase": para, "paraphrase+typos": typos, "shuffled captions": shuffled}


def row(report: Report) -> dict:
    out = report.as_json()
    return {k: out.get(k) for k in KEYS} | {f"{k}_ci": out.get(f"{k}_ci") for k in KEYS}


def fmt(r: dict) -> str:
    cells = []
    for k in KEYS:
        v = r.get(k)
        cells.append("-" if v is None else f"{v:.3f}±{r.get(f'{k}_ci') or 0:.3f}")
    return " | ".join(cells)


def updated(path: Path, new: dict) -> dict:
    """The results in `path` with the backbones measured in `new` replaced by `new`'s."""
    old = json.loads(path.read_text())
    for key in ("corpus", "samples", "paraphrase_samples", "repeats", "seed"):
        if old[key] != new[key]:
            raise SystemExit(f"--update: {path} has {key} {old[key]!r}, this run {new[key]!r}")
    names = set(new["checkpoints"])
    mine = {label for label, name, _ in ROWS if name in names}
    rows = {k: v for k, v in old["rows"].items() if k not in mine} | new["rows"]
    order = ["Real motion"] + [label for label, _, _ in ROWS]
    out = dict(old) | {k: new[k] for k in ("machine", "threads")}
    out["rows"] = {k: rows[k] for k in order if k in rows}
    out["paraphrase"] = old["paraphrase"] | new["paraphrase"]
    out["checkpoints"] = old["checkpoints"] | new["checkpoints"]
    out["minutes_by_update"] = old.get("minutes_by_update", {}) | {
        ",".join(sorted(names)): new["minutes"]
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=1024)
    ap.add_argument("--paraphrase-samples", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", action="append", default=[], help="NAME=CHECKPOINT override")
    ap.add_argument(
        "--backbones", nargs="+", default=None, help="only these backbones' rows (default: all)"
    )
    ap.add_argument("--corpus", default=None)
    ap.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "backbone_quality.json")
    )
    ap.add_argument(
        "--update",
        action="store_true",
        help="with --backbones: replace only their rows in --out, keeping the others' (which "
        "must have been measured with the same samples, repeats and seed)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    corpus = Path(args.corpus) if args.corpus else default_corpus_dir()
    paths = dict(m.split("=", 1) for m in args.model)
    evaluator = load_evaluator(default_evaluator())
    results: dict = {"rows": {}, "paraphrase": {}}
    t0 = time.time()
    real = evaluate_real(evaluator, corpus, "test", args.repeats, args.seed)
    results["rows"]["Real motion"] = row(real)
    gens = {}
    for label, name, sampling in ROWS:
        if args.backbones is not None and name not in args.backbones:
            continue
        gens.setdefault(name, MotionGenerator.load(paths.get(name, name)))
        t1 = time.time()
        rep = evaluate_backbone(
            gens[name],
            corpus,
            evaluator,
            samples=args.samples,
            repeats=args.repeats,
            seed=args.seed,
            **sampling,
        )
        results["rows"][label] = row(rep) | {"seconds": round(time.time() - t1, 1)}
        print(f"{label}: {fmt(results['rows'][label])}", flush=True)
    sets = (
        paraphrase_sets(corpus, args.paraphrase_samples, args.seed)
        if args.paraphrase_samples
        else {}
    )
    for name, gen in gens.items() if sets else ():
        for set_name, prompts in sets.items():
            with TemporaryDirectory() as tmp:
                generate_test_set(gen, prompts, Path(tmp), seed=args.seed)
                rep = evaluate_generated(evaluator, Path(tmp), corpus, args.repeats, args.seed)
            r = row(rep)
            results["paraphrase"].setdefault(name, {})[set_name] = {
                "oracle_accuracy": r["oracle_accuracy"],
                "oracle_accuracy_ci": r["oracle_accuracy_ci"],
                "R@1": r["R@1"],
                "R@1_ci": r["R@1_ci"],
                "samples": len(prompts),
            }
            print(f"{name} {set_name}: oracle {r['oracle_accuracy']:.3f}", flush=True)
    results["examples"] = {k: [p.text for p in v[:5]] for k, v in sets.items()}
    print("\n| model | " + " | ".join(KEYS) + " |")
    print("|" + "---|" * (len(KEYS) + 1))
    for label, r in results["rows"].items():
        print(f"| {label} | {fmt(r)} |")
    print("\n| backbone | " + " | ".join(sets) + " |")
    print("|" + "---|" * (len(sets) + 1))
    for name, per in results["paraphrase"].items():
        cells = [
            f"{per[s]['oracle_accuracy']:.3f}±{per[s]['oracle_accuracy_ci']:.3f}" for s in sets
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    doc = {
        "benchmark": "backbone_quality",
        "corpus": str(corpus),
        "samples": args.samples,
        "paraphrase_samples": args.paraphrase_samples,
        "repeats": args.repeats,
        "seed": args.seed,
        "threads": args.threads,
        "minutes": round((time.time() - t0) / 60, 1),
        "machine": machine(),
        "checkpoints": {n: getattr(g.backbone, "checkpoint_sha256", None) for n, g in gens.items()},
    } | results
    if args.update:
        doc = updated(Path(args.out), doc)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
