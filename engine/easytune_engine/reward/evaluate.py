"""Text-to-motion retrieval with the batch-of-32 protocol, for clean and noised motion.

Groups of 32 (text, motion) samples, 1 positive and 31 distractors per text; motions ranked by the
reward (cosine) for each text; R@k = share of texts whose own motion ranks in the top k. A rank
counts the motions scoring strictly higher than the positive. Each repetition reshuffles the split
into groups (and draws a caption and crop per sample) from a fixed seed, so two models see the same
groups; metrics are reported as mean ± 1.96·std/√repeats over repetitions (motion.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..data.humanml3d import HumanML3DSplit, collate
from .model import RewardModel

KS = (1, 2, 3, 5, 10)


def ranks_in_groups(sim: torch.Tensor) -> torch.Tensor:
    """(G, n, n) text x motion similarities -> (G, n) rank of each positive (0 = best)."""
    pos = sim.diagonal(dim1=1, dim2=2)  # (G, n)
    return (sim > pos[..., None]).sum(-1)


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and 95% half-width 1.96·std/√n over repetitions."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(1.96 * v.std() / np.sqrt(len(v)))


@torch.no_grad()
def embed_split_items(
    model: RewardModel, items, t: int, generator: torch.Generator, chunk: int = 128
) -> torch.Tensor:
    """Motion embeddings of drawn items, noised to step t by the model's forward process."""
    schedule = model.config.noise_schedule()
    out = []
    for i in range(0, len(items), chunk):
        batch = collate(items[i : i + chunk])
        frames = int(batch.lengths.max())
        x = batch.features[:, :frames]
        if t > 0:
            noise = torch.randn(x.shape, generator=generator)
            x = schedule.add_noise(x, torch.full((x.shape[0],), t, dtype=torch.long), noise)
        out.append(model.embed_motion(x, t, batch.lengths))
    return torch.cat(out)


@torch.no_grad()
def evaluate_retrieval(
    model: RewardModel,
    split: HumanML3DSplit,
    ts: Sequence[int] = (0,),
    repeats: int = 20,
    group_size: int = 32,
    seed: int = 1234,
) -> dict[int, dict[str, float]]:
    """{t: {'R@1': mean, 'R@1_ci': half-width, ...}} over `repeats` shufflings of `split`."""
    if len(split) < group_size:
        raise ValueError(f"split has {len(split)} samples, fewer than one group of {group_size}")
    for t in ts:
        if not 0 <= int(t) < model.config.num_train_timesteps:
            raise ValueError(f"t must be in 0..{model.config.num_train_timesteps - 1}, got {t}")
    mean = model.mean.detach().cpu().float().numpy()  # the model's own normalisation
    std = model.std.detach().cpu().float().numpy()
    was_training = model.training
    model.eval()
    per_t: dict[int, dict[int, list[float]]] = {t: {k: [] for k in KS} for t in ts}
    n_groups = len(split) // group_size
    for r in range(repeats):
        rng = np.random.default_rng([seed, r])
        order = rng.permutation(len(split))[: n_groups * group_size]
        items = [split.draw(int(i), rng, mean=mean, std=std) for i in order]
        text = model.embed_text([it.text for it in items]).view(n_groups, group_size, -1)
        for t in ts:
            gen = torch.Generator().manual_seed(seed * 100_003 + r * 1009 + t)
            motion = embed_split_items(model, items, t, gen).view(n_groups, group_size, -1)
            ranks = ranks_in_groups(text @ motion.transpose(1, 2))
            for k in KS:
                per_t[t][k].append(float((ranks < k).float().mean()))
    model.train(was_training)
    results: dict[int, dict[str, float]] = {}
    for t in ts:
        row: dict[str, float] = {}
        for k in KS:
            m, ci = mean_ci(per_t[t][k])
            row[f"R@{k}"], row[f"R@{k}_ci"] = m, ci
        results[t] = row
    return results


def format_table(results: dict[int, dict[str, float]], title: str = "") -> str:
    """A plain-text table, one row per t."""
    head = f"{'t':>5} " + " ".join(f"{'R@' + str(k):>15}" for k in KS)
    lines = [title] if title else []
    lines += [head, "-" * len(head)]
    for t, row in results.items():
        cells = " ".join(f"{row[f'R@{k}']:.3f} ± {row[f'R@{k}_ci']:.3f}".rjust(15) for k in KS)
        lines.append(f"{t:>5} {cells}")
    return "\n".join(lines)
