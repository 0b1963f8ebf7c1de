"""SPL mining rule, the KL preference loss and the masked InfoNCE on constructed matrices."""

from __future__ import annotations

import math

import pytest
import torch

from easytune_engine.reward.spl import (
    infonce_loss,
    mine_spl_pairs,
    preference_kl,
    preference_loss,
    spl_loss,
)


def constructed(b: int = 12) -> torch.Tensor:
    """Row 0: GT (0.10) outside the top-10, best retrieved is column 5 (0.60): a pair.
    Row 1: GT outside the top-10, but column 7 scores 0.85 > 0.8: skipped.
    Other rows: GT is the best match: skipped."""
    sim = torch.full((b, b), 0.2)
    sim.fill_diagonal_(0.7)
    sim[0] = torch.linspace(0.3, 0.5, b)
    sim[0, 0], sim[0, 1], sim[0, 5] = 0.10, 0.25, 0.60
    sim[1] = torch.linspace(0.3, 0.5, b)
    sim[1, 1], sim[1, 0], sim[1, 7] = 0.10, 0.25, 0.85
    return sim


def test_mining_rule() -> None:
    pairs = mine_spl_pairs(constructed())
    assert pairs.active.tolist() == [True] + [False] * 11
    assert int(pairs.winner[0]) == 0 and int(pairs.loser[0]) == 5


def test_gt_inside_top_k_is_skipped_even_if_not_first() -> None:
    sim = constructed()
    sim[0, 0] = 0.45  # now ranks inside the top 10 (below column 5)
    assert not mine_spl_pairs(sim).active[0]
    assert mine_spl_pairs(sim, k=1).active[0]  # but outside the top 1


def test_skipped_rows_get_exactly_zero_gradient() -> None:
    sim = constructed().requires_grad_(True)
    loss, _ = spl_loss(sim)
    loss.backward()
    assert loss.item() > 0
    assert (sim.grad[1:] == 0).all()  # skipped rows (incl. the > 0.8 case): exactly zero
    nonzero = sim.grad[0].nonzero().flatten().tolist()
    assert nonzero == [0, 5]  # only the mined pair of row 0 gets gradient
    assert sim.grad[0, 0] < 0 < sim.grad[0, 5]  # raises R(x_w), lowers R(x_l)


def test_all_skipped_gives_zero_loss_and_gradient() -> None:
    sim = torch.eye(12).requires_grad_(True)
    loss, pairs = spl_loss(sim)
    loss.backward()
    assert not pairs.active.any() and loss.item() == 0 and (sim.grad == 0).all()


def test_preference_kl_values() -> None:
    r_w, r_l = torch.tensor([0.6]), torch.tensor([0.4])
    # Q = (1, 0): KL = -log P_w = log(1 + exp(-(r_w - r_l) / tau))
    expected = math.log1p(math.exp(-(0.6 - 0.4) / 0.1))
    assert preference_kl(r_w, r_l, 1.0).item() == pytest.approx(expected, rel=1e-6)
    # Q = P gives KL = 0
    p_w = torch.softmax(torch.tensor([6.0, 4.0]), 0)[0]
    assert preference_kl(r_w, r_l, p_w).item() == pytest.approx(0.0, abs=1e-6)
    # Q = (0.5, 0.5) has zero gradient only at R(x_w) = R(x_l)
    a = torch.tensor([0.3], requires_grad=True)
    preference_kl(a, torch.tensor([0.3]), 0.5).sum().backward()
    assert a.grad.abs().item() < 1e-7
    assert preference_loss(torch.tensor([0.9, 0.1]), torch.tensor([0.1, 0.9])).item() > 0


def test_infonce_masks_duplicates() -> None:
    sim = torch.eye(4) * 0.9
    sim[0, 1] = sim[1, 0] = 0.95  # a near-duplicate pair that would dominate
    dup = torch.zeros(4, 4, dtype=torch.bool)
    dup[0, 1] = dup[1, 0] = True
    assert infonce_loss(sim, dup) < infonce_loss(sim)
    perfect = infonce_loss(torch.eye(8))
    assert perfect < infonce_loss(torch.zeros(8, 8))
    assert infonce_loss(torch.zeros(8, 8)).item() == pytest.approx(math.log(8), rel=1e-6)
    with pytest.raises(ValueError, match="square"):
        infonce_loss(torch.zeros(3, 4))


def test_caption_reading_of_the_skip_rule() -> None:
    """With caption near-duplicates given, a high text–motion similarity alone no longer skips
    (row 1 becomes a pair), while a top-k motion whose caption duplicates the query's does (row 0
    once its best retrieved motion 5 carries a duplicate caption)."""
    sim = constructed()
    dup = torch.eye(12, dtype=torch.bool)
    pairs = mine_spl_pairs(sim, near_duplicate=dup)
    assert pairs.active.tolist() == [True, True] + [False] * 10
    assert int(pairs.loser[1]) == 7
    dup[0, 5] = True
    assert not mine_spl_pairs(sim, near_duplicate=dup).active[0]
    x = sim.clone().requires_grad_(True)
    loss, mined = spl_loss(x, near_duplicate=dup)
    assert mined.active.tolist() == [False, True] + [False] * 10
    loss.backward()
    assert x.grad[0].abs().sum() == 0 and x.grad[1].abs().sum() > 0
    with pytest.raises(ValueError, match="shape"):
        mine_spl_pairs(sim, near_duplicate=dup[:3])
