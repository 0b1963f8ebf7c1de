"""The reward model: shapes, gradients w.r.t. the motion, bad input, checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from easytune_engine.checkpoint import CheckpointError
from easytune_engine.reward.model import DEFAULT_WEIGHTS, PRESETS, RewardModel, load_reward_model
from easytune_engine.text import load_text_encoder

TEXTS = ["a person waves with the right hand", "someone jumps forward"]


def tiny_model(seed: int = 0) -> RewardModel:
    torch.manual_seed(seed)
    return RewardModel(PRESETS["tiny"]).eval()


def motion(b: int = 2, t: int = 24, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, t, 263, generator=torch.Generator().manual_seed(seed))


def test_reward_shape_and_range() -> None:
    model = tiny_model()
    r = model.reward(motion(), 0, TEXTS, torch.tensor([24, 17]))
    assert r.shape == (2,)
    assert (r.abs() <= 1 + 1e-6).all()
    noisy = model.reward(motion(), torch.tensor([500, 10]), TEXTS)
    assert noisy.shape == (2,) and not torch.allclose(noisy, model.reward(motion(), 0, TEXTS))


def test_gradient_wrt_motion_matches_finite_differences() -> None:
    model = tiny_model().double()
    x = motion().double().requires_grad_(True)
    lengths = torch.tensor([24, 17])
    r = model.reward(x, 300, TEXTS, lengths).sum()
    (grad,) = torch.autograd.grad(r, x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert (grad[1, 17:] == 0).all()  # padding frames do not influence the reward
    gen = torch.Generator().manual_seed(2)
    for _ in range(3):
        v = torch.randn(x.shape, generator=gen, dtype=torch.float64)
        eps = 1e-5
        with torch.no_grad():
            plus = model.reward(x + eps * v, 300, TEXTS, lengths).sum()
            minus = model.reward(x - eps * v, 300, TEXTS, lengths).sum()
        fd = (plus - minus) / (2 * eps)
        torch.testing.assert_close(fd, (grad * v).sum(), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize(
    ("features", "lengths", "texts", "t", "match"),
    [
        (torch.randn(2, 24, 100), None, TEXTS, 0, "shape"),
        (torch.randn(24, 263), None, TEXTS, 0, "shape"),
        (torch.randn(2, 0, 263), None, TEXTS, 0, "zero length"),
        (torch.randn(2, 24, 263), [24, 0], TEXTS, 0, "zero length"),
        (torch.randn(2, 24, 263), [25, 3], TEXTS, 0, "exceeds"),
        (torch.randn(2, 260, 263), None, TEXTS, 0, "too long"),
        (torch.full((2, 24, 263), float("nan")), None, TEXTS, 0, "NaN"),
        (torch.full((2, 24, 263), float("inf")), None, TEXTS, 0, "NaN or inf"),
        (torch.randn(2, 24, 263), None, ["", "x"], 0, "empty"),
        (torch.randn(2, 24, 263), None, ["x" * 2000, "y"], 0, "too long"),
        (torch.randn(2, 24, 263), None, ["one prompt"], 0, "1 prompts for 2 motions"),
        (torch.randn(2, 24, 263), None, TEXTS, 1000, "t must be in"),
        (torch.randn(2, 24, 263), None, TEXTS, -1, "t must be in"),
        (torch.randn(2, 24, 263), None, TEXTS, torch.tensor([1, 2, 3]), "shape"),
        (torch.randn(2, 24, 263).int(), None, TEXTS, 0, "floating point"),
    ],
)
def test_bad_input_is_a_clear_value_error(features, lengths, texts, t, match) -> None:
    with pytest.raises(ValueError, match=match):
        tiny_model().reward(features, t, texts, lengths)


def test_nan_in_padding_is_ignored() -> None:
    x = motion()
    x[1, 20:] = float("nan")
    r = tiny_model().reward(x, 0, TEXTS, [24, 20])
    assert torch.isfinite(r).all()


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    model = tiny_model()
    path = tmp_path / "reward.safetensors"
    model.save(path, {"note": "x"})
    loaded = load_reward_model(path)
    torch.testing.assert_close(loaded.reward(motion(), 7, TEXTS), model.reward(motion(), 7, TEXTS))
    assert loaded.config == model.config
    assert loaded.text_encoder.vocabulary == model.text_encoder.vocabulary
    enc = load_text_encoder(path)
    assert not any(p.requires_grad for p in enc.parameters()) and not enc.training
    torch.testing.assert_close(enc.encode(TEXTS).pooled, model.text_encoder.encode(TEXTS).pooled)


def test_fp16_checkpoint_loads_as_float32(tmp_path: Path) -> None:
    model = tiny_model()
    path = tmp_path / "half.safetensors"
    model.save(path, dtype=torch.float16)
    from easytune_engine.checkpoint import load_checkpoint

    stored = load_checkpoint(path, "reward").state
    assert stored["motion_proj.weight"].dtype == torch.float16
    assert stored["mean"].dtype == stored["std"].dtype == torch.float32  # stats stay exact
    loaded = load_reward_model(path)
    assert next(loaded.parameters()).dtype == torch.float32
    torch.testing.assert_close(
        loaded.reward(motion(), 0, TEXTS), model.reward(motion(), 0, TEXTS), atol=5e-3, rtol=0
    )


def test_corrupted_or_mismatched_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "reward.safetensors"
    tiny_model().save(path)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"hash mismatch|not a readable"):
        load_reward_model(bad)
    with pytest.raises(CheckpointError, match="no such"):
        load_reward_model(tmp_path / "missing.safetensors")
    from easytune_engine.checkpoint import save_checkpoint

    other = tmp_path / "other.safetensors"
    save_checkpoint(other, "evaluator", PRESETS["tiny"], {"w": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="expected 'reward'"):
        load_reward_model(other)


@pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(), reason="shipped reward weights not built")
def test_shipped_weights_load_and_match_their_manifest() -> None:
    import json

    model = load_reward_model()
    manifest = json.loads(
        DEFAULT_WEIGHTS.with_name(DEFAULT_WEIGHTS.stem + ".manifest.json").read_text()
    )
    assert manifest["payload_sha256"] == model.checkpoint_sha256
    assert manifest["metrics"]["t0"]["R@1"] >= 0.70 and manifest["metrics"]["t500"]["R@1"] >= 0.50
    texts = ["a person waves", "someone jumps forward"]
    r = model.reward(torch.zeros(2, 40, 263), 0, texts)
    assert r.shape == (2,) and torch.isfinite(r).all()
    enc = load_text_encoder()
    assert enc.encode(texts).tokens.shape[-1] == model.config.text.width
