"""VAE round-trip oracle accuracy: real test clips encoded and decoded by a latent backbone's VAE.

    EASYTUNE_HOME=/tmp/ethome python benchmarks/vae_round_trip.py [CHECKPOINT ...] \\
        [--experiments RUN_DIR ...] [--samples 512] [--out results/vae_round_trip.json]

CHECKPOINT is a shipped name (mld, lcm) or a backbone checkpoint path (default: mld). Every
`vae_stepN.safetensors` of each `--experiments` run directory (written by `vae_experiment.py`) is
judged too, and the run's command, VAE config, training log and step rate are stored with its
curve. The same `--samples` whole test clips (at the generation benchmarks' lengths) are judged
for every row, so rows compare paired: each row's change against the first row carries a paired
bootstrap 95% CI. The metric is `easytune_engine.eval.vae_check` (a ceiling on MLD/LCM's oracle
accuracy); group errors are squared error / variance per feature group (0 = perfect).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import torch

from easytune_engine.data.corpus.build import default_corpus_dir
from easytune_engine.eval.vae_check import load_vae, round_trip_clips, vae_round_trip_report
from machine import machine

GROUPS = ("root_rot_vel", "root_side_vel", "root_fwd_vel", "root_height", "local_positions")
GROUPS += ("rotations", "local_velocities", "contacts", "all")
SHORT = {"root_rot_vel": "yaw", "root_side_vel": "side", "root_fwd_vel": "fwd"}
SHORT |= {"root_height": "height", "local_positions": "pos", "rotations": "rot"}
SHORT |= {"local_velocities": "vel", "contacts": "contact", "all": "all"}


def paired_diff(ids: list[str], ref: set[str], new: set[str], seed: int = 0) -> tuple:
    """mean(new) - mean(ref) over the same clips, and its paired bootstrap 95% interval."""
    x = np.array([(i in new) - (i in ref) for i in ids], dtype=np.float64)
    boot = x[np.random.default_rng(seed).integers(0, x.size, size=(5000, x.size))].mean(1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return float(x.mean()), float(lo), float(hi)


def _steps(path: Path) -> int | None:
    m = re.search(r"vae_step(\d+)\.safetensors$", str(path))
    return int(m.group(1)) if m else None


def _experiment(run: Path) -> dict:
    """What vae_experiment.py recorded about a run (finished or not)."""
    doc = (
        json.loads((run / "experiment.json").read_text())
        if (run / "experiment.json").is_file()
        else {}
    )
    log = doc.get("train_log")
    if log is None and (run / "log.jsonl").is_file():
        log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    log = log or []
    rate = None
    if len(log) >= 2:  # steps per second of training alone (evaluations are timed apart)
        curve = {r["step"]: r for r in doc.get("curve", [])}
        eval_s = sum(r.get("eval_seconds", 0) for s, r in curve.items() if s <= log[-1]["step"])
        span = log[-1]["seconds"] - log[0]["seconds"] - eval_s
        rate = round((log[-1]["step"] - log[0]["step"]) / max(span, 1e-9), 3)
    keep = ("loss", "recon", "kl")
    return {
        "run": str(run),
        "command": doc.get("command"),
        "vae_config": doc.get("vae_config"),
        "stage": doc.get("stage"),
        "init": doc.get("init"),
        "machine": doc.get("machine"),
        "steps_per_second": rate,
        "train_log": [{"step": r["step"]} | {k: r[k] for k in keep if k in r} for r in log],
    }


def print_table(rows: list[dict]) -> None:
    head = "| checkpoint | step | accuracy [Wilson 95%] | vs first [paired 95%] | "
    head += " | ".join(SHORT[g] for g in GROUPS) + " |"
    print(head)
    print("|" + "---|" * (4 + len(GROUPS)))
    for r in rows:
        lo, hi = r["accuracy_ci95"]
        acc = f"{100 * r['accuracy']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"
        d = r.get("vs_first")
        diff = f"{100 * d[0]:+.1f} [{100 * d[1]:+.1f}, {100 * d[2]:+.1f}]" if d else "-"
        errs = " | ".join(f"{r['group_error'][g]:.3f}" for g in GROUPS)
        print(f"| {r['label']} | {r['step'] or '-'} | {acc} | {diff} | {errs} |")


def print_actions(rows: list[dict]) -> None:
    """Segment pass rate per action type for each checkpoint and each run's last snapshot."""
    last: dict[str, dict] = {}
    for r in rows:
        last[r["label"] if r["step"] is not None else r["checkpoint"]] = r
    cols = list(last.values())
    names = [f"{r['label']} {r['step']}" if r["step"] else r["label"] for r in cols]
    print("\n| action | " + " | ".join(names) + " |")
    print("|" + "---|" * (1 + len(cols)))
    kinds = sorted({k for r in cols for k in r["segment_pass_by_action"]})
    for k in kinds:
        cells = [r["segment_pass_by_action"].get(k) for r in cols]
        print(
            f"| {k} | " + " | ".join("-" if c is None else f"{100 * c:.0f}%" for c in cells) + " |"
        )


def compare(rows: list[dict], ids: list[str], pairs: list[str], seed: int) -> list[dict]:
    """Paired changes of run B against run A at the steps both were judged; printed too."""
    out = []
    for pair in pairs:
        a, sep, b = pair.partition(":")
        if not sep:
            raise SystemExit(f"--compare {pair!r}: expected RUN_A:RUN_B")
        by = {(r["label"], r["step"]): set(r["passed_ids"]) for r in rows if r["step"]}
        for step in sorted({s for (lab, s) in by if lab == a and (b, s) in by}):
            d, lo, hi = paired_diff(ids, by[(a, step)], by[(b, step)], seed)
            out.append({"a": a, "b": b, "step": step, "diff": d, "ci95": (lo, hi)})
            print(f"{b} - {a} at step {step}: {100 * d:+.1f} pt [{100 * lo:+.1f}, {100 * hi:+.1f}]")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="*", help="shipped names or checkpoint paths")
    ap.add_argument("--experiments", nargs="*", default=[], help="vae_experiment.py run dirs")
    ap.add_argument(
        "--compare",
        nargs="*",
        default=[],
        metavar="RUN_A:RUN_B",
        help="paired change B - A at every step both runs were judged (run = directory name)",
    )
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "vae_round_trip.json"))
    args = ap.parse_args()
    if not args.checkpoints and not args.experiments:
        args.checkpoints = ["mld"]
    torch.set_num_threads(args.threads)
    corpus = Path(args.corpus) if args.corpus else default_corpus_dir()
    t0 = time.time()
    where = machine()
    clips = round_trip_clips(corpus, args.samples, args.seed)
    todo = [(c, c, None) for c in args.checkpoints]
    for run in map(Path, args.experiments):
        for path in sorted(run.glob("vae_step*.safetensors"), key=_steps):
            todo.append((f"{run.name}", str(path), _steps(path)))
    rows = []
    for label, ckpt, step in todo:
        model = load_vae(ckpt)
        t1 = time.time()
        report = vae_round_trip_report(model, clips=clips)
        row = {"label": label, "checkpoint": ckpt, "step": step}
        row["checkpoint_sha256"] = getattr(model, "checkpoint_sha256", None)
        row["vae_config"] = vars(model.config.vae)
        row |= report | {"seconds": round(time.time() - t1, 1)}
        if rows:
            row["vs_first"] = paired_diff(
                clips[0], set(rows[0]["passed_ids"]), set(row["passed_ids"]), args.seed
            )
        rows.append(row)
    print_table(rows)
    print_actions(rows)
    comparisons = compare(rows, clips[0], args.compare, args.seed)
    doc = {
        "benchmark": "vae_round_trip",
        "corpus": str(corpus),
        "split": "test",
        "samples": len(clips[0]),
        "seed": args.seed,
        "threads": args.threads,
        "machine": where,
        "minutes": round((time.time() - t0) / 60, 2),
        "group_error": "per feature group: sum of squared errors / sum of variances (0 = perfect)",
        "rows": rows,
        "comparisons": comparisons,
        "experiments": [_experiment(Path(r)) for r in args.experiments],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"-> {args.out} ({doc['minutes']} min)")


if __name__ == "__main__":
    main()
