"""The text-to-motion metrics of the HumanML3D papers, each a small function on embeddings.

Protocol (T2M `eval_t2m.py`, repeated by MDM, MLD, MotionLCM, EasyTune):
- R-Precision top-k: split the (text, motion) pairs into groups of 32; within a group, rank the 32
  motions by Euclidean distance to each text; top-k = share of texts whose own motion is in the
  k nearest.
- MM-Dist: mean Euclidean distance between a text and its own motion.
- FID: Fréchet distance between Gaussians fitted to two sets of motion embeddings.
- Diversity: mean distance between 300 random pairs of motions.
- MultiModality: per text, many generations; mean distance of 10 random pairs within a text,
  averaged over texts (100 texts x 30 generations in the papers).
- Each is computed R times (20) on fresh random groups / pairs; report mean +- 1.96 std / sqrt(R).
Oracle accuracy is ours: the share of motions the corpus oracle accepts for their prompt's program.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

GROUP = 32
DIVERSITY_PAIRS = 300
MM_PAIRS = 10


@dataclass(frozen=True)
class Estimate:
    """A metric's mean over repetitions and its 95% confidence half-width."""

    mean: float
    ci: float
    repeats: int


def confidence(values: Sequence[float]) -> Estimate:
    """mean +- 1.96 * std / sqrt(R) (population std, as T2M's `get_metric_statistics`)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("no values to summarise")
    return Estimate(float(v.mean()), float(1.96 * v.std() / math.sqrt(v.size)), int(v.size))


def repeat(fn: Callable[[np.random.Generator], float], repeats: int, seed: int) -> Estimate:
    """Run `fn(rng)` `repeats` times with one generator and summarise."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    rng = np.random.default_rng(seed)
    return confidence([fn(rng) for _ in range(repeats)])


def _as_array(x: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    a = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, float)
    if a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (N, D) array, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) Euclidean distances, computed exactly enough for ranking (no negative roundoff)."""
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(d2, 0.0))


def r_precision(
    text: np.ndarray, motion: np.ndarray, top_k: int = 3, group: int = GROUP
) -> np.ndarray:
    """Top-1..top_k R-Precision of matched rows, groups of `group` in the given order.

    Returns (top_k,) shares. Rows beyond the last full group are left out (as T2M drops the last
    partial batch); fewer than `group` rows is an error.
    """
    t, m = _as_array(text, "text"), _as_array(motion, "motion")
    if t.shape != m.shape:
        raise ValueError(f"text {t.shape} and motion {m.shape} embeddings must match")
    n = (t.shape[0] // group) * group
    if n == 0:
        raise ValueError(f"R-Precision needs at least {group} pairs, got {t.shape[0]}")
    hits = np.zeros(top_k)
    for s in range(0, n, group):
        d = _pairwise(t[s : s + group], m[s : s + group])  # (G, G)
        own = d.diagonal()[:, None]
        rank = (d < own).sum(1)  # motions strictly nearer than the text's own (ties favour it)
        hits += (rank[:, None] < np.arange(1, top_k + 1)[None, :]).sum(0)
    return hits / n


def r_precision_repeated(
    text: np.ndarray, motion: np.ndarray, repeats: int = 20, seed: int = 0, top_k: int = 3
) -> list[Estimate]:
    """R-Precision over `repeats` random groupings (each a fresh shuffle of the pairs)."""
    t, m = _as_array(text, "text"), _as_array(motion, "motion")
    rng = np.random.default_rng(seed)
    runs = []
    for _ in range(repeats):
        order = rng.permutation(t.shape[0])
        runs.append(r_precision(t[order], m[order], top_k))
    runs_a = np.stack(runs)  # (R, top_k)
    return [confidence(runs_a[:, k]) for k in range(top_k)]


def mm_dist(text: np.ndarray, motion: np.ndarray) -> float:
    """Mean Euclidean distance between each text and its own motion."""
    t, m = _as_array(text, "text"), _as_array(motion, "motion")
    if t.shape != m.shape:
        raise ValueError(f"text {t.shape} and motion {m.shape} embeddings must match")
    return float(np.linalg.norm(t - m, axis=1).mean())


def diversity(motion: np.ndarray, rng: np.random.Generator, pairs: int = DIVERSITY_PAIRS) -> float:
    """Mean distance between `pairs` random pairs (two independent draws of indices, as T2M)."""
    m = _as_array(motion, "motion")
    if m.shape[0] < 2:
        raise ValueError(f"Diversity needs at least 2 motions, got {m.shape[0]}")
    first = rng.choice(m.shape[0], pairs, replace=m.shape[0] < pairs)
    second = rng.choice(m.shape[0], pairs, replace=m.shape[0] < pairs)
    return float(np.linalg.norm(m[first] - m[second], axis=1).mean())


def multimodality(groups: np.ndarray, rng: np.random.Generator, pairs: int = MM_PAIRS) -> float:
    """groups (texts, generations, D): mean distance of `pairs` random pairs per text."""
    g = np.asarray(groups, dtype=np.float64)
    if g.ndim != 3 or g.shape[1] < 2:
        raise ValueError(f"MultiModality needs (texts, >= 2 generations, D), got {g.shape}")
    if not np.isfinite(g).all():
        raise ValueError("MultiModality embeddings contain NaN or inf")
    first = rng.choice(g.shape[1], pairs, replace=g.shape[1] < pairs)
    second = rng.choice(g.shape[1], pairs, replace=g.shape[1] < pairs)
    return float(np.linalg.norm(g[:, first] - g[:, second], axis=-1).mean())


def gaussian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of rows, float64 (np.cov with N-1)."""
    a = _as_array(x, "embeddings")
    if a.shape[0] < 2:
        raise ValueError(f"FID needs at least 2 embeddings per set, got {a.shape[0]}")
    return a.mean(0), np.cov(a, rowvar=False)


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix by eigen-decomposition."""
    w, v = np.linalg.eigh((a + a.T) / 2.0)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1 C2)^1/2), numerically careful.

    tr((C1 C2)^1/2) = tr((S1 C2 S1)^1/2) with S1 = C1^1/2: the inner matrix is symmetric PSD, so
    both roots come from `eigh` (no complex parts, no scipy.sqrtm); clipped at 0 from roundoff.
    """
    mu1, mu2 = np.asarray(mu1, float), np.asarray(mu2, float)
    cov1, cov2 = np.asarray(cov1, float), np.asarray(cov2, float)
    s1 = _sqrtm_psd(cov1)
    inner = s1 @ cov2 @ s1
    w = np.linalg.eigvalsh((inner + inner.T) / 2.0)
    tr_sqrt = np.sqrt(np.clip(w, 0.0, None)).sum()
    fid = float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2.0 * tr_sqrt)
    return max(fid, 0.0)


def fid(a: np.ndarray, b: np.ndarray) -> float:
    """FID between two sets of embeddings (rows)."""
    return frechet_distance(*gaussian(a), *gaussian(b))


def fid_repeated(
    gen: np.ndarray, real: np.ndarray, repeats: int = 20, seed: int = 0, size: int | None = None
) -> Estimate:
    """FID over `repeats` bootstrap resamples of the generated set (size = its own by default)."""
    g, r = _as_array(gen, "generated"), _as_array(real, "real")
    mu_r, cov_r = gaussian(r)
    n = size or g.shape[0]

    def one(rng: np.random.Generator) -> float:
        return frechet_distance(*gaussian(g[rng.choice(g.shape[0], n)]), mu_r, cov_r)

    if repeats == 1:
        return Estimate(fid(g, r), 0.0, 1)
    return repeat(one, repeats, seed)


def accuracy(accepted: Sequence[bool]) -> Estimate:
    """Share accepted, with the normal-approximation 95% interval 1.96 sqrt(p (1 - p) / n)."""
    a = np.asarray(accepted, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no verdicts to summarise")
    p = float(a.mean())
    return Estimate(p, float(1.96 * math.sqrt(p * (1 - p) / a.size)), int(a.size))


def wilson(passes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score 95% interval (z = 1.96) of a binomial proportion passes / n."""
    if n == 0:
        return float("nan"), float("nan")
    p = passes / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)
