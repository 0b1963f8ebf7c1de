"""Does a rewriting rule change what the models do? A paired oracle test on the prompts it changes.

    EASYTUNE_HOME=/tmp/ethome python benchmarks/rewrite_paired.py --backbone mld \
        [--on subject_slots,slot_typos] [--base FIELDS] [--tag NAME] [--samples 256] \
        [--seeds 0,1,2,3]

Needs the pinned word model. The held-out paraphrases of test programs (with and without typos,
the sets of `backbone_quality.py` and `prompt_rewrite.py`, same seed) are rewritten twice: with
the default `RewriterConfig` (with the `--base` fields set to True) and with the `--on` fields
set to True as well. Only prompts whose
rewritten text differs can change a motion, so only those are generated, with both texts, the
same seeds and the same program; the oracle's verdicts are paired per prompt and seed (a paired
bootstrap interval). Prints a table; writes benchmarks/results/rewrite_paired_<backbone>.json
(rewrite_paired_<backbone>_<tag>.json with `--tag`), with every word change and every flip
(a prompt and seed that passed with one text only), since the flips cluster in a few prompts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from backbone_quality import paraphrase_sets
from easytune_engine.data.corpus.build import default_corpus_dir
from easytune_engine.eval.backbone import TestPrompt
from easytune_engine.models.pipeline import MotionGenerator
from easytune_engine.text.minilm import load_minilm
from easytune_engine.text.rewrite import PromptRewriter, RewriterConfig
from machine import machine
from oracle_failures import _generate, _programs, paired_diff_ci


def changed_prompts(
    before: PromptRewriter, after: PromptRewriter, prompts: list[TestPrompt]
) -> tuple[list[TestPrompt], list[TestPrompt], Counter]:
    """The prompts the two rewriters read differently: (before's texts, after's, word changes
    counted as "word: before's reading -> after's")."""
    a_out, b_out, words = [], [], Counter()
    for p in prompts:
        a, b = before(p.text), after(p.text)
        if a.text == b.text:
            continue
        a_out.append(TestPrompt(a.text, (), p.length, p.program_id))
        b_out.append(TestPrompt(b.text, (), p.length, p.program_id))
        got_a = {s.word: s.replacement for s in a.substitutions}
        got_b = {s.word: s.replacement for s in b.substitutions}
        for w in set(got_a) | set(got_b):
            if got_a.get(w) != got_b.get(w):
                words[f"{w}: {got_a.get(w)} -> {got_b.get(w)}"] += 1
    return a_out, b_out, words


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backbone", default="mld")
    ap.add_argument("--on", default="subject_slots,slot_typos", help="RewriterConfig fields")
    ap.add_argument("--base", default="", help="RewriterConfig fields on in both runs")
    ap.add_argument("--tag", default="", help="suffix of the results file")
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0, help="of the paraphrase sets")
    ap.add_argument("--seeds", default="0,1,2,3", help="generation seeds")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--corpus", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    corpus = Path(args.corpus) if args.corpus else default_corpus_dir()
    on = [f for f in args.on.split(",") if f]
    base = [f for f in args.base.split(",") if f]
    fields = {f.name for f in dataclasses.fields(RewriterConfig) if f.type in (bool, "bool")}
    if unknown := [f for f in on + base if f not in fields]:
        raise SystemExit(f"no boolean RewriterConfig field {unknown}; fields: {sorted(fields)}")
    model = load_minilm()
    base_config = dataclasses.replace(RewriterConfig(), **dict.fromkeys(base, True))
    default = PromptRewriter(model, base_config)
    other = PromptRewriter(model, dataclasses.replace(base_config, **dict.fromkeys(on, True)))
    gen = MotionGenerator.load(args.backbone)
    seeds = [int(s) for s in args.seeds.split(",")]
    sets = paraphrase_sets(corpus, args.samples, args.seed)
    doc: dict = {
        "benchmark": "rewrite_paired",
        "machine": machine(),
        "backbone": args.backbone,
        "on": on,
        "base": base,
        "samples": args.samples,
        "seeds": seeds,
        "sets": {},
    }
    for name in ("paraphrase", "paraphrase+typos"):
        t0 = time.time()
        without, with_rules, words = changed_prompts(default, other, sets[name])
        programs = _programs(corpus, with_rules)
        a: list[bool] = []  # rules off (the default)
        b: list[bool] = []  # rules on
        flips: list[dict] = []  # the discordant pairs: which texts passed with which rules
        for seed in seeds if with_rules else []:
            off = [bool(v.accepted) for _, v in _generate(gen, corpus, without, programs, seed)]
            on_ = [bool(v.accepted) for _, v in _generate(gen, corpus, with_rules, programs, seed)]
            a, b = a + off, b + on_
            flips += [
                {"seed": seed, "off": p.text, "on": q.text, "passed": "on" if y else "off"}
                for p, q, x, y in zip(without, with_rules, off, on_, strict=True)
                if x != y
            ]
        diff, lo, hi = paired_diff_ci(a, b)
        share = len(with_rules) / len(sets[name])
        doc["sets"][name] = {
            "prompts": len(sets[name]),
            "changed": len(with_rules),
            "pairs": len(a),
            "off": float(np.mean(a)) if a else None,
            "on": float(np.mean(b)) if b else None,
            "change_on_changed": diff,
            "ci95": [lo, hi],
            "change_on_whole_set": diff * share,
            "ci95_whole_set": [lo * share, hi * share],
            "only_off": int(sum(x and not y for x, y in zip(a, b, strict=True))),
            "only_on": int(sum(y and not x for x, y in zip(a, b, strict=True))),
            "word_changes": dict(words.most_common(20)),
            "flips": flips,
            "seconds": round(time.time() - t0, 1),
        }
        brief = {k: v for k, v in doc["sets"][name].items() if k not in ("word_changes", "flips")}
        print(name, brief, flush=True)
    fname = f"rewrite_paired_{args.backbone}{'_' + args.tag if args.tag else ''}.json"
    out = Path(__file__).parent / "results" / fname
    out.write_text(json.dumps(doc, indent=1))
    print(
        f"\n| {args.backbone}: {', '.join(on)} off -> on "
        "| changed | pairs | off | on | change | 95% CI |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in doc["sets"].items():
        if not r["pairs"]:
            print(f"| {name} | 0 / {r['prompts']} | 0 | – | – | – | – |")
            continue
        lo, hi = r["ci95"]
        print(
            f"| {name} | {r['changed']} / {r['prompts']} | {r['pairs']} | {r['off']:.3f} | "
            f"{r['on']:.3f} | {r['change_on_changed']:+.3f} | [{lo:+.3f}, {hi:+.3f}] |"
        )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
