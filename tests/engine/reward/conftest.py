"""Shared fixtures: a tiny corpus and a tiny reward model trained on it (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from easytune_engine.data.corpus.build import CorpusConfig, build_corpus
from easytune_engine.data.humanml3d import load_split
from easytune_engine.reward.model import PRESETS, RewardModel
from easytune_engine.reward.train import TrainConfig, train_reward


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """One torch thread: these tests share 2 cores with other work; oversubscription is slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def reward_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rewardcorpus") / "corpus"
    build_corpus(root, CorpusConfig(clips=120, seed=4), workers=1)
    return root


@pytest.fixture(scope="session")
def trained_tiny(reward_corpus: Path) -> tuple[RewardModel, list[dict]]:
    torch.manual_seed(0)
    split = load_split(reward_corpus, "train")
    model = RewardModel(PRESETS["tiny"], mean=split.mean, std=split.std)
    cfg = TrainConfig(steps=100, batch_size=16, lr=3e-3, warmup=10, eval_every=0)
    history = train_reward(model, split, cfg)
    return model, history
