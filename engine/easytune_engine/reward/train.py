"""Training the retrieval reward (InfoNCE, noise-aware) and refining it with SPL and rankings.

    model = RewardModel(PRESETS["default"], mean=split.mean, std=split.std)
    history = train_reward(model, train_split, TrainConfig(steps=6000), val_split=val_split)

Per step (TMR + the noise-aware recipe of methods.md):
1. draw a batch of (motion crop, caption) pairs from the training split;
2. with probability `noise_prob`, noise the motions to a random step t of the forward process,
   t = floor(T · u^noise_power), u ~ U(0, 1) (skewed to low noise; t = 0 otherwise);
3. S = E_T(c) · E_M(x, t)ᵀ (cosines), symmetric InfoNCE at τ = 0.1 with near-duplicate captions
   masked as negatives: identical normalised caption or same sample always; text-embedding cosine
   above 0.8 once `dup_warmup` steps have passed (a fresh text tower scores everything alike);
4. refine only: + spl_weight · L_SPL(S) + rank_weight · KL((1, 0) ‖ P) over artist-ranking pairs.
AdamW, linear warm-up then cosine decay, gradient clipping.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.humanml3d import HumanML3DSplit, sample_batch
from ..text.tokenizer import normalize_text
from .model import RewardModel
from .spl import SIM_THRESHOLD, TAU, TOP_K, infonce_loss, preference_loss, spl_loss


@dataclass(frozen=True)
class TrainConfig:
    """One training or refinement run."""

    steps: int = 6000  # optimizer steps
    batch_size: int = 64
    lr: float = 5e-4  # peak learning rate
    warmup: int = 300  # linear warm-up steps
    min_lr_ratio: float = 0.05  # cosine decays to lr * min_lr_ratio
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    tau: float = TAU  # InfoNCE temperature
    noise_prob: float = 0.5  # share of batches noised by the forward process
    noise_power: float = 2.0  # t = floor(T * u ** noise_power): larger skews to low noise
    dup_threshold: float = SIM_THRESHOLD  # caption near-duplicate threshold (text cosine)
    dup_warmup: int = 1000  # steps before text-similarity masking starts
    spl_weight: float = 0.0  # w of L_SPL (refine: 1e-2)
    spl_top_k: int = TOP_K
    rank_weight: float = 0.0  # weight of the artist-ranking KL (refine with rankings)
    rank_batch: int = 16  # ranking pairs per step
    eval_every: int = 500  # steps between validation evaluations (0 = never)
    eval_repeats: int = 3  # repetitions of the batch-of-32 protocol at each evaluation
    seed: int = 0


def lr_at(step: int, c: TrainConfig) -> float:
    if step < c.warmup:
        return c.lr * (step + 1) / c.warmup
    p = (step - c.warmup) / max(1, c.steps - c.warmup)
    return c.lr * (c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


def sample_steps(
    batch: int, c: TrainConfig, num_train_timesteps: int, rng: np.random.Generator
) -> torch.Tensor:
    """Per-batch noise level: all zeros, or (prob. noise_prob) t = floor(T * u^power) per sample."""
    if rng.random() >= c.noise_prob:
        return torch.zeros(batch, dtype=torch.long)
    u = rng.random(batch)
    return torch.from_numpy((num_train_timesteps * u**c.noise_power).astype(np.int64)).clamp(
        0, num_train_timesteps - 1
    )


def duplicate_mask(
    texts: Sequence[str], ids: Sequence[str], text_emb: torch.Tensor | None, threshold: float
) -> torch.Tensor:
    """(B, B) True where captions i, j are near-duplicates (or the same sample)."""
    norm = [normalize_text(t).rstrip(".!") for t in texts]
    b = len(texts)
    same = torch.tensor(
        [[norm[i] == norm[j] or ids[i] == ids[j] for j in range(b)] for i in range(b)]
    )
    if text_emb is not None:
        same |= (text_emb @ text_emb.T) > threshold
    return same


def train_reward(
    model: RewardModel,
    split: HumanML3DSplit,
    config: TrainConfig,
    *,
    val_split: HumanML3DSplit | None = None,
    pairs: Sequence | None = None,
    log: Callable[[str], None] | None = None,
    progress: bool = False,
    on_eval: Callable[[int, dict], None] | None = None,
) -> list[dict]:
    """Train (or refine) `model` in place; returns the logged history (one dict per log point)."""
    from .evaluate import evaluate_retrieval

    c = config
    if (c.rank_weight > 0) and not pairs:
        raise ValueError("rank_weight > 0 needs ranking pairs (none were given)")
    rng = np.random.default_rng(c.seed)
    torch.manual_seed(c.seed)
    schedule = model.config.noise_schedule()
    nt = model.config.num_train_timesteps
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "emb" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "emb" not in n)]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": c.weight_decay},
            {"params": no_decay, "weight_decay": 0},
        ],
        lr=c.lr,
    )
    stats = model_stats(model)  # normalise with the model's own Mean/Std, not the split's
    history: list[dict] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=c.steps, desc="reward", unit="step")
    start = time.time()
    run: dict[str, float] = {}
    model.train()
    for step in range(c.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, c)
        batch = sample_batch(split, c.batch_size, rng, mean=stats[0], std=stats[1])
        frames = int(batch.lengths.max())
        x0 = batch.features[:, :frames]
        t = sample_steps(len(batch), c, nt, rng)
        x = schedule.add_noise(x0, t, torch.randn_like(x0)) if bool((t > 0).any()) else x0
        m = model.embed_motion(x, t, batch.lengths)
        e = model.embed_text(batch.texts)
        sim = e @ m.T  # (B, B) texts x motions
        dup = duplicate_mask(
            batch.texts, batch.ids, e.detach() if step >= c.dup_warmup else None, c.dup_threshold
        )
        loss_nce = infonce_loss(sim, dup, c.tau)
        loss = loss_nce
        off_diag = dup.float().sum() - len(batch)
        parts = {"loss": loss_nce.item(), "dup": off_diag.item() / (len(batch) * (len(batch) - 1))}
        if c.spl_weight > 0:
            l_spl, mined = spl_loss(sim, c.spl_top_k, c.dup_threshold, c.tau, near_duplicate=dup)
            loss = loss + c.spl_weight * l_spl
            parts["spl"] = l_spl.item()
            parts["spl_active"] = float(mined.active.float().mean())
        if c.rank_weight > 0:
            l_rank = ranking_pairs_loss(model, pairs, c.rank_batch, rng, c.tau)
            loss = loss + c.rank_weight * l_rank
            parts["rank"] = l_rank.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)
        opt.step()
        for k, v in parts.items():
            run[k] = 0.98 * run.get(k, v) + 0.02 * v
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{run['loss']:.3f}")
        last = step == c.steps - 1
        if (step + 1) % 50 == 0 or last:
            rec = {"step": step + 1, "lr": lr_at(step, c), "seconds": time.time() - start}
            rec |= {k: round(v, 5) for k, v in run.items()}
            if val_split is not None and c.eval_every and ((step + 1) % c.eval_every == 0 or last):
                res = evaluate_retrieval(
                    model,
                    val_split,
                    ts=(0, 500),
                    repeats=c.eval_repeats,
                    group_size=min(32, len(val_split)),
                )
                rec["val_R@1"] = round(res[0]["R@1"], 4)
                rec["val_R@1_t500"] = round(res[500]["R@1"], 4)
                if on_eval is not None:
                    on_eval(step + 1, rec)
            history.append(rec)
            if log is not None:
                log(" ".join(f"{k}={v}" for k, v in rec.items()))
    if bar is not None:
        bar.close()
    model.eval()
    return history


def model_stats(model: RewardModel) -> tuple[np.ndarray, np.ndarray]:
    """The model's normalisation Mean/Std as float32 numpy arrays."""
    return model.mean.detach().cpu().float().numpy(), model.std.detach().cpu().float().numpy()


def ranking_pairs_loss(
    model: RewardModel, pairs: Sequence, n: int, rng: np.random.Generator, tau: float = TAU
) -> torch.Tensor:
    """KL((1, 0) ‖ P) on `n` random ranking pairs (raw features, scored clean at t = 0)."""
    idx = rng.integers(len(pairs), size=min(n, len(pairs)))
    chosen = [pairs[int(i)] for i in idx]
    better, lb = _stack([p.better for p in chosen])
    worse, lw = _stack([p.worse for p in chosen])
    texts = [p.text for p in chosen]
    r_b = model.reward(model.normalize(better), 0, texts, lb)
    r_w = model.reward(model.normalize(worse), 0, texts, lw)
    return preference_loss(r_b, r_w, tau)


def _stack(arrays: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad (T_i, 263) arrays to (B, T_max, 263) with their lengths."""
    lengths = torch.tensor([a.shape[0] for a in arrays])
    out = torch.zeros(len(arrays), int(lengths.max()), arrays[0].shape[1])
    for i, a in enumerate(arrays):
        out[i, : a.shape[0]] = torch.from_numpy(np.array(a, dtype=np.float32))
    return out, lengths


@torch.no_grad()
def pair_order_counts(model: RewardModel, pairs: Sequence, chunk: int = 64) -> tuple[int, int]:
    """(correctly ordered, total): pairs where R(better) > R(worse) at t = 0."""
    model.eval()
    correct = 0
    for i in range(0, len(pairs), chunk):
        part = pairs[i : i + chunk]
        better, lb = _stack([p.better for p in part])
        worse, lw = _stack([p.worse for p in part])
        texts = [p.text for p in part]
        r_b = model.reward(model.normalize(better), 0, texts, lb)
        r_w = model.reward(model.normalize(worse), 0, texts, lw)
        correct += int((r_b > r_w).sum())
    return correct, len(pairs)


# ---------------------------------------------------------------------------------------------
# Whole runs (what the CLI calls)


def resolve_data(data: str) -> Path:
    """'builtin' -> the built-in corpus (built first if needed); otherwise a HumanML3D directory."""
    from ..data.corpus.build import ensure_corpus

    if data == "builtin":
        return ensure_corpus()
    root = Path(data).expanduser()
    if not root.is_dir():
        raise ValueError(
            f"--data {data!r}: no such directory (use 'builtin' or a HumanML3D folder)"
        )
    return root


def corpus_version(root) -> dict:
    """Name/version/config of a built-in corpus (from corpus.json), or the folder for other data."""
    import json

    info_path = Path(root) / "corpus.json"
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        return {k: info.get(k) for k in ("name", "version", "config")}
    return {"name": Path(root).name, "version": None, "config": None}
