"""A tiny-preset training run on a tiny corpus learns; SPL refinement and ranking pairs run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from easytune_engine.data.humanml3d import load_split
from easytune_engine.reward.evaluate import evaluate_retrieval, mean_ci, ranks_in_groups
from easytune_engine.reward.model import PRESETS, RewardModel
from easytune_engine.reward.rankings import PreferencePair
from easytune_engine.reward.train import (
    TrainConfig,
    duplicate_mask,
    lr_at,
    pair_order_counts,
    sample_steps,
    train_reward,
)


def test_training_lowers_loss_and_beats_chance(reward_corpus: Path, trained_tiny) -> None:
    model, history = trained_tiny
    assert history[-1]["loss"] < 0.8 * math.log(16)  # InfoNCE starts near log(batch size)
    split = load_split(reward_corpus, "train")
    res = evaluate_retrieval(model, split, ts=(0, 500), repeats=3, group_size=16)
    assert res[0]["R@1"] > 3 / 16  # chance is 1/16
    assert res[0]["R@10"] >= res[0]["R@5"] >= res[0]["R@1"]


def test_evaluation_is_repeatable(reward_corpus: Path, trained_tiny) -> None:
    model, _ = trained_tiny
    split = load_split(reward_corpus, "train")
    a = evaluate_retrieval(model, split, ts=(500,), repeats=2, group_size=16)
    b = evaluate_retrieval(model, split, ts=(500,), repeats=2, group_size=16)
    assert a == b
    with pytest.raises(ValueError, match="fewer than one group"):
        evaluate_retrieval(model, split, group_size=10_000)


def test_ranks_and_ci_on_constructed_cases() -> None:
    perfect = torch.eye(4)[None].repeat(2, 1, 1)
    assert ranks_in_groups(perfect).tolist() == [[0] * 4] * 2
    worst = 1 - torch.eye(4)[None]
    assert ranks_in_groups(worst).tolist() == [[3] * 4]
    assert mean_ci([0.5, 0.5, 0.5]) == (0.5, 0.0)


def test_refine_with_spl_and_pairs_runs(reward_corpus: Path, trained_tiny) -> None:
    base, _ = trained_tiny
    model = RewardModel(base.config, base.text_encoder.vocabulary)
    model.load_state_dict(base.state_dict())
    split = load_split(reward_corpus, "train")
    raw = [s.features[:40] for s in split.samples[:6]]
    pairs = [PreferencePair("a person moves", raw[i], raw[i + 1]) for i in range(5)]
    before = pair_order_counts(model, pairs)
    cfg = TrainConfig(steps=30, batch_size=16, lr=1e-3, warmup=5, spl_weight=1e-2, rank_weight=1.0,
                      spl_top_k=3, eval_every=0)  # fmt: skip
    history = train_reward(model, split, cfg, pairs=pairs)
    assert {"loss", "spl", "spl_active", "rank"} <= set(history[-1])
    after = pair_order_counts(model, pairs)
    assert before[1] == after[1] == 5 and after[0] >= before[0]
    with pytest.raises(ValueError, match="needs ranking pairs"):
        train_reward(model, split, TrainConfig(steps=1, rank_weight=1.0))


def test_schedule_helpers() -> None:
    cfg = TrainConfig(steps=100, warmup=10, lr=1.0, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(99, cfg) == pytest.approx(0.1, abs=1e-3)
    rng = np.random.default_rng(0)
    ts = torch.cat([sample_steps(64, TrainConfig(noise_prob=1.0), 1000, rng) for _ in range(50)])
    assert ts.min() >= 0 and ts.max() < 1000
    assert (ts < 250).float().mean() > 0.45  # skewed to low noise (u^2: P(t < 250) = 0.5)
    assert (sample_steps(8, TrainConfig(noise_prob=0.0), 1000, rng) == 0).all()


def test_duplicate_mask() -> None:
    texts = ["A person waves.", "a person waves", "someone jumps", "someone jumps"]
    mask = duplicate_mask(texts, ["a", "b", "c", "c"], None, 0.8)
    assert mask[0, 1] and mask[2, 3] and not mask[0, 2]
    emb = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [0, 1], [1, 0.1], [0, 1]]), dim=-1)
    mask = duplicate_mask(["a", "b", "c", "d"], ["1", "2", "3", "4"], emb, 0.8)
    assert mask[0, 2] and not mask[0, 1]


def test_presets_are_valid() -> None:
    for cfg in PRESETS.values():
        RewardModel(cfg)
