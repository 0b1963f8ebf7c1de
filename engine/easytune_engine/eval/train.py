"""Train the T2M-style evaluator on a corpus's train split.

    python -m easytune_engine.eval.train --corpus DIR --out evaluator.safetensors \
        [--preset default|tiny] [--minutes 40] [--epochs N] [--log train.log]

Own seed (1234, never the reward model's) and own data order: each epoch is a permutation of the
train samples from this seed, each item a random caption and a random T2M-style crop (a multiple
of 4 frames). AdamW; the best validation R@1 (batch-of-32 protocol) is what gets saved.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from easytune_engine.data.humanml3d import HumanML3DDataset, HumanML3DSplit, collate, load_split
from easytune_engine.eval.evaluator import (
    Evaluator,
    EvaluatorConfig,
    evaluator_stats,
    margin_loss,
    save_evaluator,
)
from easytune_engine.eval.metrics import r_precision
from easytune_engine.eval.vectorizer import build_vocabulary

PRESETS: dict[str, EvaluatorConfig] = {
    "default": EvaluatorConfig(),
    "tiny": EvaluatorConfig(
        word_dim=32, text_hidden=32, motion_conv=48, motion_hidden=32, embed_dim=64, dropout=0.1
    ),
}


@dataclass(frozen=True)
class TrainConfig:
    """How the evaluator is trained; saved with the weights."""

    seed: int = 1234  # the evaluator's own seed (data order, init, crops)
    batch_size: int = 64  # T2M: 32
    lr: float = 3e-4  # AdamW, cosine-decayed to 5% over the run
    weight_decay: float = 1e-4
    epochs: int = 60  # upper bound; `minutes` usually ends the run first
    minutes: float = 40.0  # wall-clock budget for the optimisation loop
    eval_every: int = 2  # epochs between validation R@1 checks
    threads: int = 1  # torch CPU threads
    grad_clip: float = 1.0


def _log(path: Path | None, msg: str) -> None:
    line = f"{time.strftime('%H:%M:%S')} {msg}"
    print(line, file=sys.stderr, flush=True)
    if path is not None:
        with open(path, "a") as f:
            f.write(line + "\n")


@torch.no_grad()
def embed_split(
    model: Evaluator, split: HumanML3DSplit, seed: int, batch_size: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """(text, motion) embeddings of one draw per sample (random caption and crop from `seed`)."""
    was_training = model.training
    model.eval()
    ds = HumanML3DDataset(split, seed=seed, mean=model.mean.numpy(), std=model.std.numpy())
    texts, motions = [], []
    for s in range(0, len(ds), batch_size):
        b = collate([ds[i] for i in range(s, min(s + batch_size, len(ds)))])
        texts.append(model.text(model.vocab.batch(b.tokens)))
        motions.append(model.motion(b.features, b.lengths))
    model.train(was_training)
    return torch.cat(texts).numpy(), torch.cat(motions).numpy()


def val_r1(model: Evaluator, split: HumanML3DSplit, seed: int) -> float:
    t, m = embed_split(model, split, seed)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(t))
    group = min(32, len(t))  # a tiny corpus's val split can hold fewer than 32 samples
    return float(r_precision(t[order], m[order], top_k=1, group=group)[0])


def train_evaluator(
    corpus: Path,
    out: Path,
    model_cfg: EvaluatorConfig,
    cfg: TrainConfig = TrainConfig(),
    log: Path | None = None,
    preset: str = "default",
) -> dict:
    """Train, save the best-validation weights to `out` (fp16), return a summary dict."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    started = time.perf_counter()
    train = load_split(corpus, "train")
    val = load_split(corpus, "val")
    vocab = build_vocabulary(
        (c.tokens for s in train for c in s.captions), hash_buckets=model_cfg.hash_buckets
    )
    mean, std = evaluator_stats(train.mean, train.std, model_cfg.root_contact_std_divisor)
    model = Evaluator(model_cfg, vocab, mean, std)
    params = sum(p.numel() for p in model.parameters())
    _log(
        log,
        f"train {len(train)} samples, val {len(val)}, vocab {len(vocab.words)}, "
        f"{params / 1e6:.2f} M parameters, config {dataclasses.asdict(model_cfg)}",
    )
    ds = HumanML3DDataset(train, seed=cfg.seed, mean=mean, std=std)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = len(ds) // cfg.batch_size
    budget_s = cfg.minutes * 60.0
    best, best_epoch, step = -1.0, -1, 0
    history = []
    loop_start = time.perf_counter()

    def lr_at(frac: float) -> float:
        return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))

    for epoch in range(cfg.epochs):
        ds.set_epoch(epoch)
        model.train()
        order = rng.permutation(len(ds))
        tot = {"pos": 0.0, "neg": 0.0}
        for i in range(steps_per_epoch):
            frac = max(
                (time.perf_counter() - loop_start) / budget_s, step / (cfg.epochs * steps_per_epoch)
            )
            for g in opt.param_groups:
                g["lr"] = lr_at(frac)
            idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            b = collate([ds[int(j)] for j in idx])
            text = model.text(vocab.batch(b.tokens))
            motion = model.motion(b.features, b.lengths)
            same = torch.tensor([[a == c for c in b.texts] for a in b.texts])
            same |= torch.eye(len(b), dtype=torch.bool)
            pos, neg = margin_loss(text, motion, model_cfg.margin, same)
            opt.zero_grad(set_to_none=True)
            (pos + neg).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
            tot["pos"] += pos.item()
            tot["neg"] += neg.item()
        elapsed = time.perf_counter() - loop_start
        done = elapsed >= budget_s or epoch == cfg.epochs - 1
        msg = (
            f"epoch {epoch + 1} step {step} pos {tot['pos'] / steps_per_epoch:.3f} "
            f"neg {tot['neg'] / steps_per_epoch:.3f} lr {opt.param_groups[0]['lr']:.2e} "
            f"{elapsed / 60:.1f} min"
        )
        if (epoch + 1) % cfg.eval_every == 0 or done:
            r1 = val_r1(model, val, seed=cfg.seed + 1)
            history.append({"epoch": epoch + 1, "val_R@1": r1, "minutes": elapsed / 60})
            msg += f" val R@1 {r1:.3f}"
            if r1 > best:
                best, best_epoch = r1, epoch + 1
                summary = {
                    "preset": preset,
                    "train_config": dataclasses.asdict(cfg),
                    "corpus": _corpus_record(corpus),
                    "best_val_R@1": best,
                    "best_epoch": best_epoch,
                    "train_minutes": round(elapsed / 60, 2),
                }
                save_evaluator(out, model, summary)
                msg += " (saved)"
        _log(log, msg)
        if done:
            break
    total = time.perf_counter() - started
    _log(log, f"done in {total / 60:.1f} min; best val R@1 {best:.3f} at epoch {best_epoch}")
    return {
        "best_val_R@1": best,
        "best_epoch": best_epoch,
        "minutes": total / 60,
        "history": history,
        "steps": step,
    }


def _corpus_record(root: Path) -> dict:
    """Which corpus (and which Mean/Std) the evaluator was trained on."""
    info_path = Path(root) / "corpus.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    return {
        "name": info.get("name", "humanml3d"),
        "version": info.get("version"),
        "config": info.get("config"),
        "stats": "Mean.npy/Std.npy of the corpus (train split), root and foot-contact std / 5",
    }


def write_manifest(checkpoint: Path, manifest: Path, metrics: dict, command: str) -> dict:
    """The JSON record shipped next to the weights: config, hashes, corpus, command, metrics."""
    from easytune_engine.checkpoint import load_checkpoint
    from easytune_engine.eval.evaluator import CHECKPOINT_KIND
    from easytune_engine.manifest import build_manifest, save_manifest

    ckpt = load_checkpoint(checkpoint, CHECKPOINT_KIND)
    record = build_manifest(
        checkpoint,
        kind=CHECKPOINT_KIND,
        payload_sha256=ckpt.sha256,
        config=ckpt.config,
        parameters=sum(t.numel() for k, t in ckpt.state.items() if not k.startswith("norm.")),
        reproduce=command,
        metrics=metrics,
        fields={
            "dtype": "float16 weights, float32 Mean/Std",
            "vocabulary_size": len(ckpt.extra.get("vocab", [])),
            "training": {k: v for k, v in ckpt.extra.items() if k != "vocab"},
        },
    )
    save_manifest(manifest, record)
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", required=True, help="HumanML3D-format directory (train/val splits)")
    p.add_argument("--out", required=True, help="checkpoint path (.safetensors)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default")
    p.add_argument("--minutes", type=float, default=TrainConfig.minutes)
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    p.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    p.add_argument("--threads", type=int, default=TrainConfig.threads)
    p.add_argument("--log", help="append progress lines to this file")
    a = p.parse_args(argv)
    cfg = TrainConfig(
        epochs=a.epochs, minutes=a.minutes, batch_size=a.batch_size, threads=a.threads
    )
    result = train_evaluator(
        Path(a.corpus),
        Path(a.out),
        PRESETS[a.preset],
        cfg,
        log=Path(a.log) if a.log else None,
        preset=a.preset,
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
