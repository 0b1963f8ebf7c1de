"""The tiny evaluator learns (beats chance), and its checkpoint round-trips or is refused."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from easytune_engine.checkpoint import CheckpointError
from easytune_engine.data.humanml3d import load_split
from easytune_engine.eval import metrics as M
from easytune_engine.eval.evaluator import (
    Evaluator,
    EvaluatorConfig,
    load_evaluator,
    margin_loss,
    save_evaluator,
)
from easytune_engine.eval.judge import draw_real, embed_features, embed_texts
from easytune_engine.eval.vectorizer import build_vocabulary


def test_tiny_evaluator_beats_chance(tiny_corpus: Path, tiny_evaluator: Path) -> None:
    model = load_evaluator(tiny_evaluator)
    split = load_split(tiny_corpus, "all")
    feats, tokens = draw_real(split, np.random.default_rng(0))
    r = M.r_precision_repeated(
        embed_texts(model, tokens), embed_features(model, feats), repeats=5, seed=0
    )
    assert r[0].mean > 3 / 32  # chance is 1/32


def test_checkpoint_round_trip(tiny_evaluator: Path, tmp_path: Path) -> None:
    model = load_evaluator(tiny_evaluator)
    again = tmp_path / "again.safetensors"
    save_evaluator(again, model, {"note": "copy"}, dtype=torch.float32)
    other = load_evaluator(again)
    assert other.cfg == model.cfg and other.vocab.words == model.vocab.words
    assert torch.equal(other.mean, model.mean) and torch.equal(other.std, model.std)
    x = torch.randn(2, 40, 263)
    lengths = torch.tensor([40, 24])
    with torch.no_grad():
        assert torch.allclose(
            model.embed_motion(x, lengths), other.embed_motion(x, lengths), atol=1e-5
        )
        assert torch.allclose(
            model.embed_text([["walk/VERB"]]), other.embed_text([["walk/VERB"]]), atol=1e-5
        )


def test_corrupted_or_wrong_checkpoints_are_refused(tiny_evaluator: Path, tmp_path: Path) -> None:
    data = bytearray(tiny_evaluator.read_bytes())
    data[-10] ^= 0xFF
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"hash mismatch|not a readable"):
        load_evaluator(bad)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_evaluator(tmp_path / "missing.safetensors")


def test_padding_does_not_change_a_motion_embedding() -> None:
    torch.manual_seed(0)
    model = Evaluator(
        EvaluatorConfig(word_dim=8, text_hidden=8, motion_conv=8, motion_hidden=8, embed_dim=8),
        build_vocabulary([["walk/VERB"]]),
        np.zeros(263),
        np.ones(263),
    ).eval()
    x = torch.randn(1, 40, 263)
    padded = torch.cat([x, torch.randn(1, 20, 263)], dim=1)
    with torch.no_grad():
        a = model.embed_motion(x, torch.tensor([40]))
        b = model.embed_motion(padded, torch.tensor([40]))
    assert torch.allclose(a, b, atol=1e-6)


def test_margin_loss_terms() -> None:
    t = torch.tensor([[0.0, 0.0], [20.0, 0.0]])
    m = torch.tensor([[3.0, 4.0], [20.0, 0.0]])  # pair 0 is 5 apart, pair 1 matches exactly
    same = torch.eye(2, dtype=torch.bool)
    pos, neg = margin_loss(t, m, 10.0, same)
    assert pos.item() == pytest.approx((25.0 + 0.0) / 2)
    # negatives: d(t0, m1) = 20 (past the margin), d(t1, m0) = sqrt(17^2 + 4^2) > 10: both zero
    assert neg.item() == pytest.approx(0.0)


def test_shipped_weights_match_their_manifest() -> None:
    import json

    from easytune_engine.eval.cli import WEIGHTS

    manifest = json.loads(WEIGHTS.with_name("evaluator.manifest.json").read_text())
    model = load_evaluator(WEIGHTS)
    assert manifest["payload_sha256"] == load_checkpoint_hash(WEIGHTS)
    assert manifest["config"] == dataclasses.asdict(model.cfg)
    assert manifest["metrics"]["real_data_row"]["R@1"] >= 0.60


def load_checkpoint_hash(path: Path) -> str:
    from easytune_engine.checkpoint import load_checkpoint
    from easytune_engine.eval.evaluator import CHECKPOINT_KIND

    return load_checkpoint(path, CHECKPOINT_KIND).sha256
