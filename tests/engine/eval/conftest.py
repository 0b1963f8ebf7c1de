"""Shared fixtures: a tiny corpus and a tiny evaluator trained on it (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from easytune_engine.data.corpus.build import CorpusConfig, build_corpus
from easytune_engine.eval.train import PRESETS, TrainConfig, train_evaluator


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evalcorpus") / "corpus"
    build_corpus(root, CorpusConfig(clips=96, seed=3), workers=2)
    return root


@pytest.fixture(scope="session")
def tiny_evaluator(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("evaluator") / "tiny.safetensors"
    cfg = TrainConfig(batch_size=16, lr=2e-3, epochs=12, minutes=60.0, eval_every=4, threads=1)
    train_evaluator(tiny_corpus, out, PRESETS["tiny"], cfg, preset="tiny")
    return out
