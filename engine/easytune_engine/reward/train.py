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

SPL mining batch: by default pairs are mined in S itself. With `spl_mine_batch` > batch_size
(MotionRFT mines among 256), each step also draws spl_mine_batch − batch_size extra samples from
a separate random stream, embeds the training batch and the extras without gradient (eval mode)
and mines on that larger text x motion matrix; only the mined pairs are embedded again with
gradient, inside `torch.random.fork_rng`. The extra draws, ranking pairs (their own stream too)
and SPL's forward passes leave the training batches and their noise untouched, so a run with
spl_weight = 0 is an exact same-data control. `spl_skip` picks the reading of the skip rule:
"caption" (a top-k motion whose caption is a near-duplicate of the query's: the InfoNCE mask),
"exact" (identical normalised caption or same sample only) or "similarity" (a top-k text–motion
cosine above the threshold).
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
from .spl import (
    SIM_THRESHOLD,
    TAU,
    TOP_K,
    SPLPairs,
    infonce_loss,
    mine_spl_pairs,
    preference_kl,
    preference_loss,
    spl_loss,
)


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
    spl_mine_batch: int = 0  # texts/motions SPL mines among (0: the training batch itself)
    spl_skip: str = "caption"  # skip-rule reading: caption | exact | similarity
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
    on_step: Callable[[int, dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[dict]:
    """Train (or refine) `model` in place; returns the logged history (one dict per log point).

    on_step(step, running_losses) runs after every optimizer step; should_stop() is asked before
    every step and True ends training there (the model keeps the steps taken so far).
    """
    from .evaluate import evaluate_retrieval

    c = config
    if (c.rank_weight > 0) and not pairs:
        raise ValueError("rank_weight > 0 needs ranking pairs (none were given)")
    if c.spl_skip not in SPL_SKIP_RULES:
        raise ValueError(f"spl_skip must be one of {SPL_SKIP_RULES}, got {c.spl_skip!r}")
    if c.spl_mine_batch and c.spl_mine_batch < c.batch_size:
        raise ValueError(
            f"spl_mine_batch ({c.spl_mine_batch}) must be 0 or at least batch_size ({c.batch_size})"
        )
    rng = np.random.default_rng(c.seed)
    mine_rng = np.random.default_rng([c.seed, 1])  # extra SPL mining samples
    mine_gen = torch.Generator().manual_seed(c.seed * 7919 + 1)  # and their noise
    rank_rng = np.random.default_rng([c.seed, 2])  # ranking pairs drawn per step
    spl_pairs_total = 0
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
        if should_stop is not None and should_stop():
            break
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
            if c.spl_mine_batch > len(batch):
                l_spl, mined = spl_loss_mining_batch(
                    model, split, batch, x, t, c, mine_rng, mine_gen, stats, step
                )
            else:
                skip = _skip_mask(batch.texts, batch.ids, e.detach(), c, step)
                l_spl, mined = spl_loss(sim, c.spl_top_k, c.dup_threshold, c.tau, skip)
            loss = loss + c.spl_weight * l_spl
            n_active = int(mined.active.sum())
            spl_pairs_total += n_active
            parts["spl"] = l_spl.item()
            parts["spl_active"] = n_active / len(mined.active)
            parts["spl_pairs"] = float(n_active)
        if c.rank_weight > 0:
            l_rank = ranking_pairs_loss(model, pairs, c.rank_batch, rank_rng, c.tau)
            loss = loss + c.rank_weight * l_rank
            parts["rank"] = l_rank.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)
        opt.step()
        for k, v in parts.items():
            run[k] = 0.98 * run.get(k, v) + 0.02 * v
        if on_step is not None:
            on_step(step + 1, dict(run))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{run['loss']:.3f}")
        last = step == c.steps - 1
        if (step + 1) % 50 == 0 or last:
            rec = {"step": step + 1, "lr": lr_at(step, c), "seconds": time.time() - start}
            rec |= {k: round(v, 5) for k, v in run.items()}
            if c.spl_weight > 0:
                rec["spl_pairs_total"] = spl_pairs_total
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


SPL_SKIP_RULES = ("caption", "exact", "similarity")


def _skip_mask(
    texts: Sequence[str], ids: Sequence[str], text_emb: torch.Tensor, c: TrainConfig, step: int
) -> torch.Tensor | None:
    """The near_duplicate matrix for `mine_spl_pairs` under c.spl_skip (None: similarity rule)."""
    if c.spl_skip == "similarity":
        return None
    use_text = c.spl_skip == "caption" and step >= c.dup_warmup
    return duplicate_mask(texts, ids, text_emb if use_text else None, c.dup_threshold)


def spl_loss_mining_batch(
    model: RewardModel,
    split: HumanML3DSplit,
    batch,
    x: torch.Tensor,
    t: torch.Tensor,
    c: TrainConfig,
    rng: np.random.Generator,
    gen: torch.Generator,
    stats: tuple[np.ndarray, np.ndarray],
    step: int,
) -> tuple[torch.Tensor, SPLPairs]:
    """L_SPL mined among the training batch plus c.spl_mine_batch − len(batch) extra samples.

    Mining embeds everything without gradient in eval mode; the mined pairs (text i, its motion
    x_w, the best retrieved x_l) are embedded again with gradient, under `fork_rng` so dropout
    draws leave the global torch stream (the training noise) as it was. Loss: KL sum over mined
    pairs / number of mined texts (skipped texts count as 0, as in `spl_loss`).
    """
    extra = sample_batch(split, c.spl_mine_batch - len(batch), rng, mean=stats[0], std=stats[1])
    nt = model.config.num_train_timesteps
    t_extra = sample_steps(len(extra), c, nt, rng)
    xe = extra.features[:, : int(extra.lengths.max())]
    if bool((t_extra > 0).any()):
        noise = torch.randn(xe.shape, generator=gen)
        xe = model.config.noise_schedule().add_noise(xe, t_extra, noise)
    frames = max(x.shape[1], xe.shape[1])
    xs = torch.cat([_pad_frames(x.detach(), frames), _pad_frames(xe, frames)])
    ts = torch.cat([t, t_extra])
    lengths = torch.cat([batch.lengths, extra.lengths])
    texts = list(batch.texts) + list(extra.texts)
    ids = list(batch.ids) + list(extra.ids)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        m_all = torch.cat(
            [model.embed_motion(xs[i : i + 128], ts[i : i + 128], lengths[i : i + 128])
             for i in range(0, len(texts), 128)]
        )  # fmt: skip
        e_all = model.embed_text(texts)
    model.train(was_training)
    sim = e_all @ m_all.T
    mined = mine_spl_pairs(
        sim, c.spl_top_k, c.dup_threshold, _skip_mask(texts, ids, e_all, c, step)
    )
    rows = torch.nonzero(mined.active).flatten()
    if rows.numel() == 0:
        return x.new_zeros(()), mined
    cols = torch.cat([mined.winner[rows], mined.loser[rows]])
    with torch.random.fork_rng(devices=[]):
        m = model.embed_motion(xs[cols], ts[cols], lengths[cols])
        e = model.embed_text([texts[int(i)] for i in rows])
    n = rows.numel()
    r_w, r_l = (e * m[:n]).sum(-1), (e * m[n:]).sum(-1)
    return preference_kl(r_w, r_l, 1.0, c.tau).sum() / len(texts), mined


def _pad_frames(x: torch.Tensor, frames: int) -> torch.Tensor:
    """Zero-pad (B, T, D) to (B, frames, D)."""
    return torch.nn.functional.pad(x, (0, 0, 0, frames - x.shape[1]))


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
