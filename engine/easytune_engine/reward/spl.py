"""SPL (Self-refined Preference Learning) and the InfoNCE retrieval loss (methods.md).

Retrieval loss: symmetric InfoNCE over the batch similarity matrix at temperature τ = 0.1, with
negatives whose captions are near-duplicates of the positive masked out (TMR, Petrovich et al.
2023).

SPL mining, per text i of a batch with similarity matrix S (texts x motions, ground truth on the
diagonal): take the top-k motions of row i (k = 10).
- ground truth not in the top-k and no similarity in that top-k above 0.8: preferred x_w = x_i,
  dispreferred x_l = the best-scoring retrieved motion, Q = (1, 0); training reads "similarity"
  as caption similarity (a retrieved motion whose caption is a near-duplicate of the query's is
  not a mistake), since text–motion cosines of a trained model exceed 0.8 for most top-1s;
- otherwise the text is skipped. Q = (0.5, 0.5) only gives zero gradient when P is already
  (0.5, 0.5), so a skipped text is dropped from the loss instead: its gradient is exactly zero.
L_SPL = KL(Q ‖ P), P = softmax((R(x_w, c), R(x_l, c)) / τ);
total = retrieval + w · L_SPL (w = 1e-2).
Artist rankings enter the same KL with Q = (1, 0) (`preference_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

TAU = 0.1  # InfoNCE and SPL temperature
TOP_K = 10  # SPL retrieval depth
SIM_THRESHOLD = 0.8  # SPL skip threshold, and TMR's near-duplicate caption threshold
SPL_WEIGHT = 1e-2  # released weight of L_SPL next to the retrieval loss


def infonce_loss(
    sim: torch.Tensor, duplicates: torch.Tensor | None = None, tau: float = TAU
) -> torch.Tensor:
    """Symmetric InfoNCE on a (B, B) cosine matrix (texts x motions, positives on the diagonal).

    duplicates: (B, B) bool, True where pair (i, j), i != j, must not serve as a negative (the
    captions are near-duplicates); the diagonal is ignored.
    """
    b = sim.shape[0]
    if sim.shape != (b, b):
        raise ValueError(f"similarity matrix must be square, got {tuple(sim.shape)}")
    logits = sim / tau
    if duplicates is not None:
        eye = torch.eye(b, dtype=torch.bool, device=sim.device)
        logits = logits.masked_fill(duplicates & ~eye, float("-inf"))
    target = torch.arange(b, device=sim.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


@dataclass(frozen=True)
class SPLPairs:
    """Mined pairs for the rows of a similarity matrix."""

    winner: torch.Tensor  # (B,) long, column of x_w (the ground truth, = the row index)
    loser: torch.Tensor  # (B,) long, column of x_l (best retrieved motion; = winner when skipped)
    active: torch.Tensor  # (B,) bool, Q = (1, 0) where True; skipped (no gradient) where False


def mine_spl_pairs(
    sim: torch.Tensor,
    k: int = TOP_K,
    threshold: float = SIM_THRESHOLD,
    near_duplicate: torch.Tensor | None = None,
) -> SPLPairs:
    """The SPL mining rule on a (B, M) text x motion similarity matrix (GT of text i: motion i).

    The "no similarity above 0.8" condition is read in one of two ways:
    - near_duplicate (B, M) bool given: skip text i when one of its top-k motions carries a caption
      that is a near-duplicate of caption i (caption similarity above 0.8, TMR's rule): that
      retrieval is not a mistake, so it makes no preference pair;
    - otherwise: skip when a top-k text–motion similarity exceeds `threshold`.
    """
    b, m = sim.shape
    if m < 1 or b > m:
        raise ValueError(f"need at least as many motions as texts, got {tuple(sim.shape)}")
    if near_duplicate is not None and near_duplicate.shape != sim.shape:
        raise ValueError(
            f"near_duplicate must have the similarity's shape {tuple(sim.shape)}, "
            f"got {tuple(near_duplicate.shape)}"
        )
    s = sim.detach()
    k = min(k, m)
    top_val, top_idx = s.topk(k, dim=1)  # (B, k), best first
    gt = torch.arange(b, device=sim.device)
    gt_in_top = (top_idx == gt[:, None]).any(1)
    if near_duplicate is None:
        too_similar = top_val.max(1).values > threshold
    else:
        too_similar = near_duplicate.gather(1, top_idx).any(1)
    active = ~gt_in_top & ~too_similar
    loser = torch.where(active, top_idx[:, 0], gt)
    return SPLPairs(winner=gt, loser=loser, active=active)


def preference_kl(
    r_w: torch.Tensor, r_l: torch.Tensor, q_w: float | torch.Tensor = 1.0, tau: float = TAU
) -> torch.Tensor:
    """KL(Q ‖ P) per pair, P = softmax((r_w, r_l) / τ), Q = (q_w, 1 − q_w); (N,)."""
    logp = F.log_softmax(torch.stack([r_w, r_l], -1) / tau, -1)  # (N, 2)
    q = torch.as_tensor(q_w, dtype=r_w.dtype, device=r_w.device).expand_as(r_w)
    q = torch.stack([q, 1 - q], -1)
    qlogq = torch.where(q > 0, q * torch.log(q.clamp(min=1e-12)), torch.zeros_like(q))
    return (qlogq - q * logp).sum(-1)


def spl_loss(
    sim: torch.Tensor,
    k: int = TOP_K,
    threshold: float = SIM_THRESHOLD,
    tau: float = TAU,
    near_duplicate: torch.Tensor | None = None,
):
    """L_SPL over a batch: mean over all texts, skipped texts contributing exactly 0.

    Returns (loss, pairs). `sim` must be the differentiable reward matrix R(x_j, c_i);
    `near_duplicate` selects the caption reading of the skip rule (see `mine_spl_pairs`).
    """
    pairs = mine_spl_pairs(sim, k, threshold, near_duplicate)
    rows = torch.arange(sim.shape[0], device=sim.device)[pairs.active]
    if rows.numel() == 0:
        return sim.sum() * 0.0, pairs
    kl = preference_kl(sim[rows, pairs.winner[rows]], sim[rows, pairs.loser[rows]], 1.0, tau)
    return kl.sum() / sim.shape[0], pairs


def preference_loss(r_better: torch.Tensor, r_worse: torch.Tensor, tau: float = TAU):
    """Artist-ranking pairs: mean KL((1, 0) ‖ P) over pairs."""
    return preference_kl(r_better, r_worse, 1.0, tau).mean()
