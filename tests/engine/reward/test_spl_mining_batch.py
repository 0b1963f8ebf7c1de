"""SPL mined in a batch larger than the training batch, skip-rule readings, same-data controls."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from easytune_engine.data.humanml3d import load_split
from easytune_engine.reward.model import RewardModel
from easytune_engine.reward.rankings import PreferencePair
from easytune_engine.reward.train import TrainConfig, train_reward


def _copy(base: RewardModel) -> RewardModel:
    model = RewardModel(base.config, base.text_encoder.vocabulary)
    model.load_state_dict(base.state_dict())
    return model


def _base_config(**kw) -> TrainConfig:
    return TrainConfig(
        **({"steps": 4, "batch_size": 8, "lr": 1e-3, "warmup": 2, "eval_every": 0} | kw)
    )


def test_mining_batch_mines_pairs_and_counts_them(reward_corpus: Path, trained_tiny) -> None:
    split = load_split(reward_corpus, "train")
    model = _copy(trained_tiny[0])
    cfg = _base_config(spl_weight=1.0, spl_top_k=2, spl_mine_batch=40, spl_skip="exact")
    history = train_reward(model, split, cfg)
    last = history[-1]
    assert last["spl_pairs_total"] > 0  # a tiny model misses GT in the top 2 of 40 often
    assert 0 < last["spl"] and 0 < last["spl_active"] <= 1


def test_spl_that_mines_nothing_equals_the_control_exactly(
    reward_corpus: Path, trained_tiny
) -> None:
    """Extra mining draws and SPL forward passes leave data order and noise untouched."""
    split = load_split(reward_corpus, "train")
    control, spl = _copy(trained_tiny[0]), _copy(trained_tiny[0])
    train_reward(control, split, _base_config(noise_prob=1.0))
    # top_k = mining batch: the ground truth is always in the top-k, so no pair is ever mined
    cfg = _base_config(noise_prob=1.0, spl_weight=1.0, spl_top_k=24, spl_mine_batch=24)
    history = train_reward(spl, split, cfg)
    assert history[-1]["spl_pairs_total"] == 0
    for a, b in zip(control.parameters(), spl.parameters(), strict=True):
        assert torch.equal(a, b)


def test_ranking_pairs_do_not_change_the_data_order(reward_corpus: Path, trained_tiny) -> None:
    """rank_weight = 0 + a ranking stream vs none: the same InfoNCE losses step by step."""
    split = load_split(reward_corpus, "train")
    raw = [s.features[:40] for s in split.samples[:4]]
    pairs = [PreferencePair("a person moves", raw[i], raw[i + 1]) for i in range(3)]
    seen: dict[str, list[float]] = {"control": [], "rank": []}
    for name, kw in (("control", {}), ("rank", {"rank_weight": 1e-9})):
        model = _copy(trained_tiny[0])
        cfg = _base_config(steps=3, **kw)
        train_reward(model, split, cfg, pairs=pairs if kw else None,
                     on_step=lambda s, run, n=name: seen[n].append(run["loss"]))  # fmt: skip
    assert seen["control"][0] == pytest.approx(seen["rank"][0])
    assert seen["control"] == pytest.approx(seen["rank"], rel=1e-3)


def test_bad_mining_options_are_refused(reward_corpus: Path, trained_tiny) -> None:
    split = load_split(reward_corpus, "train")
    model = _copy(trained_tiny[0])
    with pytest.raises(ValueError, match="spl_skip"):
        train_reward(model, split, _base_config(spl_weight=1.0, spl_skip="loose"))
    with pytest.raises(ValueError, match="spl_mine_batch"):
        train_reward(model, split, _base_config(spl_weight=1.0, spl_mine_batch=4))
