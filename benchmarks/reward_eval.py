"""Reward model benchmark: retrieval R@k (clean and noised), SPL before/after, ranking pairs.

    EASYTUNE_HOME=/tmp/ethome python benchmarks/reward_eval.py --model reward.safetensors

1. R@1/2/3/5/10 of the starting model on the test split (batch-of-32 protocol, 20 repetitions,
   mean ± 95% CI) at t = 0, 250, 500, 750 of the scaled-linear schedule (t = 500 is step 25 of a
   50-step DDIM schedule).
2. SPL: refine for --steps with InfoNCE + 1e-2 · L_SPL; and, as a control, the same run without
   L_SPL (continued InfoNCE at the refine learning rate). Same groups, same seeds.
3. Artist rankings: a simulated artist who, among clips of one prompt, prefers the larger movement
   (the corpus program's `amplitude`). Training-split clips of the same action (same kind and
   parameters, so one caption fits them all) are drawn 4 at a time as "candidates"; the artist ranks
   the 3 largest and rejects the smallest. Rankings are written with `add_clip`/`write_ranking`
   into a SQLite store, read back with `read_preference_pairs`, and the model is refined with
   `--spl --rankings`. Held-out: the same procedure on test-split clips; reported as the number of
   held-out pairs the reward orders correctly before and after.
Prints tables and writes benchmarks/results/reward_eval.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from easytune_engine.data.humanml3d import load_split
from easytune_engine.reward.evaluate import evaluate_retrieval, format_table
from easytune_engine.reward.model import load_reward_model
from easytune_engine.reward.rankings import add_clip, read_preference_pairs, write_ranking
from easytune_engine.reward.spl import SPL_WEIGHT
from easytune_engine.reward.train import TrainConfig, pair_order_counts, resolve_data, train_reward

TS = (0, 250, 500, 750)


def action_groups(root: Path, split: str) -> dict[str, list[tuple[str, float]]]:
    """Single-segment clips of `split` grouped by action (kind + parameters): (id, amplitude)."""
    groups: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for cid in (root / f"{split}.txt").read_text().split():
        program = json.loads((root / "programs" / f"{cid}.json").read_text())
        if len(program["segments"]) != 1:
            continue
        seg = dict(program["segments"][0])
        amp = float(seg.pop("amplitude", 1.0))
        seg.pop("start"), seg.pop("end")
        groups[json.dumps(seg, sort_keys=True)].append((cid, amp))
    return groups


def simulate_rankings(
    root: Path,
    split: str,
    db: Path,
    n_rankings: int,
    seed: int,
    keep: Callable[[str], bool] = lambda group: True,
) -> int:
    """Write amplitude-preference rankings of `split` clips into `db`; returns rankings written.

    keep(group key) selects the action groups the artist ranks (default: all of them).
    """
    groups = action_groups(root, split)
    keys = sorted(k for k, v in groups.items() if len(v) >= 4 and keep(k))
    rng = np.random.default_rng(seed)
    added: set[str] = set()
    written = 0
    for r in range(n_rankings):
        members = groups[keys[r % len(keys)]]
        pick = [members[i] for i in rng.choice(len(members), size=4, replace=False)]
        if len({amp for _, amp in pick}) < 4:  # the artist cannot tell equal movements apart
            continue
        pick.sort(key=lambda m: -m[1])  # larger movement first
        lines = (root / "texts" / f"{pick[0][0]}.txt").read_text().splitlines()
        whole = [ln.split("#")[0] for ln in lines if ln.endswith("#0.0#0.0")]
        prompt = whole[int(rng.integers(len(whole)))]
        ids = []
        for cid, _ in pick:
            clip_key = f"{cid}:{prompt}"  # a clip is stored once per prompt it was ranked for
            if clip_key not in added:
                feats = np.load(root / "new_joint_vecs" / f"{cid}.npy")[:196]
                add_clip(db, clip_key, prompt, feats)
                added.add(clip_key)
            ids.append(clip_key)
        write_ranking(db, prompt, ids[:3], rejected=ids[3:])
        written += 1
    return written


def refine(model_path: Path, train, config: TrainConfig, pairs=None):
    model = load_reward_model(model_path)
    start = time.time()
    train_reward(model, train, config, pairs=pairs)
    return model, time.time() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="starting reward checkpoint")
    ap.add_argument("--data", default="builtin")
    ap.add_argument("--steps", type=int, default=300, help="refinement steps")
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--rankings", type=int, default=400, help="simulated training rankings")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", default="/tmp/reward_eval", help="folder for stores and checkpoints")
    ap.add_argument("--out", default="benchmarks/results/reward_eval.json")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # progress shows up when piped to a file
    torch.set_num_threads(args.threads)
    root = resolve_data(args.data)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    train, test = load_split(root, "train"), load_split(root, "test")
    report: dict = {
        "model": args.model,
        "steps": args.steps,
        "lr": args.lr,
        "repeats": args.repeats,
    }

    base = load_reward_model(args.model)
    res_base = evaluate_retrieval(base, test, ts=TS, repeats=args.repeats)
    print(format_table(res_base, "starting model, test split"))
    report["base"] = res_base

    common = dict(
        steps=args.steps, lr=args.lr, warmup=min(50, args.steps), dup_warmup=0, eval_every=0
    )
    runs = {
        "spl": TrainConfig(spl_weight=SPL_WEIGHT, **common),
        "control_no_spl": TrainConfig(spl_weight=0.0, **common),
    }
    for name, cfg in runs.items():
        model, secs = refine(Path(args.model), train, cfg)
        model.save(work / f"{name}.safetensors")
        res = evaluate_retrieval(model, test, ts=TS, repeats=args.repeats)
        print(format_table(res, f"after refine: {name} ({args.steps} steps, {secs:.0f} s)"))
        report[name] = res | {"seconds": secs, "config": asdict(cfg)}

    # Artist rankings (simulated amplitude preference).
    train_db, test_db = work / "rankings_train.sqlite", work / "rankings_test.sqlite"
    for db in (train_db, test_db):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    n_train = simulate_rankings(root, "train", train_db, args.rankings, seed=1)
    n_test = simulate_rankings(root, "test", test_db, args.rankings // 2, seed=2)
    train_pairs, test_pairs = read_preference_pairs(train_db), read_preference_pairs(test_db)
    before = pair_order_counts(base, test_pairs)
    before_train = pair_order_counts(base, train_pairs)
    cfg = TrainConfig(spl_weight=SPL_WEIGHT, rank_weight=1.0, **common)
    model, secs = refine(Path(args.model), train, cfg, pairs=train_pairs)
    model.save(work / "rankings.safetensors")
    after = pair_order_counts(model, test_pairs)
    after_train = pair_order_counts(model, train_pairs)
    res_rank = evaluate_retrieval(model, test, ts=(0, 500), repeats=args.repeats)
    print(
        f"\nsimulated artist (prefers larger movement): {n_train} train rankings "
        f"({len(train_pairs)} pairs), {n_test} held-out rankings ({len(test_pairs)} pairs)"
    )
    print(
        f"held-out pairs ordered correctly: before {before[0]}/{before[1]}, "
        f"after {after[0]}/{after[1]}"
    )
    print(
        f"training pairs ordered correctly: before {before_train[0]}/{before_train[1]}, "
        f"after {after_train[0]}/{after_train[1]}"
    )
    print(format_table(res_rank, "after refine with rankings + SPL"))
    report["rankings"] = {
        "train_rankings": n_train,
        "train_pairs": len(train_pairs),
        "heldout_rankings": n_test,
        "heldout_pairs": len(test_pairs),
        "heldout_correct_before": before[0],
        "heldout_correct_after": after[0],
        "train_correct_before": before_train[0],
        "train_correct_after": after_train[0],
        "retrieval_after": res_rank,
        "seconds": secs,
        "config": asdict(cfg),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
